"""Fit (prompt, completion) pairs into `sequence_len` tokens.

Truncation keeps the whole completion and the *end* of the prompt (the latest turns and
the generation prompt). When the completion alone leaves the prompt fewer than a quarter
of the window, the prompt keeps its last quarter and the completion is cut at its end:

    prompt_budget     = max(sequence_len - len(completion), min(len(prompt), sequence_len // 4))
    completion_budget = sequence_len - prompt_budget

Lengths are counted as Axolotl and TRL count them: prompt and completion tokenized
separately, without special tokens.
"""

from __future__ import annotations

import statistics
from typing import Any

LENGTH_BATCH = 2048


def count_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def token_counts(tokenizer: Any, texts: list[str], batch: int = LENGTH_BATCH) -> list[int]:
    """Token count of each text, tokenized `batch` texts at a time: the token lists of a whole
    dataset never exist at once (a million rows of 300 tokens would be about 10 GB of Python ints)."""
    counts: list[int] = []
    for start in range(0, len(texts), batch):
        counts.extend(len(ids) for ids in tokenizer(texts[start:start + batch], add_special_tokens=False)["input_ids"])
    return counts


def truncate_to_fit(tokenizer: Any, prompt: str, completion: str, sequence_len: int) -> tuple[str, str]:
    """Return (prompt, completion) shortened so that their token counts sum to <= sequence_len."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    prompt_budget = max(sequence_len - len(completion_ids), min(len(prompt_ids), sequence_len // 4))
    for _ in range(8):
        prompt_budget = max(prompt_budget, 0)
        completion_budget = sequence_len - prompt_budget
        new_prompt = tokenizer.decode(prompt_ids[len(prompt_ids) - prompt_budget:] if prompt_budget else [],
                                      skip_special_tokens=False)
        new_completion = tokenizer.decode(completion_ids[:completion_budget], skip_special_tokens=False)
        # Decoding a cut and re-encoding can merge or split tokens at the cut: re-measure.
        excess = count_tokens(tokenizer, new_prompt) + count_tokens(tokenizer, new_completion) - sequence_len
        if excess <= 0:
            return new_prompt, new_completion
        if prompt_budget > excess:
            prompt_budget -= excess
        else:
            completion_ids = completion_ids[: max(completion_budget - excess, 1)]
    return new_prompt, new_completion


def describe_lengths(lengths: list[int]) -> str:
    """'min 12, median 80, p90 300, max 512 tokens' for a list of lengths."""
    ordered = sorted(lengths)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"min {ordered[0]}, median {int(statistics.median(ordered))}, "
        f"p90 {p90}, max {ordered[-1]} tokens"
    )
