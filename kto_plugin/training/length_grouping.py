"""The training order: micro-batches of rows of similar length (`kto_group_by_length`, default on).

A micro-batch is padded to its longest row, so a batch of one 500-token row and three of
150 computes 2,000 token positions for 950 real ones. The rule, for rows in their
(already shuffled) order and `micro_batch` rows per batch:

1. cut the order into groups of `group_batches * micro_batch` consecutive rows (`micro_batch`
   is the rows of one micro-batch on every rank together, see `grouped_by_length`);
2. sort each group by length (prompt plus completion tokens), longest first, and cut it
   into micro-batches;
3. shuffle the full micro-batches of each group (seeded), so that steps do not run from
   long to short; a group's last, short batch stays at the end of the order.

Every row is kept exactly once; only the order changes. The trainer then reads rows in
this order (a sequential sampler), and the KL pairing is made on it, so each example's KL
partner is in the same optimizer step as the example.
"""

from __future__ import annotations

import numpy as np

GROUP_BATCHES = 64


def padded_positions(lengths: np.ndarray, micro_batch: int) -> int:
    """Token positions computed when rows are batched in the given order (each batch padded to its longest)."""
    lengths = np.asarray(lengths)
    usable = len(lengths) - len(lengths) % micro_batch
    full = lengths[:usable].reshape(-1, micro_batch).max(axis=1).sum() * micro_batch
    rest = lengths[usable:]
    return int(full + (rest.max() * len(rest) if len(rest) else 0))


def length_grouped_order(lengths: np.ndarray, micro_batch: int, seed: int, group_batches: int = GROUP_BATCHES) -> np.ndarray:
    """Row indices in training order (see the module docstring)."""
    lengths = np.asarray(lengths)
    count = len(lengths)
    micro_batch = max(int(micro_batch), 1)
    rng = np.random.default_rng(seed)
    group = micro_batch * group_batches
    order = []
    for start in range(0, count, group):
        rows = np.arange(start, min(start + group, count))
        rows = rows[np.argsort(-lengths[rows], kind="stable")]
        full = len(rows) - len(rows) % micro_batch
        batches = rows[:full].reshape(-1, micro_batch)[rng.permutation(full // micro_batch)]
        order.append(batches.reshape(-1))
        order.append(rows[full:])
    return np.concatenate(order) if order else np.zeros(0, dtype=np.int64)


def row_lengths(dataset) -> np.ndarray:
    """Prompt plus completion tokens of each tokenized KTO row, read from Arrow (no Python lists)."""
    import pyarrow.compute as pc

    table = dataset.with_format("arrow")
    names = [name for name in ("prompt_ids", "completion_ids") if name in dataset.column_names] or ["input_ids"]
    total = None
    for name in names:
        length = pc.list_value_length(table[name]).to_numpy(zero_copy_only=False)
        total = length if total is None else total + length
    return total.astype(np.int64)


def grouped_by_length(dataset, micro_batch: int, ranks: int, seed: int):
    """(`dataset` in length-grouped order, padded positions before, after) for one epoch's micro-batches.

    The unit that is sorted and shuffled is one micro-batch of every rank (`micro_batch * ranks`
    consecutive rows, which the ranks split between them), so a run on 2 ranks at micro-batch 1
    trains on the same rows at each step as 1 rank at micro-batch 2.
    """
    lengths = row_lengths(dataset)
    order = length_grouped_order(lengths, micro_batch * ranks, seed)
    before, after = padded_positions(lengths, micro_batch), padded_positions(lengths[order], micro_batch)
    return dataset.select(order), before, after
