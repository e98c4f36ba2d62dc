"""The speed bench's split of a step: each forward lands in the part it is, on a real PEFT-wrapped model."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_qwen

from bench.runs import RunResult
from bench.speed import epoch_splits
from bench.step_profile import PARTS, StepProfile, mean_parts


class SlowBackwardAccelerator:
    def backward(self, loss):
        time.sleep(0.05)  # a part long enough to tell from the others
        loss.backward()


def profiled_trainer(reference_model=None):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_qwen(tied=False), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    ids = torch.randint(0, 90, (2, 7))

    def compute_loss(model_, inputs):
        logits = model_(input_ids=inputs).logits
        with torch.no_grad():
            model_(input_ids=inputs)  # the KL pairs: no gradient, adapter on
            if reference_model is None:
                with model_.disable_adapter():
                    model_(input_ids=inputs)  # the reference: the adapter off
            else:
                reference_model(input_ids=inputs)
        time.sleep(0.05)  # the loss's own arithmetic
        return logits.float().logsumexp(-1).mean()

    trainer = SimpleNamespace(model=model, ref_model=reference_model, accelerator=SlowBackwardAccelerator(),
                              compute_loss=compute_loss)
    profile = StepProfile()
    profile.attach(trainer)
    return trainer, profile, ids


@pytest.mark.parametrize("separate_reference", [False, True])
def test_each_forward_lands_in_its_part_and_the_parts_sum_to_the_step(separate_reference):
    trainer, profile, ids = profiled_trainer(tiny_qwen(tied=False).eval() if separate_reference else None)
    totals = []
    for _ in range(2):
        began = time.perf_counter()
        loss = trainer.compute_loss(trainer.model, ids)
        trainer.accelerator.backward(loss)
        profile.optimizer_started()
        time.sleep(0.02)
        profile.optimizer_finished()
        totals.append(time.perf_counter() - began + 0.03)  # 0.03 s the step spent elsewhere
        profile.finish_step(totals[-1])
    assert len(profile.steps) == 2
    # Lower bounds and sums only: a sleep lasts at least what it asks, and on a loaded machine (CI beside other work)
    # any part can take longer, so no part has a wall-clock ceiling (a bound of 0.03 +- 0.005 s once failed there)
    for step, total in zip(profile.steps, totals):
        assert set(step) == set(PARTS)
        for part in ("policy forward", "KL-pair forward", "reference forward", "output layer"):
            assert step[part] > 0, part
        assert 0.05 <= step["loss and log-probs"] < 0.05 + step["policy forward"] * 50, step
        assert 0.05 <= step["backward"] and 0.02 <= step["optimizer"]
        assert 0.03 <= step["other"] and sum(step.values()) == pytest.approx(total)  # the parts sum to the step
    assert mean_parts(profile.steps)["backward"] == pytest.approx(
        sum(step["backward"] for step in profile.steps) / 2)


def test_a_forward_run_again_inside_the_backward_counts_as_backward():
    trainer, profile, ids = profiled_trainer()
    inner_backward = trainer.accelerator.backward

    def backward_that_recomputes(loss):
        trainer.model(input_ids=ids)  # as gradient checkpointing recomputes the body's forward
        inner_backward(loss)

    trainer.accelerator.backward = backward_that_recomputes
    profile._wrap_backward(trainer.accelerator)
    loss = trainer.compute_loss(trainer.model, ids)
    policy_before_backward = profile._current["policy forward"]
    trainer.accelerator.backward(loss)
    assert profile._current["policy forward"] == policy_before_backward
    assert profile._current["backward"] >= 0.05


def test_epoch_splits_take_each_epoch_s_steps_and_what_lies_between_them():
    parts = {part: 0.1 for part in PARTS}
    result = RunResult("run", "kto-plugin", 0, seconds_to_first_step=10.0, epoch_end_seconds=[14.0, 16.0],
                       step_parts=[parts] * 4)
    first, second = epoch_splits(result, steps_per_epoch=2)
    assert first["seconds_per_step"] == pytest.approx(2.0) and second["seconds_per_step"] == pytest.approx(1.0)
    assert first["parts"]["between steps"] == pytest.approx(2.0 - 0.8)
    assert second["parts"]["between steps"] == pytest.approx(1.0 - 0.8)
