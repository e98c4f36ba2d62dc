"""Beta schedules, automatic class weights and KL pairing: the pure rules."""

from __future__ import annotations

import pytest

from bench.prep import plain_rule_partners
from kto_plugin.data.class_balance import RATIO_HIGH, RATIO_LOW, auto_weights, weight_ratio, weights_in_range
from kto_plugin.training.beta_schedule import BetaSchedule
from kto_plugin.training.class_weights import few_minority_rows_warning
from kto_plugin.training.kl_pairing import kl_partners


def test_absent_schedule_is_rl_beta_or_default():
    assert BetaSchedule.from_config(None, None).value(5, 10, 0.5) == 1.0  # the plugin's default, chosen on the bench
    assert BetaSchedule.from_config(None, 0.3).value(5, 10, 2.5) == 0.3


@pytest.mark.parametrize("epoch,expected", [
    (0.0, 0.05), (0.5, 0.05), (0.999, 0.05), (1.0, 0.1), (1.5, 0.1), (2.0, 0.2), (2.9, 0.2), (3.0, 0.2), (7.2, 0.2),
])
def test_per_epoch_list_changes_at_epoch_boundaries_and_holds_last(epoch, expected):
    schedule = BetaSchedule.from_config([0.05, 0.1, 0.2], 0.1)
    assert schedule.value(global_step=0, max_steps=100, epoch=epoch) == expected


def test_linear_schedule_with_warmup():
    schedule = BetaSchedule.from_config({"type": "linear", "start": 0.05, "end": 0.25, "warmup_steps": 10}, None)
    assert schedule.value(0, 110, 0) == 0.05
    assert schedule.value(9, 110, 0) == 0.05
    assert schedule.value(10, 110, 0) == pytest.approx(0.05)
    assert schedule.value(60, 110, 0) == pytest.approx(0.15)
    assert schedule.value(110, 110, 0) == pytest.approx(0.25)
    assert schedule.value(500, 110, 0) == pytest.approx(0.25)


def test_cosine_schedule_is_symmetric_around_the_midpoint():
    schedule = BetaSchedule.from_config({"type": "cosine", "start": 0.2, "end": 0.0 + 1e-3}, None)
    assert schedule.value(0, 100, 0) == pytest.approx(0.2)
    assert schedule.value(50, 100, 0) == pytest.approx((0.2 + 1e-3) / 2)
    assert schedule.value(25, 100, 0) > (0.2 + 1e-3) / 2 > schedule.value(75, 100, 0)
    assert schedule.value(100, 100, 0) == pytest.approx(1e-3)


@pytest.mark.parametrize("n_desirable,n_undesirable", [(500, 500), (100, 900), (900, 100), (1, 1000), (37, 41)])
def test_auto_weights_land_in_the_papers_range(n_desirable, n_undesirable):
    weight_d, weight_u = auto_weights(n_desirable, n_undesirable)
    ratio = weight_ratio(n_desirable, n_undesirable, weight_d, weight_u)
    assert RATIO_LOW <= ratio <= RATIO_HIGH
    assert min(weight_d, weight_u) == 1.0  # the majority class keeps weight 1
    assert weights_in_range(n_desirable, n_undesirable, weight_d, weight_u)


def test_auto_weights_raise_the_minority_class():
    assert auto_weights(100, 900)[0] > 1.0  # few desirable: lambda_D up
    assert auto_weights(900, 100)[1] > 1.0  # few undesirable: lambda_U up


def test_unit_weights_on_imbalanced_data_are_out_of_range():
    assert not weights_in_range(100, 900, 1.0, 1.0)
    assert not weights_in_range(900, 100, 1.0, 1.0)
    assert weights_in_range(500, 500, 1.0, 1.0)


def test_micro_batch_one_pairs_inside_the_accumulation_window():
    completions = [[i] for i in range(32)]
    partners = kl_partners(completions, window=16)
    for index, partner in enumerate(partners):
        assert partner is not None and partner != index
        assert partner // 16 == index // 16  # same optimizer step


