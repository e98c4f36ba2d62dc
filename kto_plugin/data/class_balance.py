"""Class weights for KTO from the desirable / undesirable counts (the paper's Eq. 8).

The paper recommends lambda_D * n_D / (lambda_U * n_U) in [1, 4/3]. `kto_auto_weights`
aims at the middle of that range, 7/6, keeping the majority class at weight 1 and
raising the minority class:

    n_D <= 7/6 * n_U:  lambda_U = 1,  lambda_D = 7/6 * n_U / n_D
    otherwise:         lambda_D = 1,  lambda_U = n_D / (7/6 * n_U)

`kto_class_balance` decides how weights far apart act. With 90% of the accepted rows
removed, lambda_D = 13.6: the few steps that hold an accepted row take a gradient 13.6 times
as large, and the rest hold none. Reading each row of the up-weighted class c about f times
an epoch instead, with every row weighing about alike, gives the same expected gradient
with far less variance from step to step (`sampling_plan`):

    f = lambda_c / lambda_other,   n_c' = round(f * n_c) rows of class c an epoch (each row floor(f) or ceil(f) times)
    lambda_c' = lambda_c * n_c / n_c' (about lambda_other),   the other class's rows once, its weight unchanged

so lambda_c' * n_c' = lambda_c * n_c: what each class adds to an epoch's loss is what the
weights gave it, and an epoch holds n_other + n_c' rows. `auto` (the default) samples where
the weights are more than `LARGE_WEIGHT_RATIO` apart, `sampling` wherever they differ,
`weights` never.

Where the repeated class is the accepted one, the SFT term (`kto_sft_weight`, w) weighs f * w:

    w' = f * w    (accepted rows repeated);    w' = w    (rejected rows repeated, or no sampling)

A few accepted answers read f times are learned by heart (bench/alignment from the warm model of
recipe 4, 90% of the accepted rows removed: their NLL fell to 0.004 a token), while the many
rejected answers, which share their words with the good answers of other questions, push those
words down everywhere: held-out good answers lost 9 nats and 27% of the sampled answers were
garbled. A pull f times as strong holds them: good held-out answers 0.58 -> 0.80 (3 seeds) at w = 3
(docs/alignment-bench.md#few-accepted-sft-weight).

The arithmetic only: `axolotl kto check` proposes these weights, the data stage counts an
epoch's steps from the plan, and the trainer applies the weights (`training.class_weights`)
and builds the order (`training.class_sampling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

RATIO_LOW, RATIO_HIGH = 1.0, 4.0 / 3.0
RATIO_TARGET = 7.0 / 6.0
# Above this ratio between the two class weights the trainer repeats the rare class's rows instead of weighting them
# (`kto_class_balance: auto`, `training.class_sampling`), or, with `kto_class_balance: weights`, warns.
LARGE_WEIGHT_RATIO = 4.0


def weight_ratio(n_desirable: int, n_undesirable: int, desirable_weight: float, undesirable_weight: float) -> float:
    return (desirable_weight * n_desirable) / (undesirable_weight * max(n_undesirable, 1))


def auto_weights(n_desirable: int, n_undesirable: int) -> tuple[float, float]:
    """(lambda_D, lambda_U) for the counts; 1.0 for a class that is absent."""
    if n_desirable == 0 or n_undesirable == 0:
        return 1.0, 1.0
    if n_desirable <= RATIO_TARGET * n_undesirable:
        return RATIO_TARGET * n_undesirable / n_desirable, 1.0
    return 1.0, n_desirable / (RATIO_TARGET * n_undesirable)


def weights_in_range(n_desirable: int, n_undesirable: int, desirable_weight: float, undesirable_weight: float) -> bool:
    if n_desirable == 0 or n_undesirable == 0:
        return True
    ratio = weight_ratio(n_desirable, n_undesirable, desirable_weight, undesirable_weight)
    return RATIO_LOW - 1e-9 <= ratio <= RATIO_HIGH + 1e-9


ClassBalanceKind = Literal["auto", "weights", "sampling"]
CLASS_BALANCE_KINDS: tuple[str, ...] = get_args(ClassBalanceKind)
CLASS_BALANCE_DEFAULT = "auto"


@dataclass(frozen=True)
class SamplingPlan:
    """How many times the rows of the up-weighted class are read in one epoch, and the weights left after."""

    repeated: Literal["desirable", "undesirable"]  # the up-weighted class, read more than once
    rows: int  # n_c, its rows in the data
    copies: int  # n_c', its rows in one epoch's order
    other_rows: int  # n_other, each read once
    weight_before: float  # lambda_c
    desirable_weight: float  # the loss weights in force with the sampled order
    undesirable_weight: float

    @property
    def epoch_rows(self) -> int:
        return self.copies + self.other_rows

    @property
    def weight_ratio(self) -> float:
        """lambda_c / lambda_other, as configured."""
        desirable, undesirable = self.weights_before
        return max(desirable, undesirable) / min(desirable, undesirable)

    @property
    def factor(self) -> float:
        return self.copies / self.rows

    @property
    def counts_before(self) -> tuple[int, int]:
        """(n_D, n_U) of the data, each row once."""
        return (self.rows, self.other_rows) if self.repeated == "desirable" else (self.other_rows, self.rows)

    @property
    def weights_before(self) -> tuple[float, float]:
        """(lambda_D, lambda_U) the plan replaced."""
        if self.repeated == "desirable":
            return self.weight_before, self.undesirable_weight
        return self.desirable_weight, self.weight_before

    def sft_weight(self, weight: float) -> float:
        """`kto_sft_weight` in force with this order: times f where the accepted rows are the ones repeated (module
        docstring), unchanged where the rejected ones are."""
        return weight * self.factor if self.repeated == "desirable" else weight

    @property
    def rounds(self) -> int:
        return math.ceil(self.factor - 1e-9)

    def describe(self, mode: str, unit: int, epochs: float) -> str:
        before, after = self.rows + self.other_rows, self.epoch_rows
        share_before, share_after = unit * self.rows / before, unit * self.copies / after
        return (
            f"KTO: class-balanced sampling (kto_class_balance: {mode}): the {self.rows} {self.repeated} rows are "
            f"weighted {self.weight_ratio:.3g} times the other {self.other_rows}, so each is read {self.factor:.3g} "
            f"times an epoch ({self.copies} rows, at most one copy per round of about {after // max(self.rounds, 1)}) "
            f"and every row weighs about alike (lambda_D={self.desirable_weight:.4g}, lambda_U={self.undesirable_weight:.4g}): "
            f"a micro-batch of {unit} holds {share_after:.2g} {self.repeated} rows instead of {share_before:.2g}. "
            f"An epoch is {after:,} rows instead of {before:,}: `num_epochs: {epochs * before / after:.2g}` (now "
            f"{epochs:g}) gives the steps the weighted run would take. `kto_class_balance: weights` keeps the weights."
        )


def sampling_plan(n_desirable: int, n_undesirable: int, desirable_weight: float, undesirable_weight: float,
                  mode: str = CLASS_BALANCE_DEFAULT) -> SamplingPlan | None:
    """The plan for these counts and weights, or None where the order keeps every row once (see the module docstring)."""
    if mode == "weights" or not n_desirable or not n_undesirable or min(desirable_weight, undesirable_weight) <= 0:
        return None
    ratio = max(desirable_weight, undesirable_weight) / min(desirable_weight, undesirable_weight)
    if ratio <= (LARGE_WEIGHT_RATIO if mode == "auto" else 1.0) + 1e-9:
        return None
    desirable_up = desirable_weight > undesirable_weight
    rows, other = (n_desirable, n_undesirable) if desirable_up else (n_undesirable, n_desirable)
    weight = max(desirable_weight, undesirable_weight)
    copies = max(round(ratio * rows), rows)
    residual = weight * rows / copies
    return SamplingPlan(
        repeated="desirable" if desirable_up else "undesirable", rows=rows, copies=copies, other_rows=other,
        weight_before=weight,
        desirable_weight=residual if desirable_up else desirable_weight,
        undesirable_weight=undesirable_weight if desirable_up else residual,
    )


def label_array(dataset):
    """A `label` column (of a `datasets.Dataset`) as a numpy array of booleans, read from Arrow (no Python list)."""
    return dataset.with_format("arrow")["label"].to_numpy(zero_copy_only=False).astype(bool)


def balance_plan(n_desirable: int, n_undesirable: int, auto: bool, desirable_weight: float | None,
                 undesirable_weight: float | None, mode: str | None) -> SamplingPlan | None:
    """The plan for a run's settings: the weights `kto_auto_weights` picks (`auto`), else the configured ones
    (absent: 1); read by the data stage (the steps of an epoch) and the trainer (the order)."""
    weights = (auto_weights(n_desirable, n_undesirable) if auto
               else (desirable_weight or 1.0, undesirable_weight or 1.0))
    return sampling_plan(n_desirable, n_undesirable, *weights, mode=mode or CLASS_BALANCE_DEFAULT)
