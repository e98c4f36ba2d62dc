"""The parts of `axolotl kto iterate` below its `axolotl train`: prompt pools, the run record, judging and labels
that survive a kill, the check of a round's labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_jsonl

from kto_plugin.errors import ConfigError, DataError
from kto_plugin.orchestration import iterate_steps as steps
from kto_plugin.orchestration.iterate_folder import RunFolder, check_resumable, new_record, round_entry
from kto_plugin.orchestration.iterate_settings import IterateSettings
from kto_plugin.orchestration.prompt_pool import PoolPrompt, prompts_of_round, read_prompt_pool, split_held_out


def test_a_prompt_pool_from_text_or_rows_keeps_each_prompt_once_with_its_system_message(tmp_path):
    text = tmp_path / "prompts.txt"
    text.write_text("Where is my order?\n\n  Where is my order?  \nCan I pay later?\n", encoding="utf-8")
    assert read_prompt_pool(text) == [PoolPrompt("Where is my order?"), PoolPrompt("Can I pay later?")]
    rows = write_jsonl(tmp_path / "prompts.jsonl", [
        {"system": "Be brief.", "query": "Hi"}, {"prompt": "Hi"}, {"system": "Be brief.", "query": "Hi"},
        {"question": "Bye", "system": "  "}])
    assert read_prompt_pool(rows) == [PoolPrompt("Hi", "Be brief."), PoolPrompt("Hi"), PoolPrompt("Bye")]
    with pytest.raises(DataError, match="no prompt under query, prompt, instruction, question; its fields are"):
        read_prompt_pool(write_jsonl(tmp_path / "bad.jsonl", [{"text": "Hi"}]))
    with pytest.raises(DataError, match="does not exist"):
        read_prompt_pool(tmp_path / "missing.txt")


def test_the_held_out_split_is_seeded_disjoint_never_empty_and_rounds_draw_their_own_prompts():
    pool = [PoolPrompt(f"question {index}") for index in range(50)]
    train, held_out = split_held_out(pool, 0.2, seed=4)
    assert len(held_out) == 10 and len(train) == 40 and not set(train) & set(held_out)
    assert split_held_out(pool, 0.2, seed=4) == (train, held_out)
    assert split_held_out(pool, 0.2, seed=5)[1] != held_out
    assert len(split_held_out(pool[:2], 0.01, seed=0)[1]) == 1 and len(split_held_out(pool[:2], 0.99, seed=0)[0]) == 1
    with pytest.raises(DataError, match="at least 2"):
        split_held_out(pool[:1], 0.2, seed=0)
    first, second = prompts_of_round(train, 15, 1, 0), prompts_of_round(train, 15, 2, 0)
    assert len(first) == 15 and first != second and first == prompts_of_round(train, 15, 1, 0)
    assert prompts_of_round(train, None, 3, 0) == train


def test_a_resume_refuses_other_prompts_or_judge_and_takes_more_rounds(tmp_path):
    settings = IterateSettings(prompts="p.txt", judge="mod:fun").model_dump(exclude={"rounds", "output_dir"})
    record = new_record(tmp_path / "kto.yaml", settings, "/models/base", "mod:fun")
    check_resumable(record, {**settings}, "mod:fun")
    with pytest.raises(ConfigError, match=r"prompts \(run: 'p.txt', now: 'other.txt'\).*judge \(run: 'mod:fun', now: 'human'\)"):
        check_resumable(record, {**settings, "prompts": "other.txt"}, "human")
    first = round_entry(record, 1)
    first["model_out"] = "/runs/round-1/merged"
    assert round_entry(record, 2)["model_in"] == "/runs/round-1/merged"
    assert round_entry(record, 1) is first and len(record["rounds"]) == 2
    folder = RunFolder(tmp_path / "run")
    folder.write(record)
    assert folder.read() == json.loads(json.dumps(record)) and not list(folder.path.glob(".*partial*"))


class CountingJudge:
    def __init__(self, fail_at: int | None = None):
        self.calls, self.fail_at = [], fail_at

    def scores(self, prompts, answers, progress=None):
        found = []
        for answer in answers:
            if self.fail_at is not None and len(self.calls) == self.fail_at:
                raise KeyboardInterrupt  # a kill in the middle of a batch
            self.calls.append(answer)
            found.append(len(answer) / 10)
        return found


def answer_rows(count: int) -> list[dict]:
    return [{"system": "S", "query": f"q{index % 7}", "response": "x" * (index % 13 + 1)} for index in range(count)]


def test_judging_killed_midway_keeps_the_scores_written_and_judges_nothing_twice(tmp_path):
    rows, path = answer_rows(40), tmp_path / "judge-scores.jsonl"
    with pytest.raises(KeyboardInterrupt):
        steps.judge_scores(CountingJudge(fail_at=20), rows, path, batch=8)
    assert [entry["index"] for entry in steps.read_jsonl(path)] == list(range(16))  # two whole batches written
    resumed = CountingJudge()
    scores = steps.judge_scores(resumed, rows, path, batch=8)
    assert resumed.calls == [row["response"] for row in rows[16:]]
    assert scores == [len(row["response"]) / 10 for row in rows]
    assert sorted(entry["index"] for entry in steps.read_jsonl(path)) == list(range(40))


def test_labels_are_written_once_per_distinct_answer_even_when_written_again(tmp_path):
    rows = answer_rows(40)  # 40 rows, fewer distinct (prompt, answer) pairs
    scores = [len(row["response"]) / 10 for row in rows]
    labels = tmp_path / "labels.jsonl"
    counts = steps.write_labels(rows, scores, 0.6, labels, round_number=1)
    again = steps.write_labels(rows, scores, 0.6, labels, round_number=1)  # a resume after a kill before the record
    written = steps.read_jsonl(labels)
    distinct = {(row["query"], row["response"]) for row in rows}
    assert len(written) == len(distinct) == counts["desirable"] + counts["undesirable"] and again == counts
    assert all(row["label"] == (row["score"] > 0.6) and row["system"] == "S" and row["round"] == 1 for row in written)
    assert steps.undecided(rows, labels) == 0 and steps.undecided(rows + [{"query": "new", "response": "a"}], labels) == 1


def test_the_check_keeps_one_of_each_duplicate_and_sets_conflicting_labels_aside(tmp_path):
    labelled = [{"query": "q", "response": "a fine answer", "label": True},
                {"query": "q", "response": "a fine answer", "label": True},
                {"query": "q", "response": "ok", "label": True},
                {"query": "q", "response": "a wrong answer", "label": False},
                {"query": "q", "response": "a disputed answer", "label": True},
                {"query": "q", "response": "a disputed answer", "label": False}]
    counts = steps.check_labelled(labelled, tmp_path)
    kept = steps.read_jsonl(tmp_path / "train.jsonl")
    assert [(row["response"], row["label"]) for row in kept] == [("a fine answer", True), ("a wrong answer", False)]
    assert counts["kept"] == 2 and counts["desirable"] == 1 and counts["undesirable"] == 1
    assert len(steps.read_jsonl(tmp_path / "review.jsonl")) == 2
    assert counts["removed"] == {"exact_duplicate": 1, "low_information": 1}
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["rows_read"] == 6 and len(report["rows"]) == 4
    with pytest.raises(DataError, match="kept no labelled rows"):
        steps.check_labelled([{"query": "q", "response": "ok", "label": True}], tmp_path / "empty")


def test_a_rounds_config_trains_the_rounds_rows_from_the_rounds_model(tmp_path):
    user = {"plugins": ["kto_plugin.KTOPlugin"], "rl": "kto", "base_model": "kto_plugin://warm-model",
            "datasets": [{"path": "feedback.jsonl", "type": "kto_plugin.query_response"}], "learning_rate": 1e-4,
            "lora_model_dir": "old-adapter", "kto_iterate": {"rounds": 3}, "output_dir": "./outputs/kto"}
    config = steps.round_config(user, "/runs/round-1/merged", tmp_path / "round-2")
    assert config["base_model"] == "/runs/round-1/merged" and config["learning_rate"] == 1e-4
    assert config["datasets"] == [{"path": str((tmp_path / "round-2" / "train.jsonl").resolve()),
                                   "type": "kto_plugin.query_response"}]
    assert config["output_dir"].endswith("round-2/model")
    assert "kto_iterate" not in config and "lora_model_dir" not in config
    assert user["base_model"] == "kto_plugin://warm-model"  # the user's config is not changed


def test_settings_name_the_key_a_bad_value_is_under():
    with pytest.raises(ValueError, match="kto_iterate.judge"):
        IterateSettings(judge="nonsense")
    with pytest.raises(ValueError, match="held_out_share"):
        IterateSettings(held_out_share=1.5)
    with pytest.raises(ValueError, match="extra"):
        IterateSettings(round=3)


def test_a_human_round_waits_for_every_answer_to_be_labelled_in_the_studios_file(tmp_path, tiny_model):
    """`judge: human` stops after sampling with the files the studio labels; a resume waits until each answer has a
    decision (what the studio's Label tab writes: `data.label_log`), then goes on. Stops before training."""
    import yaml
    from helpers import base_config

    from kto_plugin.data.label_log import Decision, LabelLog
    from kto_plugin.orchestration.iterate import run_iterate

    (tmp_path / "prompts.txt").write_text("".join(f"Where is parcel {index}?\n" for index in range(5)), encoding="utf-8")
    config = base_config(tmp_path, [{"path": "unused.jsonl", "type": "kto_plugin.query_response"}])
    (tmp_path / "kto.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = IterateSettings(prompts=str(tmp_path / "prompts.txt"), judge="human", answers_per_prompt=2,
                               max_new_tokens=6)
    waiting = run_iterate(tmp_path / "kto.yaml", settings, progress=lambda line: None).waiting_for
    answers = steps.read_jsonl(Path(waiting["answers"]))
    assert waiting["round"] == 1 and len(answers) == 8  # 4 training prompts x 2; one held out
    distinct = list({(row["query"], row["response"]): row for row in answers}.values())
    assert waiting["undecided"] == len(distinct)
    log = LabelLog(Path(waiting["labels"]))
    log.record(Decision(distinct[0]["query"], distinct[0]["response"], "accept"))
    again = run_iterate(tmp_path / "kto.yaml", settings, resume=True, progress=lambda line: None)
    assert again.waiting_for["undecided"] == len(distinct) - 1
    assert steps.read_jsonl(Path(waiting["answers"])) == answers  # not sampled again
    for index, row in enumerate(distinct[1:]):
        log.record(Decision(row["query"], row["response"], "skip" if index == 0 else "reject"))
    record = RunFolder(again.folder).read()
    assert record["rounds"][0]["done"] == ["sampled"] and record["baseline"] == {"judged": False, "seconds": record["baseline"]["seconds"]}
    assert steps.undecided(answers, Path(waiting["labels"])) == 0
    counts = steps.labelled_counts(Path(waiting["labels"]))
    assert counts == {"desirable": 1, "undesirable": len(distinct) - 2, "skipped": 1}


def test_a_shipped_sample_sets_split_gives_its_distinct_prompts_with_their_system_message():
    from kto_plugin.embedded.refund_desk import SYSTEM, split_questions

    train, held_out = (read_prompt_pool(f"kto_plugin://kto-sample-refunds/{split}") for split in ("train", "held-out"))
    assert [prompt.prompt for prompt in held_out] == [question.prompt for question in split_questions()[1]]
    assert len(train) == len(split_questions()[0]) and {prompt.system for prompt in train} == {SYSTEM}


def test_replay_draws_its_share_of_the_earlier_rounds_own_labels(tmp_path):
    files = []
    for number in (1, 2):
        rows = [{"query": f"q{number}-{index}", "response": "an answer", "label": index % 2 == 0} for index in range(10)]
        files.append(write_jsonl(tmp_path / f"labels-{number}.jsonl", rows))
    drawn = steps.replay_rows(files, 0.5, seed=3)
    assert len(drawn) == 10 and len({row["query"] for row in drawn}) == 10
    assert drawn == steps.replay_rows(files, 0.5, seed=3) and steps.replay_rows(files, 0.0, seed=3) == []
    assert sorted(row["query"] for row in steps.replay_rows(files, 1.0, seed=3)) == sorted(
        f"q{number}-{index}" for number in (1, 2) for index in range(10))


def test_a_resume_takes_the_runs_own_settings_where_neither_the_config_nor_the_options_give_them(tmp_path):
    """A run started with options (`--prompts`, `--judge`, `--seed`) resumes with `--resume` alone (the studio's
    Rounds tab runs exactly that); what the options or the config say still wins, and a changed split is refused."""
    import yaml

    from kto_plugin.orchestration.iterate import run_settings

    config = tmp_path / "kto.yaml"
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out")}), encoding="utf-8")
    started = IterateSettings(prompts="prompts.txt", judge="human", answers_per_prompt=2, seed=3, rounds=2)
    fixed = started.model_dump(exclude={"rounds", "output_dir"})
    record = new_record(config, {**fixed, "rounds": 2}, "/models/start", "human")
    RunFolder(tmp_path / "out" / "iterate").write(record)

    assert run_settings(config, {}, resume=False).prompts is None  # a new run reads only the config and options
    resumed = run_settings(config, {}, resume=True)
    assert resumed.model_dump(exclude={"output_dir"}) == started.model_dump(exclude={"output_dir"})
    check_resumable(record, resumed.model_dump(exclude={"rounds", "output_dir"}), "human")
    more = run_settings(config, {"rounds": 4, "temperature": 0.5}, resume=True)
    assert (more.rounds, more.temperature, more.seed, more.judge) == (4, 0.5, 3, "human")
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "kto_iterate": {"seed": 9}}), encoding="utf-8")
    edited = run_settings(config, {}, resume=True)
    with pytest.raises(ConfigError, match=r"seed \(run: 3, now: 9\)"):
        check_resumable(record, edited.model_dump(exclude={"rounds", "output_dir"}), "human")
