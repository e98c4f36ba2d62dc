"""The Rounds tab's reading of an `axolotl kto iterate` run folder: the round waiting for labels, the next command,
the table and the plot's points. Run folders are written here as `orchestration.iterate` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_jsonl

from kto_plugin.data.label_log import Decision, LabelLog
from kto_plugin.errors import MissingFileError
from kto_plugin.orchestration.iterate_folder import STEPS, RunFolder, new_record, round_entry
from kto_plugin.studio.iterate_runs import HELD_OUT_SERIES, OWN_SERIES, read_run

DISTINCT = [{"query": f"Where is parcel {index}?", "response": f"It is in depot {index}."} for index in range(6)]
ANSWERS = DISTINCT + DISTINCT[:2]  # a sampled answer can come twice: it is labelled once


def human_run(tmp_path: Path, finished_rounds: int = 0) -> RunFolder:
    """A run with a person as judge: `finished_rounds` whole rounds, then one sampled and waiting for labels."""
    config = tmp_path / "kto.yaml"
    config.write_text("base_model: x\n", encoding="utf-8")
    folder = RunFolder(tmp_path / "run")
    record = new_record(config, {"prompts": "prompts.txt", "rounds": 3}, "/models/start", "human")
    record["baseline"] = {"judged": False, "seconds": 3.0}
    for number in range(1, finished_rounds + 1):
        entry = round_entry(record, number)
        entry.update(done=list(STEPS), model_out=str(tmp_path / f"run/round-{number}/merged"),
                     seconds={"sampled": 30.0, "trained": 90.0},
                     counts={"answers": 8, "labels": {"desirable": number + 1, "undesirable": 5 - number},
                             "check": {"desirable": number + 1, "undesirable": 4 - number}},
                     scores={"judged": False})
    waiting = round_entry(record, finished_rounds + 1)
    waiting["done"] = ["sampled"]
    folder.round_dir(finished_rounds + 1).mkdir(parents=True)
    write_jsonl(folder.round_dir(finished_rounds + 1) / "answers.jsonl", ANSWERS)
    folder.write(record)
    return folder


def distinct_answers() -> list[dict]:
    return list({(row["query"], row["response"]): row for row in ANSWERS}.values())


def test_a_human_round_waits_until_every_distinct_answer_has_a_decision(tmp_path):
    folder = human_run(tmp_path)
    distinct = distinct_answers()
    view = read_run(folder.path)
    assert view.waiting["round"] == 1 and view.waiting["distinct"] == len(distinct) < len(ANSWERS)
    assert view.waiting["undecided"] == len(distinct)
    step = view.next_step()
    assert step.button == "Continue round 1" and "label them" in step.blocked
    assert "waits for your labels:** 6 of 6 answers left" in view.summary()

    log = LabelLog(Path(view.waiting["labels"]))
    for index, row in enumerate(distinct[:-1]):
        log.record(Decision(row["query"], row["response"], ("accept", "reject", "skip")[index % 3]))
    assert read_run(folder.path).waiting["undecided"] == 1  # read again: the labelled file changed
    log.record(Decision(distinct[-1]["query"], distinct[-1]["response"], "accept"))
    view = read_run(folder.path)
    step = view.next_step()
    assert view.waiting["undecided"] == 0 and step.blocked is None
    # a person's round goes on through training and scoring to the next round's answers, which wait in turn
    assert step.args == ["kto", "iterate", str(tmp_path / "kto.yaml"), "--resume", "--output", str(folder.path),
                         "--rounds", "2"]
    assert "Round 1 is labelled" in view.summary()
    assert "is running" in view.summary(running=True) and "Round 1 is labelled" not in view.summary(running=True)
    assert view.table().loc[1, "step reached"] == "sampled; labels: 0 of 6 left"


def test_a_finished_run_offers_one_more_round_and_plots_each_rounds_labelled_share(tmp_path):
    folder = human_run(tmp_path, finished_rounds=2)
    record = folder.read()
    record["rounds"].pop()  # round 3 not started: both rounds finished
    folder.write(record)
    view = read_run(folder.path)
    assert view.waiting is None and view.unfinished_round() is None
    step = view.next_step()
    assert step.button == "Start round 3" and step.args[-2:] == ["--rounds", "3"] and step.blocked is None
    frame = view.score_frame()
    assert frame.to_dict("records") == [{"round": 1, "share": 2 / 6, "series": OWN_SERIES},
                                        {"round": 2, "share": 3 / 6, "series": OWN_SERIES}]
    table = view.table()
    assert list(table["round"]) == [0, 1, 2] and list(table["labelled +/-"]) == ["-", "2/4", "3/3"]
    assert list(table["model"]) == ["start", "round-1", "round-2"]


def test_a_judges_unfinished_round_is_continued_alone_and_its_held_out_scores_plotted(tmp_path):
    folder = human_run(tmp_path, finished_rounds=1)
    record = folder.read()
    record["judge"] = "judging.py:even_words"
    record["baseline"] = {"judged": True, "desirable_share": 0.25, "mean_score": 0.1, "threshold": 0.5, "seconds": 2}
    record["rounds"][0]["scores"] = {"judged": True, "desirable_share": 0.5, "mean_score": 0.4, "threshold": 0.5}
    record["rounds"][1]["done"] = ["sampled", "labelled"]
    folder.write(record)
    view = read_run(folder.path)
    assert view.waiting is None  # a judge labels its own answers: nothing waits for a person
    step = view.next_step()
    assert step.button == "Continue round 2" and step.args[-2:] == ["--rounds", "2"] and step.blocked is None
    held_out = [(point["round"], point["share"]) for point in view.score_frame().to_dict("records")
                if point["series"] == HELD_OUT_SERIES]
    assert held_out == [(0, 0.25), (1, 0.5)]
    assert view.table().loc[1, "held-out desirable"] == "0.50"


def test_a_run_whose_config_was_moved_says_so_and_a_folder_without_a_run_is_refused(tmp_path):
    folder = human_run(tmp_path, finished_rounds=1)
    record = folder.read()
    record["rounds"].pop()
    folder.write(record)
    (tmp_path / "kto.yaml").unlink()
    assert "no longer exists" in read_run(folder.path).next_step().blocked
    with pytest.raises(MissingFileError, match="no `axolotl kto iterate` run"):
        read_run(tmp_path)


def test_the_studio_opens_the_label_tab_on_the_round_that_waits_and_allows_its_run_folder(tmp_path):
    from kto_plugin.studio.app import Studio
    from kto_plugin.studio.folders import AllowedFolders

    folder = human_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    studio = Studio(None, AllowedFolders.of([elsewhere]), run=folder.path)
    answers, labels = studio.label_defaults()
    assert Path(answers) == folder.round_dir(1) / "answers.jsonl" and Path(labels).name == "labels.jsonl"
    queue = studio.label_queue(answers, labels)  # inside the allowed folders: --run allows the run folder
    assert queue.remaining() == len(distinct_answers())
    assert studio.run_folder_default() == str(folder.path.resolve())
    # without --run, a config whose output_dir holds a run shows it
    config = tmp_path / "with-run.yaml"
    config.write_text(json.dumps({"base_model": "x", "output_dir": str(tmp_path),
                                  "kto_iterate": {"output_dir": str(folder.path)}}), encoding="utf-8")
    assert Studio(config, AllowedFolders.of([elsewhere])).run_folder_default() == str(folder.path.resolve())