def test_identical_neighbouring_completions_are_never_paired():
    completions = [[1, 2], [1, 2], [1, 2], [3], [1, 2], [4, 5], [4, 5], [6]]
    partners = kl_partners(completions, window=4)
    for index, partner in enumerate(partners):
        assert completions[partner] != completions[index]


def test_window_of_one_example_reaches_outside_it():
    completions = [[1], [1], [2], [3]]
    partners = kl_partners(completions, window=1)
    assert partners[0] == 2 and partners[1] == 2 and partners[2] == 3 and partners[3] == 0


def test_all_identical_completions_have_no_partner():
    assert kl_partners([[7, 7]] * 5, window=4) == [None] * 5


def _apply(labels, **cfg_values):
    import logging
    from types import SimpleNamespace

    from axolotl.utils.dict import DictDefault
    from datasets import Dataset

    from kto_plugin.training.class_weights import apply_class_weights

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("axolotl.kto_plugin")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    trainer = SimpleNamespace(train_dataset=Dataset.from_dict({"label": labels}), desirable_weight=cfg_values.pop("weight_d", 1.0),
                              undesirable_weight=cfg_values.pop("weight_u", 1.0))
    for attribute in ("args", "sft_weight", "class_sampling"):
        if attribute in cfg_values:
            setattr(trainer, attribute, cfg_values.pop(attribute))
    try:
        apply_class_weights(DictDefault(cfg_values), trainer)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return trainer, [record.getMessage() for record in records]


def test_auto_weights_are_set_on_the_trainer_and_logged_once():
    trainer, messages = _apply([True] * 10 + [False] * 90, kto_auto_weights=True)
    assert trainer.desirable_weight == pytest.approx(10.5) and trainer.undesirable_weight == 1.0
    assert messages == [
        "KTO class weights (kto_auto_weights): n_desirable=10, n_undesirable=90, "
        "lambda_D=10.5, lambda_U=1, lambda_D*n_D/(lambda_U*n_U)=1.167"
    ]


def test_repeated_accepted_rows_raise_the_sft_weight_by_their_reads_and_repeated_rejected_rows_do_not():
    """`kto_class_balance` sampling (data/class_balance.py): 10 accepted rows of 100 read 10.5 times an epoch, so the
    SFT term weighs 3 x 10.5; with the rejected rows the rare ones, and without sampling, it stays as configured."""
    from kto_plugin.data.class_balance import balance_plan

    accepted_rare = [True] * 10 + [False] * 90
    plan = balance_plan(10, 90, True, None, None, "auto")
    trainer, messages = _apply(accepted_rare, kto_auto_weights=True, sft_weight=3.0, class_sampling=plan)
    assert plan.factor == pytest.approx(10.5) and trainer.sft_weight == pytest.approx(31.5)
    assert "the SFT term weighs kto_sft_weight 3 x 10.5 (each accepted row's reads an epoch) = 31.5" in messages[0]

    rejected_rare = [True] * 90 + [False] * 10
    trainer, messages = _apply(rejected_rare, kto_auto_weights=True, sft_weight=3.0,
                               class_sampling=balance_plan(90, 10, True, None, None, "auto"))
    assert trainer.sft_weight == 3.0 and "SFT term" not in messages[0]
    trainer, _ = _apply(accepted_rare, kto_auto_weights=True, sft_weight=3.0, class_sampling=None)  # weights
    assert trainer.sft_weight == 3.0
    trainer, _ = _apply(accepted_rare, kto_auto_weights=True, sft_weight=0.0, class_sampling=plan)  # no SFT term
    assert trainer.sft_weight == 0.0


