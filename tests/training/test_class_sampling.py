"""`kto_class_balance`: when the order repeats a rare class, how often, in which rounds, and the weights left."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from kto_plugin.data.class_balance import auto_weights, sampling_plan
from kto_plugin.training.class_sampling import sampled_order


def test_auto_samples_only_weights_more_than_four_apart_and_weights_never_samples():
    assert sampling_plan(33, 384, *auto_weights(33, 384)) is not None  # lambda_D 13.6
    assert sampling_plan(524, 599, *auto_weights(524, 599)) is None  # the quickstart's 1.33: weights as before
    assert sampling_plan(524, 599, *auto_weights(524, 599), mode="sampling") is not None
    assert sampling_plan(33, 384, *auto_weights(33, 384), mode="weights") is None
    assert sampling_plan(33, 384, 1.0, 1.0, mode="sampling") is None  # no weights asked for, no repeats
    assert sampling_plan(0, 384, 13.6, 1.0, mode="sampling") is None  # one class only
    assert sampling_plan(33, 384, 4.0, 1.0) is None and sampling_plan(33, 384, 4.01, 1.0) is not None


@pytest.mark.parametrize("n_desirable, n_undesirable", [(33, 384), (384, 33), (10, 990), (40, 100)])
def test_plan_keeps_each_class_share_of_the_loss_and_weighs_rows_alike(n_desirable, n_undesirable):
    weights = auto_weights(n_desirable, n_undesirable)
    plan = sampling_plan(n_desirable, n_undesirable, *weights, mode="sampling")
    assert plan.counts_before == (n_desirable, n_undesirable) and plan.weights_before == pytest.approx(weights)
    minority_index = 0 if plan.repeated == "desirable" else 1
    after = (plan.desirable_weight, plan.undesirable_weight)
    # lambda_c' n_c' = lambda_c n_c for the repeated class; the other class keeps its rows and weight
    assert after[minority_index] * plan.copies == pytest.approx(weights[minority_index] * plan.rows)
    assert after[1 - minority_index] == weights[1 - minority_index]
    assert max(after) / min(after) < 1.05  # both weigh about alike (rounding of the copies)
    assert plan.copies == round(max(weights) / min(weights) * plan.rows)


def _fuzz_cases(count):
    rng = np.random.default_rng(0)
    for _ in range(count):
        n_minority = int(rng.integers(1, 60))
        n_other = int(rng.integers(1, 400))
        factor = float(rng.uniform(1.05, 20))
        unit = int(rng.choice([1, 2, 3, 4, 8]))
        yield n_minority, n_other, factor, unit, int(rng.integers(1000)), bool(rng.integers(2))


@pytest.mark.parametrize("n_minority, n_other, factor, unit, seed, desirable_rare", list(_fuzz_cases(60)))
def test_sampled_order_repeats_each_rare_row_floor_or_ceil_times_and_never_twice_in_a_micro_batch(
        n_minority, n_other, factor, unit, seed, desirable_rare):
    rng = np.random.default_rng(seed)
    labels = np.array([desirable_rare] * n_minority + [not desirable_rare] * n_other)[rng.permutation(n_minority + n_other)]
    weights = (factor, 1.0) if desirable_rare else (1.0, factor)
    n_desirable = int(labels.sum())
    plan = sampling_plan(n_desirable, len(labels) - n_desirable, *weights, mode="sampling")
    lengths = rng.integers(5, 300, size=len(labels))
    for grouped in (None, lengths):
        order = sampled_order(labels, plan, unit, seed, grouped)
        counts = Counter(order.tolist())
        minority = np.flatnonzero(labels == desirable_rare)
        assert all(counts[row] == 1 for row in np.flatnonzero(labels != desirable_rare))  # every other row once
        assert sum(counts[row] for row in minority) == plan.copies
        assert {counts[row] for row in minority} <= {plan.copies // n_minority, -(-plan.copies // n_minority)}
        assert len(order) == plan.copies + n_other
        # the micro-batches of every rank together (`unit` rows) never hold one row twice, where the epoch has
        # a unit for each round (else some row has more copies than there are micro-batches)
        full = len(order) - len(order) % unit
        batches = order[:full].reshape(-1, unit)
        if len(order) >= plan.rounds * unit:
            assert all(len(set(batch.tolist())) == unit for batch in batches), (plan, unit)
        assert np.array_equal(order, sampled_order(labels, plan, unit, seed, grouped))  # every rank builds the same


def test_the_rare_rows_are_spread_over_the_epoch_not_bunched():
    labels = np.array([True] * 33 + [False] * 384)
    plan = sampling_plan(33, 384, *auto_weights(33, 384))
    order = sampled_order(labels, plan, 4, 0, np.random.default_rng(0).integers(5, 300, size=len(labels)))
    desirable_per_quarter = [int(labels[part].sum()) for part in np.array_split(order, 4)]
    assert max(desirable_per_quarter) - min(desirable_per_quarter) <= 0.15 * plan.copies / 4, desirable_per_quarter
    # with 13.6 copies of each of 33 rows in 832, a micro-batch of 4 holds about 2 accepted rows, not 0.3
    per_batch = labels[order[: len(order) // 4 * 4]].reshape(-1, 4).sum(axis=1)
    assert 1.8 < per_batch.mean() < 2.4 and (per_batch == 0).mean() < 0.2


def test_length_grouping_still_saves_padding_within_the_rounds():
    from kto_plugin.training.length_grouping import padded_positions

    rng = np.random.default_rng(1)
    labels = rng.random(20_000) < 0.05
    lengths = rng.integers(20, 1000, size=len(labels))
    plan = sampling_plan(int(labels.sum()), int((~labels).sum()), *auto_weights(int(labels.sum()), int((~labels).sum())))
    shuffled = sampled_order(labels, plan, 8, 0)
    grouped = sampled_order(labels, plan, 8, 0, lengths)
    assert padded_positions(lengths[grouped], 8) < 0.7 * padded_positions(lengths[shuffled], 8)


def test_a_million_rows_are_ordered_in_seconds():
    import time

    rng = np.random.default_rng(2)
    labels = rng.random(1_000_000) < 0.01  # 1% accepted: lambda_D about 115
    n_desirable = int(labels.sum())
    plan = sampling_plan(n_desirable, len(labels) - n_desirable, *auto_weights(n_desirable, len(labels) - n_desirable))
    start = time.perf_counter()
    order = sampled_order(labels, plan, 8, 0, rng.integers(20, 1000, size=len(labels)))
    elapsed = time.perf_counter() - start
    assert len(order) == plan.copies + len(labels) - n_desirable
    assert elapsed < 60, f"{elapsed:.1f} s"  # a bound against a quadratic path, not a benchmark


def test_the_check_says_when_the_trainer_will_repeat_rows_instead_of_weighting_them():
    from types import SimpleNamespace

    from kto_plugin.data.check_tables import weights_sentence

    def sentence(n_desirable, n_undesirable):
        weights = dict(zip(("desirable_weight", "undesirable_weight"), auto_weights(n_desirable, n_undesirable)))
        return weights_sentence(SimpleNamespace(desirable=n_desirable, undesirable=n_undesirable, auto_weights=weights))

    assert "reads each of the 33 desirable rows about 13.6 times an epoch" in sentence(33, 384)
    assert "an epoch of 832 rows, with the SFT term on them 13.6 times `kto_sft_weight`" in sentence(33, 384)
    assert "SFT term" not in sentence(384, 33)  # rare rejected rows repeated: the SFT term as configured
    assert "reads each" not in sentence(524, 599)  # the weights stay weights


def test_the_log_line_gives_the_counts_the_weights_and_the_epochs_for_the_weighted_runs_steps():
    line = sampling_plan(33, 384, *auto_weights(33, 384)).describe("auto", 4, 4.0)
    for text in ("the 33 desirable rows are weighted 13.6 times the other 384", "(448 rows,",
                 "lambda_D=1, lambda_U=1", "a micro-batch of 4 holds 2.2 desirable rows instead of 0.32",
                 "An epoch is 832 rows instead of 417: `num_epochs: 2` (now 4)"):
        assert text in line, text
