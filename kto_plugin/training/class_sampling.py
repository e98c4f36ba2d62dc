"""`kto_class_balance`: one epoch's order with a rare class repeated instead of weighted up.

How many copies and the weights left after are the data stage's arithmetic (`data.class_balance.sampling_plan`:
n_c' = round(f * n_c) copies of the up-weighted class c, f = lambda_c / lambda_other, every row then weighing about
alike). Here the order: it is cut into R = ceil(f) rounds. Each round holds at most one copy of a row, about
n_c' / R rows of class c and n_other / R of the other class, shuffled (seeded, so every rank builds the same order),
and is a whole number of units (`unit`: one micro-batch of every rank together) but the last. `kto_group_by_length`
sorts within each round (`length_grouping.length_grouped_order`), so no micro-batch holds two copies of one row
(where the epoch holds at least R micro-batches; fewer cannot keep a row's copies apart). Sorted by length over the
whole epoch, the copies of a row would sit side by side and fill one micro-batch: the large weight again.
"""

from __future__ import annotations

import numpy as np

from kto_plugin.data.class_balance import SamplingPlan, balance_plan, label_array
from kto_plugin.log import get_logger
from kto_plugin.training.length_grouping import GROUP_BATCHES, grouped_by_length, length_grouped_order, row_lengths

LOG = get_logger(__name__)


def _round_boundaries(total: int, rounds: int, unit: int) -> np.ndarray:
    """Where each round ends: whole units, as even as they can be, the last at `total`."""
    ends = [min(total, unit * round(k * total / (rounds * unit))) for k in range(1, rounds)]
    return np.array([*ends, total])


def sampled_order(labels: np.ndarray, plan: SamplingPlan, unit: int, seed: int,
                  lengths: np.ndarray | None = None, group_batches: int | None = None) -> np.ndarray:
    """Row indices of one epoch: the minority rows repeated by `plan`, in rounds (module docstring), each round
    shuffled, or length-grouped where `lengths` is given."""
    labels = np.asarray(labels, dtype=bool)
    minority = labels if plan.repeated == "desirable" else ~labels
    minority_rows, other_rows = np.flatnonzero(minority), np.flatnonzero(~minority)
    rng = np.random.default_rng(seed)
    rounds = plan.rounds
    # each minority row's copies: floor(f) for every row, one more for a random set of rows
    copies = np.full(len(minority_rows), plan.copies // len(minority_rows))
    copies[rng.permutation(len(minority_rows))[: plan.copies - copies.sum()]] += 1
    # the rounds each row is in: all of them but the ones it skips, skips dealt out in turn so the rounds stay even
    # (row j skips rounds start_j, start_j + 1, ... mod R, start_j the skips of the rows before it)
    skips = rounds - copies
    start = np.cumsum(skips) - skips
    in_round = (np.arange(rounds)[None, :] - start[:, None]) % rounds >= skips[:, None]
    ends = _round_boundaries(plan.copies + len(other_rows), rounds, max(int(unit), 1))
    other_rows = rng.permutation(other_rows)
    order, taken, position = [], 0, 0
    for index, end in enumerate(ends):
        picked = minority_rows[in_round[:, index]]
        left = len(other_rows) - taken
        wanted = left if index == rounds - 1 else min(max(int(end - position) - len(picked), 0), left)
        block = rng.permutation(np.concatenate([picked, other_rows[taken: taken + wanted]]))
        taken += wanted
        if lengths is not None and len(block):
            block = block[length_grouped_order(np.asarray(lengths)[block], unit, int(rng.integers(2**31)),
                                               group_batches or GROUP_BATCHES)]
        order.append(block)
        position += len(block)
    return np.concatenate(order).astype(np.int64)


def plan_for_training(labels: np.ndarray, args) -> SamplingPlan | None:
    """The plan for a training split's labels and the trainer's arguments (`kto_class_balance`, the class weights:
    `kto_auto_weights`' from the label counts, else `desirable_weight` / `undesirable_weight`)."""
    n_desirable = int(labels.sum())
    return balance_plan(n_desirable, len(labels) - n_desirable, args.kto_auto_weights, args.desirable_weight,
                        args.undesirable_weight, args.kto_class_balance)


def sampled_dataset(dataset, labels: np.ndarray, plan: SamplingPlan, micro_batch: int, ranks: int, seed: int,
                    group_by_length: bool):
    """`dataset` (whose label column is `labels`) in the sampled order (length-grouped within each round with
    `group_by_length`)."""
    lengths = row_lengths(dataset) if group_by_length else None
    return dataset.select(sampled_order(labels, plan, micro_batch * ranks, seed, lengths))


def training_order(dataset, args, micro_batch: int, group_by_length: bool):
    """(the tokenized training split in one epoch's order, the `SamplingPlan` or None), for
    `KTOPluginTrainer._prepare_dataset`, with one log line that says what was done: a rare class repeated (this
    module), micro-batches grouped by length (`kto_group_by_length`)."""
    seed = args.data_seed or args.seed
    labels = label_array(dataset)
    plan = plan_for_training(labels, args)
    if plan is not None:
        LOG.info(plan.describe(args.kto_class_balance, micro_batch * args.world_size, args.num_train_epochs))
        return sampled_dataset(dataset, labels, plan, micro_batch, args.world_size, seed, group_by_length), plan
    if group_by_length:
        dataset, before, after = grouped_by_length(dataset, micro_batch, args.world_size, seed)
        LOG.info(f"KTO: micro-batches grouped by length (kto_group_by_length): {after:,} token positions per "
                 f"epoch instead of {before:,} ({after / max(before, 1) - 1:+.0%})")
    return dataset, None
