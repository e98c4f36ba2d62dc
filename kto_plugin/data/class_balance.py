"""Class weights for KTO from the desirable / undesirable counts (the paper's Eq. 8).

The paper recommends lambda_D * n_D / (lambda_U * n_U) in [1, 4/3]. `kto_auto_weights`
aims at the middle of that range, 7/6, keeping the majority class at weight 1 and
raising the minority class:

    n_D <= 7/6 * n_U:  lambda_U = 1,  lambda_D = 7/6 * n_U / n_D
    otherwise:         lambda_D = 1,  lambda_U = n_D / (7/6 * n_U)

The arithmetic only: `axolotl kto check` proposes these weights, and the trainer applies
them (`training.class_weights`).
"""

from __future__ import annotations

RATIO_LOW, RATIO_HIGH = 1.0, 4.0 / 3.0
RATIO_TARGET = 7.0 / 6.0


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