def test_rare_heavily_weighted_class_warns_with_a_learning_rate_and_a_batch():
    from types import SimpleNamespace

    warning = few_minority_rows_warning(33, 384, *auto_weights(33, 384), 2e-3, 8, 0.0)
    for text in ("33 of 417, about 0.6 per optimizer step of 8", "weighted 13.6 times", "`learning_rate` to about 0.00059",
                 "global batch to about 51 rows", "keep `kto_sft_weight` above 0"):
        assert text in warning, text
    assert "kto_sft_weight" not in few_minority_rows_warning(33, 384, *auto_weights(33, 384), 2e-3, 8, 1.0)
    assert few_minority_rows_warning(200, 217, *auto_weights(200, 217), 2e-3, 8, 0.0) is None  # close weights
    assert "undesirable rows are rare" in few_minority_rows_warning(384, 33, *auto_weights(384, 33), 2e-3, 8, 0.0)

    args = SimpleNamespace(per_device_train_batch_size=4, gradient_accumulation_steps=2, world_size=1,
                           learning_rate=2e-3, kto_sft_weight=0.0)
    _, messages = _apply([True] * 33 + [False] * 384, args=args, kto_auto_weights=True)
    assert messages[-1] == warning  # the trainer logs it, from its training arguments


def test_explicit_weights_out_of_range_warn_with_numbers_and_suggestion():
    trainer, messages = _apply([True] * 90 + [False] * 10, weight_d=1.0, weight_u=1.0)
    assert trainer.desirable_weight == 1.0  # explicit weights are left as they are
    warning = messages[-1]
    assert "1*90/(1*10) = 9.000 is outside the KTO paper's [1, 4/3]" in warning
    assert "kto_undesirable_weight: 7.714" in warning and "kto_auto_weights: true" in warning


@pytest.mark.parametrize("seed", range(40))
def test_linear_pairing_is_the_plain_rule(seed):
    import random

    rng = random.Random(seed)
    count = rng.randint(1, 40)
    alphabet = [[1], [2, 3], [4], [1, 1]][: rng.randint(1, 4)]
    completions = [rng.choice(alphabet) for _ in range(count)]
    for window in (1, 2, 3, 4, 7, 16, 64):
        assert kl_partners(completions, window) == plain_rule_partners(completions, window), (completions, window)


def test_pairing_200k_examples_pairs_within_the_step():
    """Linear time: 200k examples take well under a second (the quadratic rule took hours); bench/ times it."""
    import numpy as np

    from kto_plugin.training.kl_pairing import kl_partner_array

    rng = np.random.default_rng(0)
    keys = rng.integers(0, 50_000, size=200_000)
    keys[1000:1100] = 7  # a long run of identical completions
    partners = kl_partner_array(keys, window=64)
    assert (partners >= 0).all() and (keys[partners] != keys).all()
    inside = partners // 64 == np.arange(len(keys)) // 64
    assert inside.mean() > 0.99


def test_kl_column_is_the_partners_completions_in_a_shuffled_dataset():
    from datasets import Dataset

    from kto_plugin.training.kl_pairing import with_kl_completions

    completions = [[1, 2], [1, 2], [3], [4, 5, 6], [3], [7], [7], [1, 2], [8]]
    dataset = Dataset.from_dict({"completion_ids": completions, "KL_completion_ids": completions,
                                 "label": [True, False] * 4 + [True]}).shuffle(seed=1)
    paired, unpaired = with_kl_completions(dataset, window=3)
    order = dataset["completion_ids"]
    expected = [order[partner] for partner in kl_partners(order, 3)]
    assert unpaired == 0
    assert paired["KL_completion_ids"] == expected
    assert paired["completion_ids"] == order and paired["label"] == dataset["label"]

    alone, unpaired = with_kl_completions(Dataset.from_dict({"completion_ids": [[5]] * 3, "KL_completion_ids": [[0]] * 3}), 2)
    assert unpaired == 3 and alone["KL_completion_ids"] == [[5]] * 3


def test_kl_column_is_added_where_trl_built_none():
    """The trainer keeps TRL from building its own KL column: the plugin's is added to rows without one."""
    from datasets import Dataset

    from kto_plugin.training.kl_pairing import with_kl_completions

    paired, unpaired = with_kl_completions(Dataset.from_dict({"completion_ids": [[1], [2], [3]], "label": [True] * 3}), 3)
    assert unpaired == 0 and paired["KL_completion_ids"] == [[2], [3], [1]]
