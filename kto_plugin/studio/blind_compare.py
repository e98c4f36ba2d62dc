"""The Compare tab's files: the same blind sheet as `axolotl kto compare`, rated in the page.

`make_sheet` answers the prompts with the base and the trained model and writes
`sheet.csv`, `sheet.html` and `key.json` (`evaluation.side_by_side.write_sheet`); each
rating given in the page is written into `sheet.csv` at once (atomically, under a lock),
so `axolotl kto score sheet.csv --key key.json` reads the same file, and `score_rated_sheet`
unblinds it with the same code.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from filelock import FileLock

from kto_plugin.data.feedback_files import write_text_atomically
from kto_plugin.errors import DataError
from kto_plugin.evaluation.generation import generate_answers, user_prompts
from kto_plugin.evaluation.side_by_side import SHEET_COLUMNS, keep_rated_sheet, score_sheet, write_sheet
from kto_plugin.studio.run_models import RunModels


def make_sheet(models: RunModels, prompts: list[str], settings, folder: Path) -> Path:
    """Answer the prompts with both models into a new sheet in `folder`; a sheet there with ratings is refused
    (before any model runs), never overwritten."""
    keep_rated_sheet(folder, replace=False)
    cfg = models.cfg()
    output_dir = models.require_trained()
    with models.model("base") as (model, tokenizer):
        base_answers = generate_answers(model, tokenizer, user_prompts(tokenizer, prompts), settings)
    with models.model("trained") as (model, tokenizer):
        tuned_answers = generate_answers(model, tokenizer, user_prompts(tokenizer, prompts), settings)
    paths = write_sheet(folder, prompts, base_answers, tuned_answers, settings.seed,
                        {"base": str(cfg.base_model), "tuned": str(output_dir)})
    return paths["csv"]


def read_sheet(sheet: Path) -> list[dict]:
    with Path(sheet).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or any(column not in rows[0] for column in SHEET_COLUMNS):
        raise DataError(f"{sheet} is not a rating sheet of `axolotl kto compare` (columns {SHEET_COLUMNS})")
    return rows


def save_rating(sheet: Path, row_id: str, rating_a: int, rating_b: int) -> None:
    """Write one prompt's two ratings (1-5) into the sheet."""
    for rating in (rating_a, rating_b):
        if rating not in (1, 2, 3, 4, 5):
            raise DataError("rate both answers, 1 (bad) to 5 (excellent)")
    with FileLock(str(sheet) + ".lock", timeout=30):
        rows = read_sheet(sheet)
        matching = [row for row in rows if row["id"] == str(row_id)]
        if not matching:
            raise DataError(f"{sheet} has no prompt with id {row_id}")
        matching[0]["rating_a"], matching[0]["rating_b"] = str(rating_a), str(rating_b)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomically(buffer.getvalue(), sheet)


def score_rated_sheet(sheet: Path) -> dict:
    """Means with 95% intervals and the win rate, by `axolotl kto score`'s code; also written to score.json."""
    return score_sheet(sheet, Path(sheet).with_name("key.json"))
