"""The plugin's config keys, validated with the rest of the Axolotl config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, model_validator

from kto_plugin.data.class_balance import CLASS_BALANCE_DEFAULT, CLASS_BALANCE_KINDS, ClassBalanceKind
from kto_plugin.data.formats import format_of_type
from kto_plugin.orchestration.iterate_settings import IterateSettings
from kto_plugin.training.beta_schedule import ScheduleType, check_schedule_spec
from kto_plugin.training.loss import (
    LOSS_TYPES,
    REFERENCE_POINT_DEFAULT,
    REFERENCE_POINTS,
    SFT_GCE_MAX_REFERENCE_NLL_DEFAULT,
    SFT_GCE_Q_DEFAULT,
    SFT_WEIGHT_DEFAULT,
    LossType,
    ReferencePointKind,
)
from kto_plugin.training.training_args import rl_is_kto


class BetaScheduleSpec(BaseModel):
    """`kto_beta_schedule: {type, start, end, warmup_steps}`: beta over the run's steps."""

    model_config = ConfigDict(extra="forbid")

    type: ScheduleType
    start: PositiveFloat
    end: PositiveFloat
    warmup_steps: NonNegativeInt = 0


class KTOPluginArgs(BaseModel):
    """Config checks for `plugins: [kto_plugin.KTOPlugin]`.

    The plugin reuses Axolotl's own KTO keys (`rl_beta`, `kto_desirable_weight`,
    `kto_undesirable_weight`, `excess_length_strategy`, `sequence_len`), so this model
    only checks how they combine with the plugin.
    """

    kto_loss_type: LossType = Field(
        default="kto",
        description="`kto` (the paper's loss, with a reference point z0: `kto_reference_point`) or `apo_zero_unpaired` (no z0).",
    )
    kto_reference_point: ReferencePointKind = Field(
        default=REFERENCE_POINT_DEFAULT,
        description=(
            "z0, the point each reward is measured from: `reward_mean` (BCO's shift: the running mean of the "
            "log-ratios of every row of the earlier steps, each weighted by its class weight, no extra forward; "
            "chosen by the speed and alignment benches) or `kl` (the paper's estimate of KL(policy || reference) "
            "from mismatched prompt/answer pairs, a second policy forward without gradient each step). "
            "With `kto_loss_type: kto` only."
        ),
    )
    kto_beta_schedule: list[PositiveFloat] | BetaScheduleSpec | None = Field(
        default=None,
        description=(
            "Beta over the run: a list with one value per epoch (the last holds afterwards), or "
            "`{type: linear | cosine, start, end, warmup_steps}` over the run's steps. "
            "Absent: the constant `rl_beta`, 1.0 where unset (the paper's 0.1: docs/loss.md#beta)."
        ),
    )
    kto_sft_weight: NonNegativeFloat = Field(
        default=SFT_WEIGHT_DEFAULT,
        description=(
            "Weight of an SFT term on the accepted (desirable) answers inside the KTO loss: each desirable "
            "example's loss gains kto_sft_weight * (its SFT loss per completion token: `kto_sft_gce_q`), scaled by "
            "lambda_D with the rest. It keeps the accepted answers likely while the rejected ones are pushed down "
            "(their NLL per token logged as `nll/chosen`). 3 was chosen on the alignment bench (4 epochs, 3 seeds): "
            "good held-out answers 0.60 against 0.48 at 1 (the RPO paper's weight) and SFT's 0.59, garbled ones "
            "0.14 against 0.27; 0: the paper's loss. Where `kto_class_balance` repeats the accepted rows (few of "
            "them), the term weighs this times each row's reads an epoch (data/class_balance.py)."
        ),
    )
    kto_sft_gce_q: float = Field(
        default=SFT_GCE_Q_DEFAULT, ge=0.0, le=1.0,
        description=(
            "The SFT term's loss per token on the answers of `kto_sft_gce_max_reference_nll`: q in (0, 1] the "
            "generalized cross-entropy (1 - p^q) / q, whose gradient is the NLL's times p^q, so the tokens the model "
            "finds unlikely (the few words by which a wrongly accepted answer differs from the good ones) pull less; "
            "0 the negative log-likelihood. 0.5 (default) against the NLL on the alignment bench (3 seeds): 0.51 good "
            "held-out answers against 0.34 with 20% of the labels flipped, 0.48 against 0.40 with 90% of the "
            "accepted rows removed, 0.59 against 0.53 on clean labels. With `kto_sft_weight` above 0 only."
        ),
    )
    kto_sft_gce_max_reference_nll: NonNegativeFloat = Field(
        default=SFT_GCE_MAX_REFERENCE_NLL_DEFAULT,
        description=(
            "The accepted answers that get `kto_sft_gce_q`'s loss: those whose NLL per token under the reference "
            "model is at most this (nats); the others keep the NLL. On an answer the model has not half-learned "
            "the GCE pulls too little (the quickstart's en/zh answers, 0.8-4.2 nats a token, fell and the "
            "displacement guard warned); the bench's answers sit at 0.06-0.13. Logged as `sft_gce/chosen`."
        ),
    )
    kto_auto_weights: bool = Field(
        default=False,
        description=(
            "Choose `kto_desirable_weight` / `kto_undesirable_weight` from the label counts of the "
            "training split so that lambda_D*n_D / (lambda_U*n_U) is 7/6, inside the paper's [1, 4/3]."
        ),
    )
    kto_class_balance: ClassBalanceKind = Field(
        default=CLASS_BALANCE_DEFAULT,
        description=(
            "How the class weights (`kto_auto_weights`, or `kto_desirable_weight` / `kto_undesirable_weight`) act: "
            "`sampling` repeats each row of the up-weighted class about lambda_c/lambda_other times in every epoch's "
            "order (never twice in one micro-batch) and weighs every row about alike, the same expected gradient "
            "with far less variance from step to step; `weights` keeps every row once and scales the losses; "
            "`auto` samples where the weights are more than 4 times apart (a rare class, e.g. 10% accepted rows: "
            "good held-out answers 0.40 against 0.23 on the alignment bench) and weights otherwise. Sampling makes "
            "an epoch longer: n_other + lambda_c/lambda_other * n_c rows. Repeated accepted rows also raise the SFT term "
            "by the same factor (`kto_sft_weight`): with 90% of the accepted rows removed, good held-out answers "
            "0.58 -> 0.80 on the alignment bench (3 seeds)."
        ),
    )
    kto_chunked_logps: bool = Field(
        default=True,
        description=(
            "Compute completion log-probabilities from the model body's last hidden states, the output "
            "layer applied to completion tokens only, a chunk at a time, instead of full "
            "[batch, sequence, vocabulary] logits. Same numbers, less memory and time at large vocabularies. "
            "Runs under DDP, ZeRO-3 and FSDP2. Falls back to full logits where it cannot run (a LoRA on lm_head, "
            "a model that soft-caps or scales its logits) and says so."
        ),
    )
    kto_group_by_length: bool = Field(
        default=True,
        description=(
            "Train on micro-batches of rows of similar length (rows sorted by length in groups of 64 micro-batches, "
            "the batches of a group shuffled), so little of each batch is padding. The same rows each epoch, in a "
            "fixed order that the KL pairing follows. `false`: the rows in the order the data stage left them."
        ),
    )
    kto_padding_free: bool | Literal["auto"] = Field(
        default="auto",
        description=(
            "Pack the rows of each micro-batch into one sequence, position ids restarting at each row, so no layer "
            "computes padding (flash-attention's variable-length kernel on a GPU, a block-diagonal mask with sdpa or "
            "eager). Same numbers as padded batches. `auto`: on with flash-attention (on sdpa/eager the block mask "
            "measured slower than padding), after a check on two tiny rows that the model keeps packed rows apart; "
            "`true`: on with any attention, the same check, an error where it fails; `false`: padded batches. "
            "`sample_packing: true` in a KTO config means `true` (Axolotl refuses sample packing for RL)."
        ),
    )
    kto_release_cpu_memory: bool | Literal["auto"] = Field(
        default="auto",
        description=(
            "Have the C library (glibc) give each freed block of 128 KiB or more back to the system at once, so "
            "a run's resident memory follows its live tensors instead of climbing step after step (the large "
            "speed bench shape: peak 2.93 GiB instead of 3.48, 10% more time a step). "
            "`auto`: on when no GPU is used (a GPU's activations are not the C library's); `true`: on in any run; "
            "`false`: the C library's defaults. Does nothing where the C library is not glibc."
        ),
    )
    kto_ref_cache: Literal["auto", "off"] = Field(
        default="auto",
        description=(
            "`auto`: the reference model's log-probs of each completion and KL pair are kept on disk once "
            "computed, keyed by the reference weights and config, the tokenized rows and the KL pairing. With a "
            "LoRA adapter (the reference is the adapter switched off) nothing runs before step 1: a micro-batch "
            "whose rows are not known yet runs the reference, and later epochs and later runs with the same key "
            "run none. A full fine-tune computes them before step 1 for the rows the run trains on (no reference "
            "copy is kept; under ZeRO-3 or FSDP once the trainer has wrapped the model). `off`: the reference runs "
            "beside the policy at every step."
        ),
    )
    kto_ref_cache_dir: str | None = Field(
        default=None, description="Folder of the reference cache (default: reference_logps/ in the plugin's cache, "
        "$KTO_PLUGIN_CACHE or ~/.cache/kto_plugin)."
    )
    kto_eval_tasks: list[str] | None = Field(
        default=None,
        description="lm-eval tasks to run on the base and the trained model (lm-eval's own and the project's kto_* tasks).",
    )
    kto_eval_post_train: bool = Field(
        default=False, description="Run `kto_eval_tasks` on base and trained model when training ends."
    )
    kto_eval_include_path: str | list[str] | None = Field(
        default=None, description="Folders with more lm-eval task YAMLs (the plugin's shipped tasks are always included)."
    )
    kto_eval_limit: int | None = Field(default=None, description="Evaluate at most this many documents per task.")
    kto_eval_batch_size: int | None = Field(default=None, description="lm-eval batch size (default 8).")
    kto_lora_preset: Literal["auto", "small", "7b", "70b"] | None = Field(
        default=None,
        description=(
            "Fill lora_r, lora_alpha and the LoRA target modules by model size (parameters counted from the base "
            "model's config, no weights loaded): small (under 3B) r 32 / alpha 64 on q,v; 7b (3B to 30B) r 64 / "
            "alpha 128 on every linear layer; 70b (30B and more) r 128 / alpha 256 on q,k,v. `auto` picks by size. "
            "A key you set is kept; `adapter` becomes `lora` when unset."
        ),
    )
    kto_iterate: IterateSettings | None = Field(
        default=None,
        description=(
            "Settings of `axolotl kto iterate CONFIG`: rounds of sampling answers from the current model, labelling "
            "them (a person or a judge), checking them and training KTO on them (the keys below; the command's "
            "options override them). `axolotl train` ignores them."
        ),
    )
    kto_dataset_fields: dict[str, list[dict[str, str]]] | None = Field(
        default=None,
        description=(
            "Filled by the plugin: the `field_*` keys of each `datasets:` / `test_datasets:` "
            "entry, which Axolotl's dataset schema would otherwise drop. Set the keys in the "
            "dataset entries, not here."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def check_rl_is_kto(cls, data: Any) -> Any:
        # `axolotl inference` loads the training config with `rl: None` and `inference: true`.
        if isinstance(data, dict) and not data.get("inference") and not rl_is_kto(data.get("rl")):
            raise ValueError(
                "`plugins: [kto_plugin.KTOPlugin]` needs `rl: kto` "
                f"(got `rl: {data.get('rl')}`): add `rl: kto` or remove the plugin"
            )
        return data

    @model_validator(mode="before")
    @classmethod
    def check_dataset_types(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key in ("datasets", "test_datasets"):
            for position, entry in enumerate(data.get(key) or []):
                # Axolotl has already turned entries into its KTODataset models here.
                dataset_type = entry.get("type") if isinstance(entry, dict) else getattr(entry, "type", None)
                try:
                    format_of_type(dataset_type)
                except ValueError as err:
                    raise ValueError(f"`{key}[{position}].type`: {err}") from None
        return data

    @model_validator(mode="before")
    @classmethod
    def check_excess_length_strategy(cls, data: Any) -> Any:
        if isinstance(data, dict):
            strategy = data.get("excess_length_strategy")
            if strategy is not None and str(strategy).lower() not in {"truncate", "drop", "raise"}:
                raise ValueError(
                    f"`excess_length_strategy: {strategy}`: use truncate (the plugin's default: "
                    "keep the completion and the end of the prompt), drop, or raise"
                )
        return data

    @model_validator(mode="before")
    @classmethod
    def check_loss_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kto_loss_type") is not None:
            if data["kto_loss_type"] not in LOSS_TYPES:
                raise ValueError(
                    f"`kto_loss_type: {data['kto_loss_type']}` is unknown: use one of {', '.join(LOSS_TYPES)}"
                )
        point = data.get("kto_reference_point") if isinstance(data, dict) else None
        if point is not None:
            if point not in REFERENCE_POINTS:
                raise ValueError(
                    f"`kto_reference_point: {point}` is unknown: use one of {', '.join(REFERENCE_POINTS)}"
                )
            if point != "kl" and data.get("kto_loss_type") == "apo_zero_unpaired":
                raise ValueError(
                    f"`kto_reference_point: {point}` shifts the rewards of `kto_loss_type: kto`; "
                    "`kto_loss_type: apo_zero_unpaired` has no reference point: remove one of the two keys"
                )
        return data

    @model_validator(mode="before")
    @classmethod
    def check_sft_gce_q(cls, data: Any) -> Any:
        q = data.get("kto_sft_gce_q") if isinstance(data, dict) else None
        if q and data.get("kto_sft_weight") == 0:
            raise ValueError(
                f"`kto_sft_gce_q: {q}` shapes the SFT term, and `kto_sft_weight: 0` turns it off: remove "
                "`kto_sft_gce_q`, or give `kto_sft_weight` a weight above 0"
            )
        return data

    @model_validator(mode="before")
    @classmethod
    def check_class_balance(cls, data: Any) -> Any:
        balance = data.get("kto_class_balance") if isinstance(data, dict) else None
        if balance is not None and balance not in CLASS_BALANCE_KINDS:
            raise ValueError(
                f"`kto_class_balance: {balance}` is unknown: use one of {', '.join(CLASS_BALANCE_KINDS)}"
            )
        return data

    @model_validator(mode="before")
    @classmethod
    def check_beta_schedule(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("kto_beta_schedule") is None:
            return data
        check_schedule_spec(data["kto_beta_schedule"])
        return data

    @model_validator(mode="before")
    @classmethod
    def check_auto_weights(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kto_auto_weights"):
            explicit = [key for key in ("kto_desirable_weight", "kto_undesirable_weight") if data.get(key) is not None]
            if explicit:
                raise ValueError(
                    f"`kto_auto_weights: true` chooses the class weights itself: remove "
                    f"{' and '.join(f'`{key}`' for key in explicit)}, or set `kto_auto_weights: false`"
                )
        return data

    @model_validator(mode="before")
    @classmethod
    def check_eval_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kto_eval_post_train") and not data.get("kto_eval_tasks"):
            raise ValueError(
                "`kto_eval_post_train: true` needs `kto_eval_tasks:`, e.g. [kto_sample_en_preference, kto_sample_en_rules]"
            )
        return data
