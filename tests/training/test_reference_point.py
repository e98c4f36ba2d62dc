"""`kto_reference_point: reward_mean`: BCO's running mean of earlier steps' log-ratios as z0."""

from __future__ import annotations

import random

import pytest
from transformers import TrainerControl, TrainerState

from kto_plugin.training.reference_point import RewardMeanReferencePoint


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
