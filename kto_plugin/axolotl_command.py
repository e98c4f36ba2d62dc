"""Run an `axolotl` command (train, merge-lora, ...) in a subprocess of this Python, its output in a log file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_axolotl_logged(args: list[str], log_path: Path) -> None:
    """`axolotl ARGS` with stdout and stderr in `log_path`; a failure raises RuntimeError with the log's tail."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.run([sys.executable, "-m", "axolotl.cli.main", *args],
                              stdout=log, stderr=subprocess.STDOUT).returncode
    if code:
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-30:])
        raise RuntimeError(f"`axolotl {' '.join(args)}` failed (exit {code}); log: {log_path}\n{tail}")
