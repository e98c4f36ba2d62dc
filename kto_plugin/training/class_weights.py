"""`kto_auto_weights` and the paper's range check applied to a trainer (the arithmetic: `data.class_balance`).

The paper recommends lambda_D * n_D / (lambda_U * n_U) in [1, 4/3]. `kto_auto_weights`
aims at the middle of that range, 7/6, keeping the majority class at weight 1 and
raising the minority class:

    n_D <= 7/6 * n_U:  lambda_U = 1,  lambda_D = 7/6 * n_U / n_D
    otherwise:         lambda_D = 1,  lambda_U = n_D / (7/6 * n_U)
"""

from __future__ import annotations

from kto_plugin.data.class_balance import LARGE_WEIGHT_RATIO, auto_weights, label_array, weight_ratio, weights_in_range


def few_minority_rows_warning(n_desirable: int, n_undesirable: int, desirable_weight: float, undesirable_weight: float,
                              learning_rate: float, global_batch: int, sft_weight: float) -> str | None:
    """What to change when one class is rare and weighted far up, or None where the weights are close.

    A rare class appears in few optimizer steps, and those steps take its weight's larger gradient. On
    `bench/alignment` (90% of the desirable rows removed, lambda_D 13.6, 8 rows a step) KTO collapsed at learning
    rate 2e-3 and kept up with full KTO at 5e-4: about the learning rate times LARGE_WEIGHT_RATIO / the weight ratio.
    """
    ratio = max(desirable_weight, undesirable_weight) / max(min(desirable_weight, undesirable_weight), 1e-12)
    if ratio <= LARGE_WEIGHT_RATIO or not n_desirable or not n_undesirable:
        return None
    rare, count = ("desirable", n_desirable) if desirable_weight > undesirable_weight else ("undesirable", n_undesirable)
    per_step = global_batch * count / (n_desirable + n_undesirable)
    batch_for_four = -(-4 * (n_desirable + n_undesirable) // count)
    return (
        f"KTO class weights: the {rare} rows are rare ({count} of {n_desirable + n_undesirable}, about {per_step:.1f} "
        f"per optimizer step of {global_batch}) and weighted {ratio:.1f} times the others, so the steps that hold one "
        f"are large: at this ratio the alignment bench's KTO collapsed at a learning rate of 2e-3 and held at 5e-4. "
        f"Lower `learning_rate` to about {learning_rate * LARGE_WEIGHT_RATIO / ratio:.2g} (now {learning_rate:g}), "
        f"or raise the global batch to about {batch_for_four} rows (micro_batch_size x gradient_accumulation_steps x "
        f"processes) so each step holds about 4 {rare} rows, or set `kto_class_balance: sampling` (repeats them instead)"
        + ("; keep `kto_sft_weight` above 0 (now 0): it holds the accepted answers up." if rare == "desirable"
           and not sft_weight else ".")
    )


def apply_class_weights(cfg, trainer) -> None:
    """Log the label counts and the weights in force; choose them with `kto_auto_weights`."""
    from kto_plugin.log import get_logger

    log = get_logger(__name__)
    labels = label_array(trainer.train_dataset)
    n_desirable = int(labels.sum())
    n_undesirable = len(labels) - n_desirable
    sampling = getattr(trainer, "class_sampling", None)  # `kto_class_balance` repeated a rare class already
    if cfg.kto_auto_weights and not sampling:
        trainer.desirable_weight, trainer.undesirable_weight = auto_weights(n_desirable, n_undesirable)
    sft_note = ""
    if sampling and sampling.repeated == "desirable" and getattr(trainer, "sft_weight", None):
        configured, trainer.sft_weight = trainer.sft_weight, sampling.sft_weight(trainer.sft_weight)
        sft_note = (f"; the SFT term weighs kto_sft_weight {configured:g} x {sampling.factor:.3g} (each accepted "
                    f"row's reads an epoch) = {trainer.sft_weight:.3g}: a few accepted answers need "
                    "a stronger pull to keep up the good answers they do not show")
    desirable_weight, undesirable_weight = trainer.desirable_weight, trainer.undesirable_weight
    ratio = weight_ratio(n_desirable, n_undesirable, desirable_weight, undesirable_weight)
    source = "kto_auto_weights" if cfg.kto_auto_weights else "config"
    if sampling:
        source += f", the {sampling.repeated} rows repeated by kto_class_balance, counted in each epoch's order"
    log.info(
        f"KTO class weights ({source}): n_desirable={n_desirable}, n_undesirable={n_undesirable}, "
        f"lambda_D={desirable_weight:.4g}, lambda_U={undesirable_weight:.4g}, "
        f"lambda_D*n_D/(lambda_U*n_U)={ratio:.3f}{sft_note}"
    )
    args = getattr(trainer, "args", None)
    if args is not None:
        global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        warning = few_minority_rows_warning(n_desirable, n_undesirable, desirable_weight, undesirable_weight,
                                            args.learning_rate, global_batch, getattr(args, "kto_sft_weight", 0.0))
        if warning:
            log.warning(warning)
    if sampling:  # the range check on the rows of the data and the configured weights (the ratio is the same)
        n_desirable, n_undesirable = sampling.counts_before
        desirable_weight, undesirable_weight = sampling.weights_before
    if not cfg.kto_auto_weights and not weights_in_range(n_desirable, n_undesirable, desirable_weight, undesirable_weight):
        suggested_d, suggested_u = auto_weights(n_desirable, n_undesirable)
        log.warning(
            f"lambda_D*n_D/(lambda_U*n_U) = {desirable_weight:g}*{n_desirable}/({undesirable_weight:g}*{n_undesirable}) "
            f"= {ratio:.3f} is outside the KTO paper's [1, 4/3]: set kto_desirable_weight: {suggested_d:.4g} and "
            f"kto_undesirable_weight: {suggested_u:.4g}, or kto_auto_weights: true"
        )
