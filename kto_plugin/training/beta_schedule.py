"""`kto_beta_schedule`: the beta in force at a given step, derived from the trainer state.

- a list, one value per epoch (`[0.05, 0.1, 0.2]`); the last value holds for later epochs;
- `{type: linear | cosine, start, end, warmup_steps}`: `start` for the first `warmup_steps`
  steps, then from `start` to `end` over the remaining steps of the run;
- absent: the constant `rl_beta`, or the plugin's default 1.0 where it is unset (chosen on bench/alignment: the
  paper's 0.1 let the rejected answers' push run on and carry probability off good answers; docs/loss.md#beta).

The value depends only on `global_step`, `max_steps` and `epoch`, so it is right after
`resume_from_checkpoint`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from transformers import TrainerCallback

DEFAULT_BETA = 1.0  # where `rl_beta` is unset; docs/loss.md#beta says why (bench/alignment, 3 seeds)
ScheduleType = Literal["linear", "cosine"]
SCHEDULE_TYPES: tuple[str, ...] = get_args(ScheduleType)


def check_schedule_spec(schedule: Any) -> None:
    """ValueError naming `kto_beta_schedule` and what to change, unless `schedule` is a list of positive betas or
    `{type, start, end, warmup_steps}` with positive start and end."""
    if isinstance(schedule, (list, tuple)):
        if not schedule:
            raise ValueError("`kto_beta_schedule` is an empty list: give one beta per epoch, e.g. [0.05, 0.1, 0.2]")
        values = schedule
    elif isinstance(schedule, dict):
        if schedule.get("type") not in SCHEDULE_TYPES:
            raise ValueError(
                f"`kto_beta_schedule.type: {schedule.get('type')}` is unknown: use "
                f"{' or '.join(SCHEDULE_TYPES)}, or give a list with one beta per epoch"
            )
        missing = [key for key in ("start", "end") if schedule.get(key) is None]
        if missing:
            raise ValueError(f"`kto_beta_schedule` needs {' and '.join(f'`{key}`' for key in missing)}")
        unknown = sorted(set(schedule) - {"type", "start", "end", "warmup_steps"})
        if unknown:
            raise ValueError(f"`kto_beta_schedule` has unknown keys {unknown}: use type, start, end, warmup_steps")
        if int(schedule.get("warmup_steps") or 0) < 0:
            raise ValueError("`kto_beta_schedule.warmup_steps` must be 0 or more")
        values = [schedule["start"], schedule["end"]]
    else:
        raise ValueError(
            f"`kto_beta_schedule: {schedule!r}` must be a list with one beta per epoch "
            "or {type: linear | cosine, start, end, warmup_steps}"
        )
    for value in values:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"`kto_beta_schedule`: every beta must be a positive number, got {value!r}")


@dataclass(frozen=True)
class BetaSchedule:
    constant: float | None = None
    per_epoch: tuple[float, ...] | None = None
    kind: str | None = None
    start: float | None = None
    end: float | None = None
    warmup_steps: int = 0

    @classmethod
    def from_config(cls, schedule: Any, rl_beta: float | None) -> "BetaSchedule":
        if schedule is None:
            return cls(constant=DEFAULT_BETA if rl_beta is None else float(rl_beta))
        if isinstance(schedule, (list, tuple)):
            return cls(per_epoch=tuple(float(value) for value in schedule))
        return cls(kind=schedule["type"], start=float(schedule["start"]), end=float(schedule["end"]),
                   warmup_steps=int(schedule.get("warmup_steps") or 0))

    def value(self, global_step: int, max_steps: int, epoch: float) -> float:
        if self.constant is not None:
            return self.constant
        if self.per_epoch is not None:
            index = min(int(math.floor(epoch + 1e-9)), len(self.per_epoch) - 1)
            return self.per_epoch[max(index, 0)]
        if global_step < self.warmup_steps:
            return self.start
        span = max(max_steps - self.warmup_steps, 1)
        progress = min(max((global_step - self.warmup_steps) / span, 0.0), 1.0)
        if self.kind == "cosine":
            progress = (1 - math.cos(math.pi * progress)) / 2
        return self.start + (self.end - self.start) * progress


class BetaScheduleCallback(TrainerCallback):
    """Sets `trainer.beta` before every step from the schedule."""

    def __init__(self, trainer, schedule: BetaSchedule):
        self.trainer = trainer
        self.schedule = schedule

    def _apply(self, state):
        self.trainer.set_beta(self.schedule.value(state.global_step, state.max_steps, state.epoch or 0.0))

    def on_train_begin(self, args, state, control, **kwargs):
        self._apply(state)

    def on_step_begin(self, args, state, control, **kwargs):
        self._apply(state)
