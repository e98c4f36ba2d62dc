"""Where a training step's time goes, for any trainer (the plugin's, the built-in KTO's, SFT's).

Hooks on the model's modules and a wrapper around the accelerator's backward split each step's
wall time into:

- `policy forward`: the model body (embeddings and decoder layers) with gradients on: the
  completions the loss trains on;
- `KL-pair forward`: the body with gradients off and the policy's weights (adapter on): the
  mismatched pairs whose log-ratio is z0;
- `reference forward`: the body with gradients off and the reference's weights (a LoRA
  adapter switched off, or a separate reference model);
- `output layer`: every call of the output layer (`lm_head`; the plugin's chunked log-probs
  run inside that call), in all three of the above;
- `loss and log-probs`: the rest of `compute_loss` (log-softmax outside the output layer, the
  loss, metrics and their all-reduce);
- `backward`; `optimizer` (`optimizer.step`, from the `on_pre_optimizer_step` to the
  `on_optimizer_step` callback);
- `other`: what is left of the step (data loading and collation, gradient clipping, logging).

Body forwards that run again inside the backward (gradient checkpointing) count as backward.
On a GPU each boundary synchronises the device first, so the parts are the device's time.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch

FORWARD_PARTS = ("policy forward", "KL-pair forward", "reference forward", "output layer")
PARTS = (*FORWARD_PARTS, "loss and log-probs", "backward", "optimizer", "other")


def _now() -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def _model_body(model: torch.nn.Module) -> torch.nn.Module | None:
    """The first module holding the decoder layers and the token embeddings (Qwen2Model, LlamaModel, ...)."""
    return next((module for module in model.modules()
                 if isinstance(getattr(module, "layers", None), torch.nn.ModuleList)
                 and hasattr(module, "embed_tokens")), None)


def _adapter_layer(model: torch.nn.Module) -> torch.nn.Module | None:
    """A LoRA layer, whose `disable_adapters` says whether the adapter is off (PEFT's `disable_adapter()`)."""
    return next((module for module in model.modules() if hasattr(module, "lora_A")
                 and hasattr(module, "disable_adapters")), None)


class StepProfile:
    """Accumulates the parts of the current step; `finish_step(total)` closes it into `steps`."""

    def __init__(self):
        self.steps: list[dict[str, float]] = []
        self._current: dict[str, float] = defaultdict(float)
        self._in_backward = False
        self._optimizer_started = 0.0

    def _timed_module(self, module: torch.nn.Module, part_of) -> None:
        started: list[tuple[float, str | None]] = []

        def before(_module, _args):
            part = None if self._in_backward else part_of()
            started.append((_now(), part))

        def after(_module, _args, _output):
            began, part = started.pop()
            if part is not None:
                self._current[part] += _now() - began

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    def _time_body_and_head(self, model: torch.nn.Module, body_part) -> None:
        body = _model_body(model)
        if body is not None:
            self._timed_module(body, body_part)
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if isinstance(head, torch.nn.Module):
            self._timed_module(head, lambda: "output layer")

    def attach(self, trainer) -> None:
        model = trainer.model
        adapter = _adapter_layer(model)

        def body_part() -> str:
            if torch.is_grad_enabled():
                return "policy forward"
            return "reference forward" if adapter is not None and adapter.disable_adapters else "KL-pair forward"

        self._time_body_and_head(model, body_part)
        reference = getattr(trainer, "ref_model", None)
        if isinstance(reference, torch.nn.Module) and reference is not model:
            self._time_body_and_head(reference, lambda: "reference forward")
        self._wrap_compute_loss(trainer)
        self._wrap_backward(trainer.accelerator)

    def _wrap_compute_loss(self, trainer) -> None:
        compute_loss = trainer.compute_loss

        def timed(*args, **kwargs):
            forwards_before = sum(self._current[part] for part in FORWARD_PARTS)
            began = _now()
            try:
                return compute_loss(*args, **kwargs)
            finally:
                forwards = sum(self._current[part] for part in FORWARD_PARTS) - forwards_before
                self._current["loss and log-probs"] += _now() - began - forwards

        trainer.compute_loss = timed

    def _wrap_backward(self, accelerator) -> None:
        backward = accelerator.backward

        def timed(*args, **kwargs):
            began = _now()
            self._in_backward = True
            try:
                return backward(*args, **kwargs)
            finally:
                self._in_backward = False
                self._current["backward"] += _now() - began

        accelerator.backward = timed

    def optimizer_started(self) -> None:
        self._optimizer_started = _now()

    def optimizer_finished(self) -> None:
        self._current["optimizer"] += _now() - self._optimizer_started

    def finish_step(self, total_seconds: float) -> None:
        parts = {part: self._current[part] for part in PARTS[:-1]}
        parts["other"] = max(0.0, total_seconds - sum(parts.values()))
        self.steps.append(parts)
        self._current = defaultdict(float)


def mean_parts(steps: list[dict[str, float]]) -> dict[str, float]:
    """Each part's mean seconds per step over `steps`."""
    if not steps:
        return {}
    return {part: sum(step.get(part, 0.0) for step in steps) / len(steps) for part in PARTS}
