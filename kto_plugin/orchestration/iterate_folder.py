"""The run folder of `axolotl kto iterate`: one `round-K/` per round and `rounds.json`, the record a resume reads.

    RUN/rounds.json                 settings, the prompt split, each round's finished steps, scores and times
    RUN/prompts-train.jsonl         the training prompts (fixed at the start: a resume uses the same split)
    RUN/prompts-held-out.jsonl      the held-out prompts
    RUN/round-0/scores.json         the starting model's held-out answers and their scores
    RUN/round-K/answers.jsonl       the answers sampled from the round's model (the studio's Label tab reads it)
    RUN/round-K/judge-scores.jsonl  a judge's score of each answer, appended as it goes
    RUN/round-K/labels.jsonl        the labelled rows (`data.label_log`: none lost, none written twice)
    RUN/round-K/train.jsonl         the rows trained on, after the check (`check.json`; set aside: `review.jsonl`)
    RUN/round-K/config.yaml, train.log, model/ (and merged/ for an adapter), scores.json

A step counts as done only once its files are in place and `rounds.json` (written atomically)
says so; a killed run redoes at most the step it was in, and the judge's scores and the labels
already written are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kto_plugin.data.feedback_files import write_text_atomically
from kto_plugin.errors import ConfigError

RECORD = "rounds.json"
STEPS = ("sampled", "labelled", "checked", "trained", "scored")
RECORD_VERSION = 1


@dataclass
class RunFolder:
    path: Path

    @property
    def record_path(self) -> Path:
        return self.path / RECORD

    def round_dir(self, number: int) -> Path:
        return self.path / f"round-{number}"

    def exists(self) -> bool:
        return self.record_path.exists()

    def read(self) -> dict:
        return json.loads(self.record_path.read_text(encoding="utf-8"))

    def write(self, record: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_text_atomically(json.dumps(record, ensure_ascii=False, indent=2) + "\n", self.record_path)


def new_record(config: Path, settings: dict, start_model: str, judge: str) -> dict:
    return {"version": RECORD_VERSION, "config": str(config), "settings": settings, "start_model": start_model,
            "judge": judge, "held_out_threshold": None, "baseline": None, "rounds": []}


def round_entry(record: dict, number: int) -> dict:
    """The record of round `number`, added (with the model it starts from) when missing."""
    for entry in record["rounds"]:
        if entry["round"] == number:
            return entry
    model_in = record["start_model"] if number == 1 else round_entry(record, number - 1)["model_out"]
    entry = {"round": number, "model_in": model_in, "model_out": None, "done": [], "seconds": {}, "counts": {},
             "scores": None}
    record["rounds"].append(entry)
    return entry


FIXED_ON_RESUME = ("prompts", "held_out_prompts", "held_out_share", "seed")


def check_resumable(record: dict, settings: dict, judge: str) -> None:
    """Refuse a resume whose prompts, split or judge differ from the run's (more rounds is fine)."""
    if record.get("version") != RECORD_VERSION:
        raise ConfigError(f"this run folder was written by another version of the plugin ({record.get('version')}): "
                          "start a new run with another --output")
    run_values, now_values = {**record["settings"], "judge": record["judge"]}, {**settings, "judge": judge}
    changed = [key for key in (*FIXED_ON_RESUME, "judge") if run_values.get(key) != now_values.get(key)]
    if changed:
        raise ConfigError("--resume continues the run as it was started; these settings differ from the run's: "
                          + ", ".join(f"{key} (run: {run_values.get(key)!r}, now: {now_values.get(key)!r})"
                                      for key in changed)
                          + ". Put them back, or start a new run with another --output")


def round_rows(record: dict) -> list[dict]:
    """One row per round, round 0 (the starting model) first: the model, what was labelled and trained on, the
    held-out score, the minutes. What `axolotl kto iterate` prints and the studio's Rounds tab shows."""
    def scored(summary) -> tuple[str, str]:
        if not summary or not summary.get("judged"):
            return "-", "-"
        return f"{summary['desirable_share']:.2f}", f"{summary['mean_score']:.3f}"

    baseline = record.get("baseline") or {}
    rows = [{"round": 0, "model": Path(record["start_model"]).name, "step reached": "scored" if baseline else "-",
             "labelled +/-": "-", "trained on +/-": "-", **dict(zip(("held-out desirable", "mean score"),
                                                                       scored(baseline))),
             "minutes": f"{baseline.get('seconds', 0) / 60:.1f}"}]
    for entry in record["rounds"]:
        labels, check = entry["counts"].get("labels", {}), entry["counts"].get("check", {})
        rows.append({
            "round": entry["round"], "model": "-" if not entry["model_out"] else Path(entry["model_out"]).parent.name,
            "step reached": entry["done"][-1] if entry["done"] else "-",
            "labelled +/-": f"{labels.get('desirable', '-')}/{labels.get('undesirable', '-')}",
            "trained on +/-": f"{check.get('desirable', '-')}/{check.get('undesirable', '-')}",
            **dict(zip(("held-out desirable", "mean score"), scored(entry["scores"]))),
            "minutes": f"{sum(entry['seconds'].values()) / 60:.1f}"})
    return rows

