"""The KTO reference point z0 for `kto_reference_point: reward_mean` (the default): BCO's running reward mean.

The speed bench measured it at 0.53x the paper's z0's step time over whole epochs (no KL forward),
and the alignment bench found every number level with the paper's z0 within the seed spread, so it
is the default.

The paper's z0 (`kto_reference_point: kl`) is a per-step estimate of KL(pi_theta || pi_ref)
from mismatched (prompt, completion) pairs, which costs a second policy forward, without gradient, on
every micro-batch. BCO (Jung et al. 2024) shifts its rewards by delta, the running mean of the rewards
themselves, which reuses the log-ratios the step computes anyway:

    z0_t = sum_{s < t} sum_{i in step s} lambda_i * r_s(x_i, y_i)  /  sum_{s < t} sum_{i in step s} lambda_i

the mean log-ratio r = log pi_theta(y|x) - log pi_ref(y|x) of every row trained on in the optimizer
steps before step t, over all ranks, each as it was at its own step, weighted by the row's class
weight in the loss (lambda_i = lambda_D for a desirable row, lambda_U for an undesirable one). With
equal weights it is BCO's plain mean (TRL's BCOTrainer keeps the same all-time mean, including the
current batch). z0_0 = 0, which is also the paper's estimate at the first step, when the policy is
the reference.

Why the class weights: the undesirable rows are pushed down and the desirable ones up, so a plain
mean sits wherever the class ratio puts it. With 90% of the rows undesirable it follows them down:
every accepted answer is then "above z0" however far it falls, and half the rejected ones stay "above
z0" however far they are pushed, so the rejected answers are pushed down without end and the mass
lands on text nobody wrote (bench/alignment's few-desirable variant). The weights `kto_auto_weights`
chooses make lambda_D * n_D about 7/6 * lambda_U * n_U, so the weighted mean counts the classes about
equally and z0 sits between them at any class ratio, as it does on balanced data.

Against the paper's estimate it is biased in two ways: it averages the labelled rows, not mismatched
pairs, so it can be negative (it is not clamped); and it lags, averaging every earlier step. Because
it uses only earlier steps, its value does not depend on how a step is split into micro-batches,
accumulation or ranks.

The sums live on a Trainer callback, so they are saved in each checkpoint's `trainer_state.json`
(transformers' `ExportableState`) and a resumed run continues with them.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState


class RewardMeanReferencePoint(TrainerCallback, ExportableState):
    """The running class-weighted mean of the per-row log-ratios of earlier optimizer steps (global sums, float64)."""

    def __init__(self):
        self.total = 0.0  # sum of class weight x log-ratio over the rows of the finished steps
        self.count = 0.0  # the sum of their class weights (their number when both weights are 1)
        self._step_total = 0.0  # the rows seen so far in the step `_step`
        self._step_count = 0.0
        self._step: int | None = None

    def _close_earlier_step(self, step: int) -> None:
        if self._step is not None and step != self._step:
            self.total += self._step_total
            self.count += self._step_count
            self._step_total = self._step_count = 0.0
        self._step = step

    def value(self, step: int) -> float:
        """z0 for the micro-batches of optimizer step `step` (0-based: the trainer's `global_step` during it)."""
        self._close_earlier_step(step)
        return self.total / self.count if self.count else 0.0

    def observe(self, step: int, weighted_logratio_sum: float, weight_sum: float) -> None:
        """One training micro-batch's class-weighted log-ratio sum and its class weights' sum (its row count when
        both weights are 1), already summed over ranks."""
        self._close_earlier_step(step)
        self._step_total += weighted_logratio_sum
        self._step_count += weight_sum

    # ExportableState: saved after an optimizer step, so the open step's rows are complete.
    def state(self) -> dict:
        return {"args": {}, "attributes": {"total": self.total + self._step_total,
                                           "count": self.count + self._step_count}}

    def on_train_begin(self, args, state, control, **kwargs):
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if state.global_step > 0 and isinstance(saved, dict):  # resumed from a checkpoint
            attributes = saved.get("attributes", {})
            self.total, self.count = float(attributes.get("total", 0.0)), float(attributes.get("count", 0.0))
            self._step_total = self._step_count = 0.0
            self._step = None


def reward_mean_z0(trainer, logratios: torch.Tensor, class_weights: torch.Tensor, training: bool) -> torch.Tensor:
    """z0 for a micro-batch of `trainer` (its `RewardMeanReferencePoint` callback); in training the micro-batch's
    detached log-ratios, weighted by each row's class weight and summed with every rank's, join the sums for the
    next steps."""
    estimate = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, RewardMeanReferencePoint))
    step = trainer.state.global_step
    z0 = estimate.value(step)
    if training:
        class_weights = class_weights.float()
        local = torch.stack([(class_weights * logratios.float()).sum(), class_weights.sum()])
        weighted_logratio_sum, weight_sum = trainer.accelerator.reduce(local, reduction="sum").tolist()
        estimate.observe(step, weighted_logratio_sum, weight_sum)
    return torch.tensor(z0, device=logratios.device)
