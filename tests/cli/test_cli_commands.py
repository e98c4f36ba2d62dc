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


def test_kto_command_is_registered_with_axolotl_cli():
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run([sys.executable, "-m", "axolotl.cli.main", "kto", "--help"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for command in ("make-tiny-model", "sample-data", "summary"):
        assert command in result.stdout
