"""Which completion each example is paired with for the KL estimate z0.

The rule: examples are taken in training order (TRL's KTO trains sequentially) in windows
of one optimizer step's worth of examples, `micro_batch_size * gradient_accumulation_steps
* world_size`. Within its window, example i gets the completion of the next example whose
completion differs from its own (cyclically, so the last one takes from the first). If no
example in the window has a different completion (a window of one, or all identical),
the search continues over the whole dataset, cyclically from i. An example is never paired
with itself or with an identical completion; only a dataset whose completions are all the
same has no pair, and then the KL term is 0 (the loss warns).

So `micro_batch_size: 1` with `gradient_accumulation_steps: 16` pairs across the 16
micro-batches of a step, as ms-swift pairs across the global batch, where TRL pairs only
inside a micro-batch and refuses micro-batch 1.

How it runs in linear time: completions become integer ids (equal completions, equal ids),
and "the next example whose completion differs from mine" is the end of the run of equal
ids that starts at me, found for every position at once with one reverse cumulative
minimum. The window and the whole-dataset searches each need one such lookup, plus one
for the wrap-around at the window's or the dataset's start.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NO_PARTNER = -1


def _next_different(keys: np.ndarray) -> np.ndarray:
    """For every position p, the first q > p with keys[q] != keys[p], or len(keys) if none."""
    count = len(keys)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    # a run of equal keys ends where the key changes; the answer for p is the first change after it
    change_at = np.where(keys[1:] != keys[:-1], np.arange(1, count), count)
    after = np.minimum.accumulate(change_at[::-1])[::-1]
    return np.append(after, count).astype(np.int64)


def kl_partner_array(keys: np.ndarray, window: int) -> np.ndarray:
    """For each example, the index whose completion it borrows, or NO_PARTNER (-1) if none differs."""
    keys = np.asarray(keys, dtype=np.int64)
    count = len(keys)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    window = max(int(window), 1)
    position = np.arange(count)
    following = _next_different(keys)

    # whole dataset, cyclically: after p, else from 0 (the first key unlike mine at or after 0)
    wrap = np.where(keys[0] != keys, 0, following[0])
    in_dataset = np.where(following < count, following, wrap)
    in_dataset = np.where(in_dataset < count, in_dataset, NO_PARTNER)

    # the optimizer step's window [start, end), cyclically: after p, else from start up to p
    start = (position // window) * window
    end = np.minimum(start + window, count)
    wrap_in_window = np.where(keys[start] != keys, start, following[start])
    in_window = np.where(following < end, following, np.where(wrap_in_window < position, wrap_in_window, count))
    return np.where(in_window < count, in_window, in_dataset)


def arrow_completion_keys(column) -> np.ndarray:
    """One integer per completion of an Arrow list column (a ChunkedArray), equal when the token sequences
    are equal: a 64-bit BLAKE2 digest of the tokens, so memory is 8 bytes a row (no Python lists of
    tokens, no table of the completions). Two different completions share a key with probability about
    n^2 / 2^65 (1e-8 at a million rows); they would then count as equal, so neither borrows the other."""
    import hashlib

    keys = np.empty(len(column), dtype=np.int64)
    row = 0
    for chunk in column.chunks:
        offsets = chunk.offsets.to_numpy()
        values = chunk.values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        for start, stop in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
            digest = hashlib.blake2b(values[start:stop].tobytes(), digest_size=8).digest()
            keys[row] = int.from_bytes(digest, "little", signed=True)
            row += 1
    return keys


def with_kl_completions(dataset, window: int):
    """(`dataset` whose `KL_completion_ids` are the partners' `completion_ids`, count without a partner).

    Arrow in, Arrow out: the partner column is an Arrow `take` of the completion column, so a
    million rows never become Python lists. An example without a partner keeps its own completion.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from datasets.fingerprint import Hasher

    completions = dataset.with_format("arrow")["completion_ids"]
    partners = kl_partner_array(arrow_completion_keys(completions), window)
    unpaired = partners == NO_PARTNER
    partners = np.where(unpaired, np.arange(len(partners)), partners)
    kl_column = pc.take(completions, pa.array(partners))
    fingerprint = Hasher.hash((dataset._fingerprint, "kl_completions", int(window)))
    if "KL_completion_ids" in dataset.column_names:
        dataset = dataset.remove_columns("KL_completion_ids")
    paired = dataset.add_column(
        "KL_completion_ids", kl_column, new_fingerprint=fingerprint
    )
    return paired, int(unpaired.sum())


def kl_partners(completions: Sequence[Sequence[int]], window: int) -> list[int | None]:
    """For each example, the index whose completion it borrows, or None if none differs."""
    import pyarrow as pa

    column = pa.chunked_array([pa.array([list(completion) for completion in completions], type=pa.list_(pa.int64()))])
    partners = kl_partner_array(arrow_completion_keys(column), window)
    return [None if partner == NO_PARTNER else int(partner) for partner in partners.tolist()]
