"""`kto_reference_point: reward_mean`: BCO's running mean of earlier steps' log-ratios as z0."""

from __future__ import annotations

import random

import pytest
from transformers import TrainerControl, TrainerState

from kto_plugin.data.class_balance import auto_weights
from kto_plugin.training.reference_point import RewardMeanReferencePoint, reward_mean_z0


def step_logratios(steps: int, rows_per_step: int, seed: int = 0) -> list[list[float]]:
    generator = random.Random(seed)
    return [[generator.gauss(0.0, 3.0) for _ in range(rows_per_step)] for _ in range(steps)]


def run(logratios: list[list[float]], micro_batch: int) -> list[float]:
    """z0 as each step's micro-batches see it, the step's rows observed a micro-batch at a time."""
    estimate, seen = RewardMeanReferencePoint(), []
    for step, rows in enumerate(logratios):
        for start in range(0, len(rows), micro_batch):
            seen.append(estimate.value(step))
            part = rows[start:start + micro_batch]
            estimate.observe(step, sum(part), len(part))
    return seen


def test_z0_is_zero_in_the_first_step_then_the_mean_of_every_earlier_steps_rows():
    logratios = step_logratios(steps=5, rows_per_step=4)
    seen = run(logratios, micro_batch=2)
    per_step = seen[::2]
    assert seen[1::2] == per_step  # both micro-batches of a step see one value: the current step is left out
    assert per_step[0] == 0.0
    for step in range(1, 5):
        earlier = [value for rows in logratios[:step] for value in rows]
        assert per_step[step] == pytest.approx(sum(earlier) / len(earlier), rel=1e-12)


