"""Blind side-by-side rating: generate base and tuned answers, hide which is which, score the ratings.

`compare` writes three files: `sheet.csv` and `sheet.html` show each prompt with two
answers labelled A and B (which model is A is drawn per prompt from the seed), and
`key.json` says which model each letter is. Raters fill `rating_a` and `rating_b`
(1-5) in the CSV. `score` reads the sheet and the key and reports each model's mean
rating with a 95% confidence interval (Student's t) and the tuned model's win rate.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import math
import random
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from kto_plugin.errors import ConfigError, DataError

SHEET_COLUMNS = ["id", "prompt", "answer_a", "answer_b", "rating_a", "rating_b"]


def assign_sides(count: int, seed: int) -> list[dict[str, str]]:
    """For each prompt, which model is A and which is B, drawn from the seed."""
    rng = random.Random(seed)
    sides = []
    for _ in range(count):
        tuned_first = rng.random() < 0.5
        sides.append({"A": "tuned", "B": "base"} if tuned_first else {"A": "base", "B": "tuned"})
    return sides


def _html_sheet(rows: list[dict]) -> str:
    cells = "\n".join(
        "<tr><td>{id}</td><td>{prompt}</td><td>{a}</td><td>{b}</td><td></td><td></td></tr>".format(
            id=row["id"], prompt=html.escape(row["prompt"]),
            a=html.escape(row["answer_a"]).replace("\n", "<br>"), b=html.escape(row["answer_b"]).replace("\n", "<br>"),
        )
        for row in rows
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Blind side-by-side rating</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #999; padding: .5em; vertical-align: top; }}
th {{ background: #eee; }}
</style></head><body>
<h1>Blind side-by-side rating</h1>
<p>For each prompt, rate answer A and answer B from 1 (bad) to 5 (excellent) in the
<code>rating_a</code> and <code>rating_b</code> columns of <code>sheet.csv</code>. Which model wrote
which answer is hidden and changes from prompt to prompt.</p>
<table><thead><tr><th>id</th><th>prompt</th><th>answer A</th><th>answer B</th><th>rating A</th><th>rating B</th></tr></thead>
<tbody>
{cells}
</tbody></table></body></html>
"""


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads a cell starting so as a formula


def _starts_a_formula_after_apostrophes(text: str) -> bool:
    return text.lstrip("'").startswith(FORMULA_STARTS)


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: one more leading apostrophe where the text, after any apostrophes it
    starts with, starts a formula (so `from_spreadsheet` gives every text back exactly)."""
    return "'" + text if _starts_a_formula_after_apostrophes(text) else text


def from_spreadsheet(text: str) -> str:
    """The text `spreadsheet_safe` was given."""
    return text[1:] if text.startswith("'") and _starts_a_formula_after_apostrophes(text) else text


def rated_prompts(sheet: Path) -> int:
    """How many prompts of an existing sheet carry a rating (0 when there is no sheet)."""
    if not Path(sheet).is_file():
        return 0
    with Path(sheet).open(encoding="utf-8", newline="") as handle:
        return sum(1 for row in csv.DictReader(handle) if (row.get("rating_a") or "").strip() or (row.get("rating_b") or "").strip())


def sheet_digest(sheet: Path) -> str:
    return hashlib.blake2b(Path(sheet).read_bytes(), digest_size=16).hexdigest()


def is_as_written(sheet: Path) -> bool:
    """The sheet is byte for byte what `write_sheet` wrote (its key holds the digest): nothing of a person's in it."""
    try:
        key = json.loads(sheet.with_name("key.json").read_text(encoding="utf-8"))
        return key.get("sheet_digest") == sheet_digest(sheet)
    except (OSError, ValueError, AttributeError):
        return False


def _what_it_holds(sheet: Path) -> str:
    try:
        rated = rated_prompts(sheet)
    except (UnicodeDecodeError, csv.Error):
        return "was changed since it was written (and cannot be read as UTF-8 CSV: saved by a spreadsheet?)"
    if rated:
        return f"already holds ratings for {rated} prompts"
    return "was changed since it was written (notes, edits, or saved by a spreadsheet)"


def keep_rated_sheet(output_dir: Path, replace: bool) -> Path | None:
    """Before a new sheet is written: a sheet a person may have touched is never overwritten. Only a sheet byte for
    byte as written is replaced; any other (ratings, notes, saved by a spreadsheet, written by an older version) is
    an error that says so, or with `replace` is renamed aside with its key (returned: the renamed sheet)."""
    sheet = Path(output_dir) / "sheet.csv"
    if not sheet.is_file() or is_as_written(sheet):
        return None
    if not replace:
        raise ConfigError(f"{sheet} {_what_it_holds(sheet)}: score it (`axolotl kto score {sheet} "
                          f"--key {sheet.with_name('key.json')}`), write the new sheet elsewhere, or replace it "
                          "(--force; the old sheet and its key are kept beside it)")
    stamp = 1
    while sheet.with_name(f"sheet.rated-{stamp}.csv").exists():
        stamp += 1
    kept = sheet.with_name(f"sheet.rated-{stamp}.csv")
    sheet.rename(kept)
    if sheet.with_name("key.json").exists():
        sheet.with_name("key.json").rename(sheet.with_name(f"key.rated-{stamp}.json"))
    return kept


