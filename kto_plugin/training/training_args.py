"""The plugin's settings on the trainer's training arguments, typed, one copy per trainer.

`KTOTrainingArgsMixin` is merged into Axolotl's `AxolotlKTOConfig` (the plugin's
`get_training_args_mixin`, as Axolotl's own `kd` integration does); `training_args_from_config`
turns the config's `kto_*` keys into its fields (`get_training_args`), and the trainer reads
them from `self.args` in its `__init__`, before TRL's reference pass. Nothing is set on the
trainer class, so two trainers in one process never share settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, Optional, Union

from kto_plugin.data.class_balance import CLASS_BALANCE_DEFAULT
from kto_plugin.training.loss import (
    REFERENCE_POINT_DEFAULT,
    SFT_GCE_MAX_REFERENCE_NLL_DEFAULT,
    SFT_GCE_Q_DEFAULT,
    SFT_WEIGHT_DEFAULT,
)


@dataclass
class KTOTrainingArgsMixin:
    """The plugin's fields of the trainer's training arguments (the config key each comes from is in its help)."""

    kto_chunked_logps: bool = field(default=True, metadata={"help": "`kto_chunked_logps`: completion log-probs a chunk "
                                                                   "at a time from the last hidden states"})
    kto_group_by_length: bool = field(default=True, metadata={"help": "`kto_group_by_length`: micro-batches of rows "
                                                                     "of similar length"})
    kto_padding_free: Union[bool, Literal["auto"]] = field(default="auto", metadata={
        "help": "`kto_padding_free`: each micro-batch's rows packed into one sequence (True, False or 'auto')"})
    kto_reference_cache: bool = field(default=False, metadata={
        "help": "`kto_ref_cache: auto`: the reference log-probs kept on disk once computed"})
    kto_ref_cache_dir: Optional[str] = field(default=None, metadata={"help": "`kto_ref_cache_dir`: the cache's folder"})
    kto_sft_weight: float = field(default=SFT_WEIGHT_DEFAULT, metadata={
        "help": "`kto_sft_weight`: weight of the per-token NLL term on the desirable completions"})
    kto_sft_gce_q: float = field(default=SFT_GCE_Q_DEFAULT, metadata={
        "help": "`kto_sft_gce_q`: the SFT term per token as the generalized cross-entropy (1 - p^q) / q; 0: the NLL"})
    kto_sft_gce_max_reference_nll: float = field(default=SFT_GCE_MAX_REFERENCE_NLL_DEFAULT, metadata={
        "help": "`kto_sft_gce_max_reference_nll`: the GCE on the answers whose reference NLL per token is at most this"})
    kto_reference_point: str = field(default=REFERENCE_POINT_DEFAULT, metadata={
        "help": "`kto_reference_point`: z0 from the earlier steps' reward mean (reward_mean) or the KL pairs (kl)"})
    kto_auto_weights: bool = field(default=False, metadata={
        "help": "`kto_auto_weights`: the class weights from the training split's label counts"})
    kto_class_balance: str = field(default=CLASS_BALANCE_DEFAULT, metadata={
        "help": "`kto_class_balance`: a rare class repeated in the order (sampling), weighted (weights), or auto"})
    kto_continue_adapter: Optional[str] = field(default=None, metadata={
        "help": "`lora_model_dir` of an adapter run: that adapter trained further instead of a fresh one"})


MIXIN_PATH = f"{__name__}.{KTOTrainingArgsMixin.__name__}"
FIELD_NAMES = tuple(spec.name for spec in fields(KTOTrainingArgsMixin))


def rl_is_kto(rl) -> bool:
    """Whether a config's `rl:` value (a string, or Axolotl's RLType once validated) names KTO."""
    return str(rl or "").lower().split(".")[-1] == "kto"


def reference_cache_on(cfg) -> bool:
    """`kto_ref_cache: auto`. It holds everywhere: with an adapter the values are computed in the training steps
    (where ZeRO-3 and FSDP gather the weights, and where 4-bit weights on a CPU keep their gradients, which a pass
    before training in eval mode took from them); a full fine-tune computes them before step 1, under ZeRO-3 or FSDP
    once the trainer has wrapped the model (training/reference_pass.py)."""
    return cfg.kto_ref_cache == "auto"


def training_args_from_config(cfg) -> dict:
    """The mixin's fields from the config's keys."""
    return {
        "kto_chunked_logps": bool(cfg.kto_chunked_logps),
        "kto_group_by_length": bool(cfg.kto_group_by_length),
        "kto_padding_free": cfg.kto_padding_free,
        "kto_reference_cache": reference_cache_on(cfg),
        "kto_ref_cache_dir": cfg.kto_ref_cache_dir,
        "kto_continue_adapter": cfg.lora_model_dir if cfg.adapter else None,
        "kto_auto_weights": bool(cfg.kto_auto_weights),
        "kto_class_balance": cfg.kto_class_balance or CLASS_BALANCE_DEFAULT,
        "kto_sft_weight": SFT_WEIGHT_DEFAULT if cfg.kto_sft_weight is None else float(cfg.kto_sft_weight),
        "kto_sft_gce_q": SFT_GCE_Q_DEFAULT if cfg.kto_sft_gce_q is None else float(cfg.kto_sft_gce_q),
        "kto_sft_gce_max_reference_nll": (SFT_GCE_MAX_REFERENCE_NLL_DEFAULT if cfg.kto_sft_gce_max_reference_nll is None
                                          else float(cfg.kto_sft_gce_max_reference_nll)),
        # `apo_zero_unpaired` has no z0 (its config check refuses `reward_mean` set with it): TRL's path, no KL pairs
        "kto_reference_point": ("kl" if cfg.kto_loss_type == "apo_zero_unpaired"
                                else cfg.kto_reference_point or REFERENCE_POINT_DEFAULT),
    }


def require_merged_fields(training_args_cls) -> None:
    """Stop with the reason when Axolotl built its training-arguments class without the plugin's mixin."""
    from dataclasses import is_dataclass

    names = {spec.name for spec in fields(training_args_cls)} if is_dataclass(training_args_cls) else set()
    missing = [name for name in FIELD_NAMES if name not in names]
    if missing:
        raise RuntimeError(
            f"Axolotl's {training_args_cls.__name__} lacks the plugin's training arguments {missing}: "
            "`axolotl.core.training_args` was imported before `plugins: [kto_plugin.KTOPlugin]` was registered, "
            "so Axolotl merged no plugin mixin into it. Load the config (axolotl.cli.config.load_cfg) first."
        )


def reference_cache_from_args(args):
    """The trainer's `ReferenceCache` from its training arguments, or None when `kto_reference_cache` is off."""
    if not args.kto_reference_cache:
        return None
    from kto_plugin.training.reference_cache import ReferenceCache, default_cache_dir

    return ReferenceCache(Path(args.kto_ref_cache_dir) if args.kto_ref_cache_dir else default_cache_dir())
