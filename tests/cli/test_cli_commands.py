"""The `axolotl kto` group as Axolotl's CLI sees it, and command errors that say what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kto_plugin.cli import kto


def test_summary_without_metrics_says_what_is_wrong(tmp_path):
    result = CliRunner().invoke(kto, ["summary", str(tmp_path)])
    assert result.exit_code != 0 and "kto_metrics.jsonl" in result.output


def test_summary_prints_the_reward_table_of_a_metrics_file(tmp_path):
    """Without a training run (that is tests/test_train_end_to_end.py): a metrics file of two logged steps and an eval."""
    import json

    records = [
        {"step": 1, "loss": 0.69, "rewards/margins": 0.0, "rewards/chosen": 0.0, "rewards/rejected": 0.0, "beta": 0.1},
        {"step": 20, "loss": 0.41, "rewards/margins": 1.25, "rewards/chosen": 0.2, "rewards/rejected": -1.05, "beta": 0.1},
        {"step": 20, "eval_loss": 0.45, "eval_rewards/margins": 0.875},
    ]
    (tmp_path / "kto_metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    result = CliRunner().invoke(kto, ["summary", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "+1.2500" in result.output and "+0.8750" in result.output and "held-out reward margin" in result.output
    assert "held-out accepted answers falling" not in result.output  # no eval NLL logged: nothing to say

    # an evaluation where the eval split's accepted answers fell while its margin grew: said, with its step
    records += [{"step": 40, "eval_loss": 0.40, "eval_rewards/margins": 1.5, "eval_nll/chosen": 0.45,
                 "eval_nll_ref/chosen": 0.07, "eval_nll_fallen/chosen": 0.8}]
    (tmp_path / "kto_metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    result = CliRunner().invoke(kto, ["summary", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "held-out accepted answers falling from step 40" in " ".join(result.output.split())


def test_kto_command_is_registered_with_axolotl_cli(axolotl):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run([sys.executable, "-m", "axolotl.cli.main", "kto", "--help"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for command in ("make-tiny-model", "sample-data", "summary"):
        assert command in result.stdout


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """`KTOGroup`: the plugin's errors and a missing file become `Error: ...` and exit 1; anything else propagates."""
    import kto_plugin.evaluation.side_by_side as side_by_side

    sheet, key = tmp_path / "sheet.csv", tmp_path / "key.json"
    sheet.write_text("id,prompt\n1,hi\n")
    key.write_text('{"sides": {}}')
    result = CliRunner().invoke(kto, ["score", str(sheet), "--key", str(key)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "lacks the columns" in result.output
    assert isinstance(result.exception, SystemExit)

    def broken(*_):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(side_by_side, "score_sheet", broken)
    result = CliRunner().invoke(kto, ["score", str(sheet), "--key", str(key)])
    assert isinstance(result.exception, ZeroDivisionError)  # not turned into a tidy one-line message


def test_json_to_stdout_is_only_json(tmp_path):
    """`axolotl-kto check FILE --json -` (the same commands without Axolotl's logo) pipes into a JSON reader."""
    import json

    data = tmp_path / "feedback.jsonl"
    data.write_text(json.dumps({"query": "Where is my parcel?", "response": "It ships today.", "label": True}) + "\n"
                    + json.dumps({"query": "Where is my parcel?", "response": "No idea.", "label": False}) + "\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    for unbuffered in ({}, {"PYTHONUNBUFFERED": "1"}):
        result = subprocess.run([str(Path(sys.executable).parent / "axolotl-kto"), "check", str(data), "--json", "-"],
                                capture_output=True, text=True, env={**env, **unbuffered}, timeout=300)
        assert result.returncode in (0, 1), result.stderr[-2000:]
        assert json.loads(result.stdout)["rows_read"] == 2