def write_sheet(output_dir: Path, prompts: list[str], base_answers: list[str], tuned_answers: list[str],
                seed: int, models: dict[str, str], replace_ratings: bool = False) -> dict[str, Path]:
    """sheet.csv, sheet.html and key.json, renamed into place together once all are written (the key last, holding
    the sheet's digest), after `keep_rated_sheet`."""
    from kto_plugin.data.feedback_files import atomic_path

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keep_rated_sheet(output_dir, replace_ratings)
    sides = assign_sides(len(prompts), seed)
    answers = {"base": base_answers, "tuned": tuned_answers}
    rows = [
        {"id": index + 1, "prompt": prompt, "answer_a": answers[side["A"]][index],
         "answer_b": answers[side["B"]][index], "rating_a": "", "rating_b": ""}
        for index, (prompt, side) in enumerate(zip(prompts, sides))
    ]
    paths = {"csv": output_dir / "sheet.csv", "html": output_dir / "sheet.html", "key": output_dir / "key.json"}
    with atomic_path(paths["key"]) as key_file, atomic_path(paths["html"]) as html_file, \
            atomic_path(paths["csv"]) as csv_file:
        with csv_file.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=SHEET_COLUMNS)
            writer.writeheader()
            writer.writerows({**row, **{column: spreadsheet_safe(row[column]) for column in ("prompt", "answer_a", "answer_b")}}
                             for row in rows)
        html_file.write_text(_html_sheet(rows), encoding="utf-8")
        key = {"seed": seed, "models": models, "sides": {str(row["id"]): side for row, side in zip(rows, sides)},
               "sheet_digest": sheet_digest(csv_file)}
        key_file.write_text(json.dumps(key, indent=2, ensure_ascii=False), encoding="utf-8")
    return paths


class RatingSheetError(DataError):
    """A rating sheet with missing columns or ratings, each bad row named."""


def read_ratings(sheet: Path, key_path: Path) -> dict[str, list[int]]:
    """{"base": [...], "tuned": [...]} ratings, aligned by prompt; errors name every bad row."""
    key = json.loads(Path(key_path).read_text(encoding="utf-8"))["sides"]
    ratings: dict[str, list[int]] = {"base": [], "tuned": []}
    problems = []
    with Path(sheet).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing_columns = [column for column in SHEET_COLUMNS if column not in (reader.fieldnames or [])]
        if missing_columns:
            raise RatingSheetError(f"{sheet} lacks the columns {missing_columns}")
        for line, row in enumerate(reader, start=2):
            values = {}
            for letter in ("a", "b"):
                raw = (row[f"rating_{letter}"] or "").strip()
                try:
                    value = int(raw)
                except ValueError:
                    value = None
                if value is None or not 1 <= value <= 5:
                    problems.append(f"line {line} (id {row['id']}): rating_{letter} is "
                                    + (repr(raw) if raw else "missing") + ", expected 1-5")
                values[letter.upper()] = value
            if row["id"] not in key:
                problems.append(f"line {line}: id {row['id']} is not in {key_path}")
                continue
            for letter, model in key[row["id"]].items():
                if values[letter] is not None:
                    ratings[model].append(values[letter])
    if problems:
        raise RatingSheetError(f"{sheet}: " + "; ".join(problems))
    return ratings


def _t_critical(count: int) -> float:
    try:
        from scipy.stats import t

        return float(t.ppf(0.975, count - 1))
    except ImportError:  # pragma: no cover - scipy comes with the stack
        return 1.96


def mean_with_interval(values: list[int]) -> tuple[float, float, float]:
    """(mean, low, high) with a 95% Student's t interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = _t_critical(len(values)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


@dataclass
class RatingSummary:
    """The unblinded ratings: win counts and each model's mean with its 95% interval; `to_json()` is score.json."""

    prompts: int
    tuned_wins: int
    ties: int
    base_wins: int
    tuned_win_rate: float
    base: dict  # mean, ci95 [low, high], n
    tuned: dict

    def model(self, name: str) -> dict:
        return {"base": self.base, "tuned": self.tuned}[name]

    def to_json(self) -> dict:
        return asdict(self)


def summarize(ratings: dict[str, list[int]]) -> RatingSummary:
    pairs = list(zip(ratings["tuned"], ratings["base"]))
    wins = sum(tuned > base for tuned, base in pairs)
    ties = sum(tuned == base for tuned, base in pairs)
    stats = {}
    for model in ("base", "tuned"):
        mean, low, high = mean_with_interval(ratings[model])
        stats[model] = {"mean": mean, "ci95": [low, high], "n": len(ratings[model])}
    return RatingSummary(len(pairs), wins, ties, len(pairs) - wins - ties, wins / len(pairs) if pairs else float("nan"),
                         stats["base"], stats["tuned"])


def score_sheet(sheet: Path, key_path: Path) -> RatingSummary:
    """`summarize` of a filled sheet, also written to score.json beside it (`axolotl kto score`, the studio's Score)."""
    summary = summarize(read_ratings(sheet, key_path))
    (Path(sheet).parent / "score.json").write_text(json.dumps(summary.to_json(), indent=2), encoding="utf-8")
    return summary
