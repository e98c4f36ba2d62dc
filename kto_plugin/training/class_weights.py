"""`kto_auto_weights` and the paper's range check applied to a trainer (the arithmetic: `data.class_balance`).

The paper recommends lambda_D * n_D / (lambda_U * n_U) in [1, 4/3]. `kto_auto_weights`
aims at the middle of that range, 7/6, keeping the majority class at weight 1 and
raising the minority class:

    n_D <= 7/6 * n_U:  lambda_U = 1,  lambda_D = 7/6 * n_U / n_D
    otherwise:         lambda_D = 1,  lambda_U = n_D / (7/6 * n_U)
"""

from __future__ import annotations

from kto_plugin.data.class_balance import auto_weights, weight_ratio, weights_in_range


def apply_class_weights(cfg, trainer) -> None:
    """Log the label counts and the weights in force; choose them with `kto_auto_weights`."""
    from kto_plugin.log import get_logger

    log = get_logger(__name__)
    labels = trainer.train_dataset["label"]
    n_desirable = int(sum(bool(label) for label in labels))
    n_undesirable = len(labels) - n_desirable
    if cfg.kto_auto_weights:
        trainer.desirable_weight, trainer.undesirable_weight = auto_weights(n_desirable, n_undesirable)
    desirable_weight, undesirable_weight = trainer.desirable_weight, trainer.undesirable_weight
    ratio = weight_ratio(n_desirable, n_undesirable, desirable_weight, undesirable_weight)
    source = "kto_auto_weights" if cfg.kto_auto_weights else "config"
    log.info(
        f"KTO class weights ({source}): n_desirable={n_desirable}, n_undesirable={n_undesirable}, "
        f"lambda_D={desirable_weight:.4g}, lambda_U={undesirable_weight:.4g}, "
        f"lambda_D*n_D/(lambda_U*n_U)={ratio:.3f}"
    )
    if not cfg.kto_auto_weights and not weights_in_range(n_desirable, n_undesirable, desirable_weight, undesirable_weight):
        suggested_d, suggested_u = auto_weights(n_desirable, n_undesirable)
        log.warning(
            f"lambda_D*n_D/(lambda_U*n_U) = {desirable_weight:g}*{n_desirable}/({undesirable_weight:g}*{n_undesirable}) "
            f"= {ratio:.3f} is outside the KTO paper's [1, 4/3]: set kto_desirable_weight: {suggested_d:.4g} and "
            f"kto_undesirable_weight: {suggested_u:.4g}, or kto_auto_weights: true"
        )
