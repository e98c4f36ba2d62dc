"""An `axolotl kto iterate` run as the studio's Rounds tab shows it: its rounds, the round that waits for a
person's labels, and the command that takes the run one round further.

Everything here reads the run folder (`orchestration.iterate_folder`); only the command it
builds, run by the studio as a child process, writes to it. With `judge: human` a round waits
after sampling until every distinct answer has a decision in the round's labelled file (what
the Label tab writes); continuing it then trains, scores, and samples the next round, which
waits for labels in turn. With a judge that is a function or a model, each press runs one round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kto_plugin.data.label_log import skipped_path_of
from kto_plugin.errors import ConfigError, MissingFileError
from kto_plugin.orchestration.iterate_folder import STEPS, RunFolder, round_rows
from kto_plugin.orchestration.iterate_steps import ANSWERS, LABELS, distinct_answers, read_jsonl, undecided

LOG_NAME = "studio-iterate.log"
HELD_OUT_SERIES = "held-out answers (judge)"
OWN_SERIES = "round's own answers (labels)"


@dataclass(frozen=True)
class NextStep:
    round: int
    button: str                # the button's words: "Continue round 2", "Start round 3"
    args: list[str]            # `axolotl ARGS`
    blocked: str | None = None  # why it cannot run yet (answers still to label)


@dataclass(frozen=True)
class RunView:
    folder: Path
    record: dict
    waiting: dict | None  # {"round", "answers", "labels", "undecided", "distinct"}: the round a person labels

    def stamp(self) -> tuple:
        """Changes whenever what the table or the plot shows changes."""
        return (str(self.folder), json.dumps(self.record, sort_keys=True),
                None if self.waiting is None else self.waiting["undecided"])

    @property
    def human(self) -> bool:
        return self.record["judge"] == "human"

    def unfinished_round(self) -> int | None:
        for entry in self.record["rounds"]:
            if len(entry["done"]) < len(STEPS):
                return entry["round"]
        if self.record.get("baseline") is None:
            return 1
        return None

    def next_step(self) -> NextStep:
        """Continue the round that is not finished, else start one more."""
        unfinished = self.unfinished_round()
        if unfinished is not None:
            number = unfinished
            # a person's round: train, score, and sample the next, so its answers wait in the Label tab at once
            rounds = number + 1 if self.human and self.waiting else number
            button = f"Continue round {number}"
        else:
            number = rounds = len(self.record["rounds"]) + 1
            button = f"Start round {number}"
        config = Path(self.record["config"])
        args = ["kto", "iterate", str(config), "--resume", "--output", str(self.folder), "--rounds", str(rounds)]
        blocked = None
        if self.waiting and self.waiting["undecided"]:
            blocked = (f"round {self.waiting['round']} has {self.waiting['undecided']} answers without a label: "
                       "label them (Label this round) first")
        elif not config.exists():
            blocked = f"the run's config {config} no longer exists: put it back to continue the run"
        return NextStep(number, button, args, blocked)

    def summary(self, running: bool = False) -> str:
        """What the run needs next, in words; `running`: a round started from the page is going."""
        finished = sum(1 for entry in self.record["rounds"] if len(entry["done"]) == len(STEPS))
        lines = [f"Run `{self.folder}` · judge `{self.record['judge']}` · config `{self.record['config']}` · "
                 f"{finished} round{'' if finished == 1 else 's'} finished"]
        step = self.next_step()
        if running:
            lines.append("**`axolotl kto iterate` is running** from this page: the table follows it, its log is below.")
        elif self.waiting and self.waiting["undecided"]:
            lines.append(f"**Round {self.waiting['round']} waits for your labels:** {self.waiting['undecided']} of "
                         f"{self.waiting['distinct']} answers left. Press *Label this round*.")
        elif self.waiting:
            lines.append(f"**Round {self.waiting['round']} is labelled.** Press *{step.button}*: it trains on the "
                         f"labels, scores the new model and samples round {self.waiting['round'] + 1}'s answers.")
        elif self.unfinished_round() is not None:
            lines.append(f"Round {step.round} is not finished. Press *{step.button}* to go on where it stopped.")
        else:
            lines.append(f"Every round is finished. Press *{step.button}* to run one more.")
        return "\n\n".join(lines)

    def table(self):
        import pandas as pd

        rows = round_rows(self.record)
        if self.waiting:
            for row in rows:
                if row["round"] == self.waiting["round"]:
                    row["step reached"] += f"; labels: {self.waiting['undecided']} of {self.waiting['distinct']} left"
        return pd.DataFrame(rows)

    def score_frame(self):
        """(round, share, series): the held-out answers judged desirable (a judge's runs) and the share of each
        round's own sampled answers labelled desirable (by the judge or by you)."""
        import pandas as pd

        points = []
        baseline = self.record.get("baseline") or {}
        if baseline.get("judged"):
            points.append({"round": 0, "share": baseline["desirable_share"], "series": HELD_OUT_SERIES})
        for entry in self.record["rounds"]:
            if entry["scores"] and entry["scores"].get("judged"):
                points.append({"round": entry["round"], "share": entry["scores"]["desirable_share"],
                               "series": HELD_OUT_SERIES})
            labels = entry["counts"].get("labels") or {}
            decided = labels.get("desirable", 0) + labels.get("undesirable", 0)
            if decided:
                points.append({"round": entry["round"], "share": labels["desirable"] / decided, "series": OWN_SERIES})
        # typed even when empty: a plot of untyped columns takes them for categories
        return pd.DataFrame(points, columns=["round", "share", "series"]).astype({"round": int, "share": float})


_UNDECIDED_CACHE: dict = {}


def _file_stamp(path: Path):
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _undecided(answers: Path, labels: Path) -> tuple[int, int]:
    """(answers without a decision, distinct answers), read again only when one of the files changed."""
    log_files = (answers, labels, skipped_path_of(labels))
    stamp = tuple(_file_stamp(path) for path in log_files)
    known = _UNDECIDED_CACHE.get((answers, labels))
    if known is None or known[0] != stamp:
        rows = read_jsonl(answers)
        known = (stamp, (undecided(rows, labels), len(distinct_answers(rows))))
        _UNDECIDED_CACHE[(answers, labels)] = known
    return known[1]


def read_run(folder: Path) -> RunView:
    """The run in `folder`; MissingFileError when it holds none."""
    run = RunFolder(Path(folder))
    if not run.exists():
        raise MissingFileError(f"{folder} holds no `axolotl kto iterate` run (no rounds.json): start one with "
                               "`axolotl kto iterate CONFIG`, or name the run folder it printed")
    try:
        record = run.read()
    except ValueError as err:
        raise ConfigError(f"{run.record_path} cannot be read: {err}") from None
    waiting = None
    if record["judge"] == "human":
        for entry in record["rounds"]:
            if "sampled" in entry["done"] and "labelled" not in entry["done"]:
                answers, labels = run.round_dir(entry["round"]) / ANSWERS, run.round_dir(entry["round"]) / LABELS
                undecided, distinct = _undecided(answers, labels)
                waiting = {"round": entry["round"], "answers": str(answers), "labels": str(labels),
                           "undecided": undecided, "distinct": distinct}
    return RunView(run.path, record, waiting)
