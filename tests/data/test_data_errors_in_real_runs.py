"""Data problems end real `axolotl preprocess` / `axolotl train` runs with one message: the file, the line, the fix.

Before, the plugin's message arrived inside two tracebacks (the training process's and the
launcher's), and some files never reached the plugin's reader (`UnicodeDecodeError` with no file
name, `generator raised StopIteration`, `Instruction "train" corresponds to no data!`). These run
the real command lines and grep what a user sees. A killed data stage is also tested here: what
it leaves behind, the next run removes.
"""

from __future__ import annotations

import signal

import pytest
import yaml
from helpers import REPO_ROOT, base_config, interrupt_python_when, write_jsonl

GOOD = {"query": "Where is my parcel?", "response": "It ships today.", "label": True}


def write_config(tmp_path, data, **overrides):
    config = base_config(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}], **overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


BAD_FILES = {
    "bad label": (lambda path: write_jsonl(path, [GOOD, {**GOOD, "label": "maybe"}]),
                  "line 2: invalid label 'maybe'"),
    "UTF-16": (lambda path: path.write_bytes((__import__("json").dumps(GOOD) + "\n").encode("utf-16")),
               "is UTF-16 text; save it as UTF-8"),
}  # empty and blank-only files take the same path: tests/data/test_row_files.py


@pytest.mark.parametrize("problem", ["bad label"])  # a file-level stop (UTF-16) takes the same path: test_row_files.py
def test_axolotl_preprocess_stops_with_one_message_and_no_traceback(axolotl, tmp_path, tiny_model, problem):
    write, message = BAD_FILES[problem]
    data = tmp_path / "feedback.jsonl"
    write(data)
    result = axolotl.run_axolotl("preprocess", str(write_config(tmp_path, data)), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"Error: {data}" in output and message in output, output[-3000:]
    assert "Traceback" not in output


def test_axolotl_train_stops_with_the_message_the_launcher_only_adds_that_its_child_failed(axolotl, tmp_path,
                                                                                            tiny_model):
    """Under `accelerate launch` (Axolotl's default launcher) the only traceback is accelerate's own line that its
    child exited 1; `-- --quiet` (passed to accelerate) leaves the message alone."""
    write, message = BAD_FILES["bad label"]
    data = tmp_path / "feedback.jsonl"
    write(data)
    config = str(write_config(tmp_path, data))
    result = axolotl.run_axolotl("train", config, cwd=tmp_path)
    output = result.stdout + result.stderr  # what a user sees; accelerate's traceback, if any, after the message
    assert result.returncode != 0 and f"Error: {data} {message}" in output, output[-3000:]
    assert "kto_plugin" not in output[output.find("Traceback"):] and output.count("Traceback") <= 1
    quiet = axolotl.run_axolotl("train", config, "--", "--quiet", cwd=tmp_path)
    assert quiet.returncode != 0 and f"Error: {data} {message}" in quiet.stdout + quiet.stderr
    assert "Traceback" not in quiet.stdout + quiet.stderr


def test_a_data_stage_killed_midway_leaves_nothing_the_next_run_keeps(tmp_path, tiny_model):
    """SIGKILL while the rows are written: the scratch rows file (58 MB in the report) and any half-saved prepared
    folder are removed by the next run, which prepares the rows and trains on them."""
    rows = [{"query": f"Question number {i} about my order?", "response": f"Answer {i}: it ships today.",
             "label": i % 2 == 0} for i in range(60_000)]
    data = write_jsonl(tmp_path / "big.jsonl", rows)
    write_config(tmp_path, data)
    prepared = tmp_path / "prepared"
    code = ("import sys; sys.path.insert(0, 'tests'); from pathlib import Path; from helpers import load_kto_data; "
            f"load_kto_data(Path({str(tmp_path)!r}), [{{'path': {str(data)!r}, 'type': 'kto_plugin.query_response'}}])")
    def rows_half_written() -> bool:
        scratch = list(prepared.glob("kto_plugin-rows-*/*.arrow")) if prepared.exists() else []
        return bool(scratch) and scratch[0].stat().st_size > 1_000_000

    interrupt_python_when(code, rows_half_written, signal.SIGKILL, cwd=REPO_ROOT, poll_s=0.01)
    assert list(prepared.glob("kto_plugin-rows-*"))  # what SIGKILL leaves: no cleanup ran

    from helpers import load_kto_data

    meta = load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])
    assert len(meta.train_dataset) == len(rows)
    left = [path.name for path in prepared.iterdir() if path.name.startswith(("kto_plugin-rows-", ".kto_plugin-partial-"))]
    assert left == [] and len([path for path in prepared.iterdir() if path.is_dir()]) == 1
