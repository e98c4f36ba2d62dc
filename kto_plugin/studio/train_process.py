"""`axolotl ...` as a child process of the studio (`axolotl train CONFIG` from the Train tab, `axolotl kto iterate`
from the Rounds tab): one at a time, stoppable, its log in a file.

The child runs in its own process group, so Stop ends it and whatever it launched
(SIGTERM, then SIGKILL after 10 s). A training run's output goes to `OUTPUT_DIR/studio-train.log`;
the page shows the log's tail and plots `OUTPUT_DIR/kto_metrics.jsonl` as the run writes it.
It runs in the studio's working folder, as the command typed there would (relative paths in
the config mean the same).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from kto_plugin.errors import BusyError
from kto_plugin.orchestration.axolotl_jobs import axolotl_command, axolotl_environment

LOG_NAME = "studio-train.log"
PLOTTED = {  # plot -> {series name: metric key}
    "loss": {"loss": "loss"},
    "rewards": {"desirable": "rewards/chosen", "undesirable": "rewards/rejected", "margin": "rewards/margins"},
    "kl": {"reference point z0": "kl"},
    "accepted": {"policy": "nll/chosen", "reference": "nll_ref/chosen",  # the training rows, each logging window
                 "held-out policy": "eval_nll/chosen", "held-out reference": "eval_nll_ref/chosen"},  # the eval split
    "beta": {"beta": "beta"},
}


class AxolotlProcess:
    """One `axolotl ARGS` child at a time, its output in a log file."""

    def __init__(self):
        self._lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.started_at = 0.0
        self.stopped = False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start_command(self, args: list[str], log_path: Path) -> str:
        """Start `axolotl ARGS`, its output in `log_path`; BusyError while a child is running."""
        with self._lock:
            if self.running():
                raise BusyError(f"a run is already going (pid {self.process.pid}): stop it first")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path = log_path
            with open(self.log_path, "w", encoding="utf-8") as log:
                self.process = subprocess.Popen(axolotl_command(args), stdout=log, stderr=subprocess.STDOUT,
                                                env=axolotl_environment(), start_new_session=True)
            self.started_at, self.stopped = time.monotonic(), False
            return f"started `axolotl {' '.join(args)}` (pid {self.process.pid}); log: {self.log_path}"

    def stop(self) -> str:
        with self._lock:
            if not self.running():
                return "no run is going"
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self.stopped = True
            return f"stopped the run (pid {self.process.pid})"

    def status(self) -> str:
        if self.process is None:
            return "no run started yet"
        seconds = int(time.monotonic() - self.started_at)
        code = self.process.poll()
        if code is None:
            return f"running for {seconds} s (pid {self.process.pid})"
        if self.stopped:
            return "stopped"
        return "finished (exit 0)" if code == 0 else f"failed (exit {code}): see the log"

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
        # a progress bar redraws its line with carriage returns: keep each line's last drawing
        return "\n".join(line.rsplit("\r", 1)[-1] for line in text.rstrip("\n").split("\n")[-lines:])


class TrainProcess(AxolotlProcess):
    """`axolotl train CONFIG`, its log `OUTPUT_DIR/studio-train.log`."""

    def __init__(self):
        super().__init__()
        self.output_dir: Path | None = None  # the run's folder, whose metrics the Train tab plots

    def start(self, config: Path, output_dir: Path) -> str:
        self.output_dir = output_dir
        return self.start_command(["train", str(config)], output_dir / LOG_NAME)


def metric_frames(records: list[dict]) -> dict:
    """{plot: DataFrame(step, value, series)} of a run's records (an eval record adds only its `eval_` series)."""
    import pandas as pd

    frames = {}
    for plot, series in PLOTTED.items():
        rows = [
            {"step": record["step"], "value": float(record[key]), "series": name}
            for record in records
            for name, key in series.items()
            if key in record and isinstance(record[key], (int, float))
        ]
        frames[plot] = pd.DataFrame(rows, columns=["step", "value", "series"])
    return frames
