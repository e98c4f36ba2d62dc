"""Which completion each example is paired with for the KL estimate z0.

The rule: examples are taken in training order (TRL's KTO trains sequentially) in windows
of one optimizer step's worth of examples, `micro_batch_size * gradient_accumulation_steps
* world_size`. Within its window, example i gets the completion of the next example whose
completion differs from its own (cyclically, so the last one takes from the first). If no
example in the window has a different completion (a window of one, or all identical),
the search continues over the whole dataset. An example is never paired with itself or
with an identical completion; only a dataset whose completions are all the same has no
pair, and then the KL term is 0 (the loss warns).

So `micro_batch_size: 1` with `gradient_accumulation_steps: 16` pairs across the 16
micro-batches of a step, as ms-swift pairs across the global batch, where TRL pairs only
inside a micro-batch and refuses micro-batch 1.
"""

from __future__ import annotations

from collections.abc import Sequence


def kl_partners(completions: Sequence[Sequence[int]], window: int) -> list[int | None]:
    """For each example, the index whose completion it borrows, or None if none differs."""
    count = len(completions)
    window = max(int(window), 1)
    keys = [tuple(completion) for completion in completions]
    partners: list[int | None] = []
    for index in range(count):
        start = (index // window) * window
        size = min(window, count - start)
        candidates = [start + (index - start + offset) % size for offset in range(1, size)]
        candidates += [(index + offset) % count for offset in range(1, count)]
        partners.append(next((j for j in candidates if keys[j] != keys[index]), None))
    return partners
