"""Write every logged training/eval record to `output_dir/kto_metrics.jsonl`.

Hugging Face keeps the log history only inside checkpoints; this file lets
`axolotl kto summary` and the tests read the KTO metrics of a finished run.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback

from kto_plugin.errors import MissingFileError

METRICS_FILE = "kto_metrics.jsonl"


class MetricsFileCallback(TrainerCallback):
    def __init__(self, output_dir: str):
        self.path = Path(output_dir) / METRICS_FILE

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if state.global_step > 0 and self.path.exists():
            # Resumed from a checkpoint: keep what was logged up to it, drop what the
            # interrupted run logged after it (those steps are trained again).
            kept = [record for record in read_metrics(self.path.parent) if record.get("step", 0) <= state.global_step]
        self.path.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            record = {"step": state.global_step, "epoch": state.epoch, **logs}
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


def read_metrics(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        raise MissingFileError(
            f"{path} not found: is {output_dir} the output_dir of a run trained with the plugin?"
        )
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
