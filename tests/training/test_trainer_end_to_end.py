"""The plugin's trainer in real `axolotl train` runs: micro-batch 1, beta schedules across a resume."""

from __future__ import annotations

import json

import pytest
from helpers import base_config, read_metrics_file, train_with_axolotl, with_lora, write_jsonl

from kto_plugin.embedded.samples import sample_dataset_path


def test_micro_batch_one_gives_a_real_kl_estimate(axolotl, tmp_path, tiny_model):
    config = with_lora(base_config(
        tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
        micro_batch_size=1, gradient_accumulation_steps=8, max_steps=8, learning_rate=0.005,
        kto_auto_weights=True, kto_reference_point="kl",
    ))
    result = train_with_axolotl(tmp_path, "mb1", config)
    steps = [record for record in read_metrics_file(tmp_path / "out") if "kl_raw" in record]
    assert len(steps) == 8
    assert any(record["kl_raw"] != 0 for record in steps), steps
    # each logged value averages the step's micro-batches: a mean of clamped values is >= 0
    # and >= the clamped mean of the raw ones, and the raw values show negative estimates too
    assert all(record["kl"] >= max(record["kl_raw"], 0) - 1e-9 for record in steps)
    assert all(record["beta"] == 1.0 for record in steps)  # no rl_beta in the config: the plugin's default
    assert all("rewards/margins" in record for record in steps)
    assert "KTO class weights (kto_auto_weights): n_desirable=107, n_undesirable=160" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def schedule_runs(axolotl, tmp_path_factory, tiny_model):
    """One uninterrupted 3-epoch run with checkpoints, and one resumed from its mid-epoch-2 checkpoint."""
    tmp_path = tmp_path_factory.mktemp("schedule")
    rows = [json.loads(line) for line in sample_dataset_path("kto-sample-en").read_text().splitlines()][:24]
    data = write_jsonl(tmp_path / "small.jsonl", rows)
    config = with_lora(base_config(
        tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}],
        micro_batch_size=2, gradient_accumulation_steps=1, num_epochs=3, learning_rate=0.002,
        kto_beta_schedule=[0.05, 0.1, 0.2],
    ))
    config.update(save_strategy="steps", save_steps=9)
    train_with_axolotl(tmp_path, "full", config)
    resumed = dict(config, output_dir=str(tmp_path / "resumed"),
                   resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-18"))
    train_with_axolotl(tmp_path, "resumed", resumed)
    return read_metrics_file(tmp_path / "out"), read_metrics_file(tmp_path / "resumed")


def betas_by_step(records):
    return {record["step"]: record["beta"] for record in records if "loss" in record and "train_loss" not in record}


def test_per_epoch_schedule_changes_at_epoch_boundaries(schedule_runs):
    full, _ = schedule_runs
    betas = betas_by_step(full)
    assert sorted(betas) == list(range(1, 37))  # 24 rows / micro-batch 2 = 12 steps an epoch
    assert {betas[step] for step in range(1, 13)} == {0.05}
    assert {betas[step] for step in range(13, 25)} == {0.1}
    assert {betas[step] for step in range(25, 37)} == {0.2}


def test_resumed_run_logs_the_same_betas(schedule_runs):
    full, resumed = schedule_runs
    resumed_betas = betas_by_step(resumed)
    assert sorted(resumed_betas) == list(range(19, 37))
    full_betas = betas_by_step(full)
    assert resumed_betas == {step: full_betas[step] for step in range(19, 37)}


def test_rare_accepted_rows_are_repeated_in_the_order_and_every_step_holds_some(axolotl, tmp_path, tiny_model):
    """`kto_class_balance: auto` against `weights` on 4 accepted rows of 40 (kto_auto_weights: lambda_D 10.5)."""
    rows = [json.loads(line) for line in sample_dataset_path("kto-sample-en").read_text().splitlines()]
    accepted = [row for row in rows if row["label"]][:4]
    rejected = [row for row in rows if not row["label"]][:36]
    data = write_jsonl(tmp_path / "few.jsonl", accepted + rejected)
    logs, steps_with_accepted = {}, {}
    for balance in ("auto", "weights"):
        config = with_lora(base_config(
            tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}],
            micro_batch_size=4, gradient_accumulation_steps=2, num_epochs=1, learning_rate=0.002,
            kto_auto_weights=True, kto_class_balance=balance, output_dir=str(tmp_path / balance),
        ))
        result = train_with_axolotl(tmp_path, balance, config)
        logs[balance] = result.stdout + result.stderr
        steps = [record for record in read_metrics_file(tmp_path / balance) if "kl_raw" in record]
        steps_with_accepted[balance] = (sum("rewards/chosen" in record for record in steps), len(steps))
    # 36 rejected rows once and the 4 accepted 10.5 times each (42 rows): 78 rows, 10 steps of 8
    assert "class-balanced sampling (kto_class_balance: auto): the 4 desirable rows" in logs["auto"]
    assert "KTO class weights (kto_auto_weights, the desirable rows repeated by kto_class_balance, counted in each " \
           "epoch's order): n_desirable=42, n_undesirable=36, lambda_D=1, lambda_U=1" in logs["auto"]
    # the few accepted answers, each read 10.5 times, get an SFT term 10.5 times as strong (data/class_balance.py)
    assert "the SFT term weighs kto_sft_weight 3 x 10.5 (each accepted row's reads an epoch) = 31.5" in logs["auto"]
    assert "the SFT term weighs" not in logs["weights"]
    assert steps_with_accepted["auto"] == (10, 10)
    # weighted instead: 5 steps, most of them without an accepted row, and the warning that says what to change
    assert "class-balanced sampling" not in logs["weights"]
    assert "lambda_D=10.5" in logs["weights"] and "`kto_class_balance: sampling`" in logs["weights"]
    with_accepted, steps = steps_with_accepted["weights"]
    assert steps == 5 and with_accepted < steps