@pytest.mark.parametrize("micro_batch", [1, 3, 6])
def test_the_split_of_a_step_into_micro_batches_does_not_change_z0(micro_batch):
    logratios = step_logratios(steps=6, rows_per_step=6, seed=micro_batch)
    whole_steps = run(logratios, micro_batch=6)
    split = run(logratios, micro_batch=micro_batch)
    per_step = split[:: -(-6 // micro_batch)]
    assert per_step == pytest.approx(whole_steps, rel=1e-12)


def test_a_checkpoint_taken_after_a_step_resumes_with_the_same_z0():
    logratios = step_logratios(steps=6, rows_per_step=4, seed=3)
    uninterrupted = run(logratios, micro_batch=2)

    first = RewardMeanReferencePoint()
    for step in range(3):
        first.value(step)
        first.observe(step, sum(logratios[step]), len(logratios[step]))
    # transformers keeps an ExportableState callback's state() in trainer_state.json at each save
    saved = TrainerState(global_step=3, stateful_callbacks={"RewardMeanReferencePoint": first.state()})
    saved = TrainerState(**{**saved.__dict__})  # as load_from_json rebuilds it
    resumed = RewardMeanReferencePoint()
    resumed.on_train_begin(None, saved, TrainerControl())
    seen = []
    for step in range(3, 6):
        for start in range(0, 4, 2):
            seen.append(resumed.value(step))
            resumed.observe(step, sum(logratios[step][start:start + 2]), 2)
    assert seen == pytest.approx(uninterrupted[6:], rel=1e-12)


def test_a_fresh_run_ignores_a_state_with_no_steps_behind_it():
    estimate = RewardMeanReferencePoint()
    estimate.on_train_begin(None, TrainerState(global_step=0, stateful_callbacks={
        "RewardMeanReferencePoint": {"args": {}, "attributes": {"total": 5.0, "count": 1.0}}}), TrainerControl())
    assert estimate.value(0) == 0.0


def z0_through_the_trainer_hook(steps: list[tuple[list[float], list[bool]]], desirable_weight: float,
                                 undesirable_weight: float) -> list[float]:
    """z0 at each step, each step's rows given to `reward_mean_z0` as one micro-batch, through a real (one-process)
    `Accelerator`'s reduce; the trainer around it holds only what the function reads."""
    from types import SimpleNamespace

    import torch
    from accelerate import Accelerator

    estimate = RewardMeanReferencePoint()
    trainer = SimpleNamespace(callback_handler=SimpleNamespace(callbacks=[estimate]),
                              state=SimpleNamespace(global_step=0), accelerator=Accelerator(cpu=True))
    seen = []
    for step, (logratios, desirable) in enumerate(steps):
        trainer.state.global_step = step
        labels = torch.tensor(desirable)
        class_weights = torch.where(labels, desirable_weight, undesirable_weight)
        seen.append(reward_mean_z0(trainer, torch.tensor(logratios), class_weights, training=True).item())
    return seen


def test_z0_weighs_each_row_by_its_class_weight_and_is_the_plain_mean_when_the_weights_are_equal():
    generator = random.Random(7)
    steps = [([generator.gauss(0.0, 3.0) for _ in range(5)], [generator.random() < 0.3 for _ in range(5)])
             for _ in range(4)]
    weighted = z0_through_the_trainer_hook(steps, desirable_weight=2.5, undesirable_weight=0.5)
    equal = z0_through_the_trainer_hook(steps, desirable_weight=1.0, undesirable_weight=1.0)
    assert weighted[0] == equal[0] == 0.0
    for step in range(1, 4):
        rows = [(value, label) for logratios, labels in steps[:step] for value, label in zip(logratios, labels)]
        weights = [2.5 if label else 0.5 for _, label in rows]
        expected = sum(weight * value for weight, (value, _) in zip(weights, rows)) / sum(weights)
        assert weighted[step] == pytest.approx(expected, rel=1e-5)
        assert equal[step] == pytest.approx(sum(value for value, _ in rows) / len(rows), rel=1e-5)


@pytest.mark.parametrize("desirable_share", [0.05, 0.1, 0.5, 0.9])
def test_with_kto_auto_weights_z0_sits_between_the_two_classes_at_any_class_ratio(desirable_share):
    """The rejected answers pushed far down (-8) and the accepted ones up (+1): with the weights `kto_auto_weights`
    gives, z0 stays near the middle (-3.5) whatever the share of accepted rows, so neither class is "beyond z0" for
    free. (An unweighted mean follows the majority: about -7.5 at a 5% share, where every rejected row below it is
    still pushed down.)"""
    rows = 200
    desirable = [index < round(desirable_share * rows) for index in range(rows)]
    logratios = [1.0 if label else -8.0 for label in desirable]
    weights = auto_weights(sum(desirable), rows - sum(desirable))
    z0 = z0_through_the_trainer_hook([(logratios, desirable), ([0.0], [False])], *weights)[1]
    # the class weights put lambda_D * n_D / (lambda_U * n_U) in [1, 4/3]: the accepted class's share of the weight is
    # between 1/2 and 4/7, so z0 is between the middle and 4/7 of the way up from -8
    assert -8.0 + 9.0 * 0.5 - 1e-4 <= z0 <= -8.0 + 9.0 * 4 / 7 + 1e-4, z0


@pytest.mark.stack("py312")  # the two-rank run (tests/distributed) covers py311; TRL 1.14's own KL switch here
def test_axolotl_train_with_the_reward_mean_builds_no_kl_pairs_and_logs_z0_from_earlier_steps(axolotl, tmp_path):
    from helpers import base_config, read_metrics_file, train_with_axolotl, with_lora

    config = with_lora(base_config(
        tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
        kto_reference_point="reward_mean", micro_batch_size=1, gradient_accumulation_steps=2, max_steps=3,
        learning_rate=0.002, lr_scheduler="constant"))
    result = train_with_axolotl(tmp_path, "reward_mean", config, "--launcher", "python")
    output = result.stdout + result.stderr
    assert "no KL pairs and no KL forward" in output
    assert "KL estimate for them uses their own completion" not in output
    z0 = [record["kl"] for record in read_metrics_file(tmp_path / "out") if "kl_raw" in record]
    assert len(z0) == 3 and z0[:2] == [0, 0] and z0[2] != 0, z0  # the first step's log-ratios are 0 (fresh adapter)
