"""`axolotl kto try`: the sample, the held-out measures, the verdict, and a real run on the sample data."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import REPO_ROOT, run_axolotl

from kto_plugin.data.feedback_examples import normalised_prompt_key
from kto_plugin.data.located_examples import LocatedExample
from kto_plugin.evaluation.held_out_probe import HeldOutSet, preference_accuracy, reward_accuracy_and_margin
from kto_plugin.orchestration.suitability import TryResult, pick_sample, verdict


def example(prompt: str, answer: str, label: bool) -> LocatedExample:
    return LocatedExample("data.jsonl", "data.jsonl line 1", 0, [{"role": "user", "content": prompt}], answer, label)


def test_pick_sample_caps_each_label_and_holds_out_whole_prompts_with_both_labels_first():
    examples = [example(f"paired {i}", f"good {i}", True) for i in range(30)]
    examples += [example(f"paired {i}", f"bad {i}", False) for i in range(30)]
    examples += [example(f"alone {i}", f"bad alone {i}", False) for i in range(90)]
    train, held_out = pick_sample(examples, per_label=20, held_out_share=0.25, seed=3)
    assert sum(e.label for e in train + held_out) == 20 and sum(not e.label for e in train + held_out) == 20
    train_prompts = {normalised_prompt_key(e) for e in train}
    assert not train_prompts & {normalised_prompt_key(e) for e in held_out}
    assert len(held_out) >= 10
    held_by_prompt = {}
    for e in held_out:
        held_by_prompt.setdefault(normalised_prompt_key(e), set()).add(e.label)
    sampled_both = {normalised_prompt_key(e) for e in train + held_out if e.prompt[0]["content"].startswith("paired")}
    paired_in_sample = [key for key in sampled_both
                        if {e.label for e in train + held_out if normalised_prompt_key(e) == key} == {True, False}]
    if paired_in_sample:  # prompts with both labels are held out before one-label prompts
        assert any(labels == {True, False} for labels in held_by_prompt.values())
    assert pick_sample(examples, 20, 0.25, seed=3) == (train, held_out)


def test_pick_sample_needs_two_prompts():
    with pytest.raises(ValueError, match="two distinct prompts"):
        pick_sample([example("same", "a", True), example("same", "b", False)], per_label=5)


def test_held_out_measures():
    held_out = HeldOutSet(["p1", "p1", "p2", "p2", "p3"], ["a", "r", "a", "r", "r"], [True, False, True, False, False])
    assert held_out.pairs() == [(0, 1), (2, 3)]
    assert preference_accuracy([-1.0, -2.0, -5.0, -3.0, -1.0], held_out.pairs()) == 0.5
    before = [-10.0, -10.0, -10.0, -10.0, -10.0]
    after = [-8.0, -11.0, -9.0, -12.0, -7.0]  # accepted +2, +1; rejected -1, -2, +3
    accuracy, margin = reward_accuracy_and_margin(before, after, held_out.labels)
    assert accuracy == pytest.approx(4 / 6) and margin == pytest.approx(1.5 - 0.0)
    assert reward_accuracy_and_margin(before, after, [True] * 5) == (None, None)


@pytest.mark.parametrize("accuracy, margin, expected", [
    (0.8, 0.5, "learns"), (0.6, 0.1, "learns"), (0.55, 0.1, "inconclusive"),
    (0.5, 0.2, "does not learn"), (0.7, -0.1, "does not learn"), (None, None, "inconclusive"),
])
def test_verdict_thresholds(accuracy, margin, expected):
    result = TryResult(config="kto.yaml", rows_read=40, unusable_rows=0, train_examples=20, train_accepted=10,
                       held_out_examples=20, held_out_accepted=10, held_out_pairs=8, epochs=2.0, output_dir="out",
                       before={"preference_accuracy": 0.4}, after={"preference_accuracy": 0.6},
                       reward_accuracy=accuracy, reward_margin=margin)
    kind, text = verdict(result)
    assert result.to_json()["verdict"] == kind and result.to_json()["verdict_text"] == text
    assert kind == expected
    if accuracy is not None:
        assert f"{accuracy:.0%}" in text and "0.40 -> 0.60" in text


def test_try_on_the_sample_data(axolotl, tmp_path, tiny_model):
    """The real command on the quickstart config: a brief run, held-out prompts, before and after, a verdict."""
    config = yaml.safe_load((REPO_ROOT / "yaml_examples" / "quickstart.yaml").read_text(encoding="utf-8"))
    # the random tiny model: the warm model takes minutes to make (its behaviour: test_quickstart_alignment.py)
    config.update(base_model=str(tiny_model), output_dir=str(tmp_path / "out"), dataset_prepared_path=str(tmp_path / "prepared"))
    config_path = tmp_path / "kto.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_axolotl("kto", "try", str(config_path), "--per-label", "30", "--json", str(tmp_path / "try.json"),
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "try.json").read_text(encoding="utf-8"))
    assert report["train_examples"] + report["held_out_examples"] == 60
    assert report["held_out_pairs"] > 0 and 0 <= report["reward_accuracy"] <= 1
    for side in ("before", "after"):
        assert 0 <= report[side]["preference_accuracy"] <= 1
        assert set(report[side]["rules"]) == {"not_empty", "no_absolute_promise", "no_insult", "offers_alternative"}
    assert report["verdict"] in {"learns", "inconclusive", "does not learn"}
    assert " ".join(report["verdict_text"].split()) in " ".join(result.stdout.split())  # rich wraps it
    assert (tmp_path / "out-try" / "adapter_config.json").exists()  # the brief run's LoRA adapter, not the config's output_dir
    assert not (tmp_path / "out" / "adapter_config.json").exists()  # Axolotl writes only its debug.log there
