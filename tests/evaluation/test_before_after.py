"""`axolotl kto before-after`: where its held-out rows come from, the errors a user meets, the refund grades."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from kto_plugin.cli import kto
from kto_plugin.embedded.refund_desk import answer, split_questions
from kto_plugin.evaluation.before_after import default_held_out, refund_grades, set_name


def test_held_out_splits_follow_the_configs_train_splits(plugin_cache):
    cfg = {"datasets": [{"path": "kto_plugin://kto-sample-refunds/train"}, {"path": "kto_plugin://kto-sample-zh/train"},
                        {"path": "data/mine.jsonl"}]}
    paths = default_held_out(cfg)
    # each set's new questions, then the reworded trained questions of the sets that have them (not the refund desk)
    assert [set_name(path) for path in paths] == ["kto-sample-refunds", "kto-sample-zh", "kto-sample-zh reworded"]
    assert set_name("data/mine.jsonl") == "mine.jsonl"


def _write(tmp_path, **cfg):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"base_model": "kto_plugin://tiny-model", "output_dir": str(tmp_path / "out"), **cfg}))
    return path


def test_a_config_with_its_own_data_needs_held_out_rows(tmp_path, tiny_model):
    config = _write(tmp_path, datasets=[{"path": "data/mine.jsonl", "type": "kto_plugin.query_response"}])
    result = CliRunner().invoke(kto, ["before-after", str(config)])
    assert result.exit_code == 1 and "pass --held-out FILE" in result.output and "Traceback" not in result.output


def test_a_run_that_has_not_trained_says_so(tmp_path, tiny_model):
    config = _write(tmp_path, datasets=[{"path": "kto_plugin://kto-sample-refunds/train", "type": "kto_plugin.query_response"}])
    result = CliRunner().invoke(kto, ["before-after", str(config)])
    assert result.exit_code == 1 and "holds no trained model" in result.output and "axolotl train" in result.output
    no_model = tmp_path / "bare.yaml"
    no_model.write_text(yaml.safe_dump({"datasets": []}))
    result = CliRunner().invoke(kto, ["before-after", str(no_model)])
    assert result.exit_code == 1 and "has no base_model" in result.output


def test_refund_grades_count_only_refund_prompts_in_prompt_order():
    held_out = split_questions()[1]
    first, second = held_out[0], held_out[1]
    previews = [first.prompt, "What is machine learning?", second.prompt]
    answers = [answer(first, "good"), "garbled", "Programs that learn.", "x", answer(second, "rude"), answer(second, "good", 1)]
    grades = refund_grades(previews, answers, per_prompt=2)
    assert grades == {"good": 0.5, "other": 0.25, "rude": 0.25}
    assert refund_grades(["What is machine learning?"], ["Programs that learn."], 1) is None
