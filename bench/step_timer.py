"""An Axolotl plugin the bench adds to every run it times (built-in KTO and SFT included).

It only watches: the wall time of each optimizer step, where that time went
(`bench.step_profile`; not with KTO_BENCH_STEP_PROFILE=0), the wall clock at the start of training
and at the end of each epoch, and on a GPU the peak memory allocated, go to
`OUTPUT_DIR/bench_steps.json`. The GPU peak is the largest of torch's peak read at the end of each
step: Axolotl's SFT trainer resets torch's peak each time it logs (`memory/max_allocated`), so a
peak read once at the end of training would be the last step's alone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from axolotl.integrations.base import BasePlugin
import torch
from transformers import TrainerCallback

from bench.step_profile import StepProfile

PROFILE_VARIABLE = "KTO_BENCH_STEP_PROFILE"  # "0": whole steps only, no split (`bench.runs.run(profile=False)`)


class StepTimes(TrainerCallback):
    def __init__(self, output_dir: str):
        self.path = Path(output_dir) / "bench_steps.json"
        self.seconds: list[float] = []
        self._started = 0.0
        self.train_begin = 0.0
        self.epoch_ends: list[float] = []
        self.peak_gpu_bytes = 0
        self.profile = StepProfile() if os.environ.get(PROFILE_VARIABLE, "1") != "0" else None

    def on_train_begin(self, args, state, control, **kwargs):
        self.train_begin = time.time()  # wall clock: the bench compares it with the process start

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.profile:
            self.profile.optimizer_started()

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.profile:
            self.profile.optimizer_finished()

    def _read_gpu_peak(self) -> None:
        if torch.cuda.is_available():  # the allocator's own count: no device synchronisation
            self.peak_gpu_bytes = max(self.peak_gpu_bytes, torch.cuda.max_memory_allocated())

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._started)
        self._read_gpu_peak()  # before the trainer logs (Axolotl's SFT log resets the peak)
        if self.profile:
            self.profile.finish_step(self.seconds[-1])

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epoch_ends.append(time.time())

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._read_gpu_peak()
            self.path.write_text(json.dumps({"step_seconds": self.seconds, "train_begin": self.train_begin,
                                             "epoch_ends": self.epoch_ends, "peak_gpu_bytes": self.peak_gpu_bytes,
                                             "step_parts": self.profile.steps if self.profile else []}), encoding="utf-8")


class StepTimerPlugin(BasePlugin):
    def add_callbacks_post_trainer(self, cfg, trainer):
        times = StepTimes(cfg.output_dir)
        if times.profile:
            times.profile.attach(trainer)
        return [times]
