"""The rows each variant of the alignment bench trains on: one feedback budget per seed, nine ways to use it.

The budget: for every training question of the refund desk (`refund_desk.split_questions`),
its good answer in both wordings and two bad answers of different kinds
(`refund_desk.feedback_rows`, seeded). Every variant sees those same answers:

- `kto`: all of them, labelled (desirable = good), the plugin's KTO with the paper's loss (no SFT term);
- `kto-sft`: the same, with the SFT term on the desirable answers (`kto_sft_weight`);
- `dpo`: the same answers as pairs, each good answer with a bad one to the same question, Axolotl's DPO;
- `dpo-sft`: the same pairs, DPO with its own SFT term on the chosen answers (TRL's `sft` loss beside `sigmoid`);
- `kto-few-desirable`: 90% of the desirable rows removed, `kto_auto_weights: true` reweights;
- `kto-noisy`: 20% of the labels flipped;
- `sft`: the desirable rows only, as chat conversations, Axolotl's SFT;
- `sft-few-desirable`: the desirable rows `kto-few-desirable` keeps, as `sft` does: what those few accepted answers
  teach alone, without the rejected ones KTO also reads;
- `sft-noisy`: the rows `kto-noisy` labels desirable, as `sft` does: SFT on the same flipped labels.
"""

from __future__ import annotations

import random

from kto_plugin.embedded.refund_desk import SYSTEM, feedback_rows, split_questions

FEW_DESIRABLE_KEPT = 0.1
FLIPPED_SHARE = 0.2
VARIANTS = ("kto", "kto-sft", "dpo", "dpo-sft", "kto-few-desirable", "kto-noisy", "sft", "sft-few-desirable",
            "sft-noisy")


def budget(seed: int) -> list[dict]:
    """The seed's feedback rows (query_response format) over the training questions."""
    return feedback_rows(split_questions()[0], seed=seed)


def variant_rows(variant: str, rows: list[dict], seed: int) -> list[dict]:
    """The training rows of one variant, in the format its Axolotl dataset type reads."""
    rng = random.Random(seed + 1000)
    if variant in ("kto", "kto-sft"):
        return list(rows)
    if variant in ("kto-few-desirable", "sft-few-desirable"):
        few = [row for row in rows if not row["label"] or rng.random() < FEW_DESIRABLE_KEPT]
        return few if variant == "kto-few-desirable" else variant_rows("sft", few, seed)
    if variant in ("kto-noisy", "sft-noisy"):
        flipped = set(rng.sample(range(len(rows)), round(FLIPPED_SHARE * len(rows))))
        noisy = [{**row, "label": row["label"] != (index in flipped)} for index, row in enumerate(rows)]
        return noisy if variant == "kto-noisy" else variant_rows("sft", noisy, seed)
    if variant in ("dpo", "dpo-sft"):
        by_question: dict[str, dict[bool, list[str]]] = {}
        for row in rows:
            by_question.setdefault(row["query"], {True: [], False: []})[row["label"]].append(row["response"])
        return [{"system": SYSTEM, "prompt": query, "chosen": chosen, "rejected": rejected}
                for query, groups in by_question.items() for chosen, rejected in zip(groups[True], groups[False])]
    if variant == "sft":
        return [{"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": row["query"]},
                              {"role": "assistant", "content": row["response"]}]} for row in rows if row["label"]]
    raise ValueError(f"unknown variant {variant!r}: the variants are {', '.join(VARIANTS)}")
