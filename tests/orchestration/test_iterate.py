"""`axolotl kto iterate`: two real rounds on the tiny model with a function judge, killed in round 2 and resumed."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from helpers import base_config, read_metrics_file, run_axolotl, with_lora

JUDGE = '''
import os, pathlib

CALLS = pathlib.Path(__file__).with_name("calls.txt")


def even_words(prompt, answer):
    """Desirable when the answer has an even number of words; the process dies at call KILL_AT_CALL."""
    count = int(CALLS.read_text()) + 1 if CALLS.exists() else 1
    CALLS.write_text(str(count))
    if count == int(os.environ.get("KILL_AT_CALL", "0")):
        os._exit(137)  # a kill: nothing cleaned up, nothing flushed
    return len(answer.split()) % 2 == 0
'''
PROMPTS = [f"Question {index}: where is parcel {index * 7}?" for index in range(10)]
HELD_OUT, TRAIN, PER_PROMPT = 2, 8, 4  # held_out_share 0.2 of 10 prompts
BATCH = 16  # iterate_steps.judge_scores writes the scores of each batch of 16 answers


def logits_of(model_dir, adapter=None):
    import torch

    from kto_plugin.evaluation.trained_run import load_model

    model = load_model(str(model_dir), adapter).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([[5, 17, 42, 8, 23, 61, 3]])).logits


@pytest.mark.stack("py311")  # a loop of `axolotl train` runs; not about the Axolotl version
def test_two_rounds_with_a_function_judge_survive_a_kill_in_round_two(axolotl, tmp_path, tiny_model):
    (tmp_path / "judging.py").write_text(JUDGE, encoding="utf-8")
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    config = with_lora(base_config(tmp_path, [{"path": "unused.jsonl", "type": "kto_plugin.query_response"}],
                                   max_steps=2, learning_rate=0.01))
    config["kto_iterate"] = {"prompts": str(tmp_path / "prompts.txt"), "judge": f"{tmp_path / 'judging.py'}:even_words",
                             "rounds": 2, "answers_per_prompt": PER_PROMPT, "max_new_tokens": 8}
    (tmp_path / "kto.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run = tmp_path / "out" / "iterate"
    # calls: round 0's held-out answers, round 1's answers, round 1's held-out answers, then round 2's: die in its
    # second batch of judging
    before_round_two = HELD_OUT * PER_PROMPT + TRAIN * PER_PROMPT + HELD_OUT * PER_PROMPT
    os.environ["KILL_AT_CALL"] = str(before_round_two + BATCH + 3)
    try:
        killed = run_axolotl("kto", "iterate", "kto.yaml", cwd=tmp_path)
    finally:
        del os.environ["KILL_AT_CALL"]
    assert killed.returncode == 137, killed.stdout[-3000:] + killed.stderr[-3000:]
    record = json.loads((run / "rounds.json").read_text())
    assert record["rounds"][0]["done"] == ["sampled", "labelled", "checked", "trained", "scored"]
    assert record["rounds"][1]["done"] == ["sampled"]
    judged_before_kill = [entry["index"] for entry in map(json.loads, (run / "round-2" / "judge-scores.jsonl").open())]
    assert judged_before_kill == list(range(BATCH))

    again = run_axolotl("kto", "iterate", "kto.yaml", cwd=tmp_path)
    assert again.returncode != 0 and "already holds an iterate run" in again.stderr + again.stdout
    resumed = run_axolotl("kto", "iterate", "kto.yaml", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    # the judge saw each answer once, except the one it died on
    calls = int((tmp_path / "calls.txt").read_text())
    assert calls == before_round_two + BATCH + 3 + (TRAIN * PER_PROMPT - BATCH) + HELD_OUT * PER_PROMPT
    record = json.loads((run / "rounds.json").read_text())
    assert [entry["done"][-1] for entry in record["rounds"]] == ["scored", "scored"]
    for number in (1, 2):
        folder = run / f"round-{number}"
        answers = [json.loads(line) for line in (folder / "answers.jsonl").open()]
        scores = [json.loads(line)["index"] for line in (folder / "judge-scores.jsonl").open()]
        labels = [json.loads(line) for line in (folder / "labels.jsonl").open()]
        assert len(answers) == TRAIN * PER_PROMPT and sorted(scores) == list(range(len(answers)))
        keys = [(row["query"], row["response"]) for row in labels]
        assert len(keys) == len(set(keys)) == len({(row["query"], row["response"]) for row in answers})
        assert all(row["label"] == (len(row["response"].split()) % 2 == 0) for row in labels)
        assert record["rounds"][number - 1]["scores"]["judged"]

    # round 2 trains from round 1's result: its base model, and so its KTO reference, is round 1's merged model
    first, second = record["rounds"]
    merged = first["model_out"]
    assert merged.endswith("round-1/merged") and second["model_in"] == merged
    assert yaml.safe_load((run / "round-2" / "config.yaml").read_text())["base_model"] == merged
    start = logits_of(record["start_model"])
    assert (logits_of(merged) - start).abs().max() > 1e-3  # round 1 changed the model
    assert (logits_of(merged) - logits_of(record["start_model"], run / "round-1" / "model")).abs().max() < 1e-4
    step_one = next(row for row in read_metrics_file(run / "round-2" / "model") if row.get("step") == 1 and "loss" in row)
    assert all(abs(value) < 1e-6 for key, value in step_one.items() if key.startswith("rewards/"))
    assert "│     2 │" in resumed.stdout and "run folder:" in resumed.stdout  # the rounds table, round 2's row
