"""The trainer the plugin wires in (`trainer_cls: kto_plugin.trainer.KTOPluginTrainer`).

It is Axolotl's KTO trainer with the plugin's loss (`training/loss.py`), a scheduled beta
(`set_beta`, driven by `training/beta_schedule.py`), KL pairs across the accumulation
window (`training/kl_pairing.py`, so micro-batch 1 works), the rows read in one fixed order, a rare class
repeated rather than weighted up (`training/class_sampling.py`), length-grouped (`training/length_grouping.py`)
and followed by the KL pairing, micro-batches packed without padding where `kto_padding_free` says so
(`training/padding_free.py`), and z0 from BCO's running reward mean (`kto_reference_point: reward_mean`, the
default, `training/reference_point.py`) or a KL estimate reduced over all ranks as a global sum over a global count
(`kl`). A Mixture-of-Experts model's router load-balancing loss is added as TRL adds it (`router_aux_loss_coef`). The
reference's values (a LoRA reference is the adapter switched off) come through `training/reference_pass.py`: looked
up by row, computed when a micro-batch first needs them, kept on disk. Data loading and logging are TRL's.
"""

from __future__ import annotations

import torch
from axolotl.core.trainers import AxolotlKTOTrainer
from datasets import Dataset
from trl.trainer.utils import selective_log_softmax

from kto_plugin.data.class_balance import SamplingPlan
from kto_plugin.errors import ConfigError
from kto_plugin.log import get_logger
from kto_plugin.training.chunked_logps import chunkable_output_layer, chunked_completion_logps, completion_targets, row_sums
from kto_plugin.training.class_sampling import training_order
from kto_plugin.training.continued_adapter import continue_saved_adapter
from kto_plugin.training.displacement import FALLEN_SHARE, NLL_CHOSEN, REFERENCE_NLL_CHOSEN, DisplacementGuard, fell
from kto_plugin.training.kl_pairing import with_kl_completions
from kto_plugin.training.loss import SFT_GCE_SHARE, kl_reference_point, kto_loss
from kto_plugin.training.padding_free import (
    FLASH_ATTENTION,
    attention_implementation,
    model_keeps_packed_rows_apart,
    pack_if_possible,
)
from kto_plugin.training.reference_cache import ReferenceCache
from kto_plugin.training.reference_pass import ROW_COLUMN, ReferencePassMixin
from kto_plugin.training.reference_point import RewardMeanReferencePoint, reward_mean_z0
from kto_plugin.training.training_args import reference_cache_from_args
from kto_plugin.versions import set_trl_beta, trl_kto_fast_path

LOG = get_logger(__name__)

NON_MODEL_KEYS = {"completion_mask", "KL_input_ids", "KL_attention_mask", "KL_completion_mask", "KL_token_type_ids",
                  "KL_mm_token_type_ids", "label", "ref_logps", "ref_KL_logps"}


def completion_logps(logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor,
                     row_ids: torch.Tensor | None = None, rows: int | None = None,
                     sft_gce_q: float | None = None) -> torch.Tensor:
    """Sum over completion tokens of log p(token | prefix), one value per sequence (per packed row with `row_ids`);
    with `sft_gce_q` also of the SFT term's token losses (`chunked_logps.row_sums`)."""
    per_token = selective_log_softmax(logits[:, :-1, :], input_ids[:, 1:])
    selected, target_rows = completion_targets(completion_mask, row_ids)
    return row_sums(per_token[selected], target_rows, input_ids.shape[0] if rows is None else rows, sft_gce_q)


class KTOPluginTrainer(ReferencePassMixin, AxolotlKTOTrainer):
    """The plugin's settings come from the training arguments (`training_args.KTOTrainingArgsMixin`), read in
    `__init__` before TRL's reference pass runs inside it."""

    def apply_settings(self, training_args) -> None:
        """This trainer's copy of the plugin's settings (`kto_chunked_logps`, `kto_ref_cache`, ...)."""
        self.chunked_logps = training_args.kto_chunked_logps
        self.group_by_length = training_args.kto_group_by_length
        self.padding_free = training_args.kto_padding_free  # True, False or "auto"
        self.reference_cache: ReferenceCache | None = reference_cache_from_args(training_args)
        self.continue_adapter = training_args.kto_continue_adapter  # `lora_model_dir` of an adapter run
        self.sft_weight = training_args.kto_sft_weight
        self.sft_gce_q = training_args.kto_sft_gce_q  # 0: the SFT term is the NLL
        self.sft_gce_max_reference_nll = training_args.kto_sft_gce_max_reference_nll  # the GCE's rows: loss.py
        self.reference_point = training_args.kto_reference_point  # "kl" or "reward_mean" (training/reference_point.py)
        self.displacement_guard = DisplacementGuard()
        self.class_sampling: SamplingPlan | None = None  # `kto_class_balance`'s plan, made with the training split
        self._packing_checked: bool | None = None  # whether the model keeps packed rows apart, once checked

    def __init__(self, *args, **kwargs):
        training_args = kwargs["args"]
        self.apply_settings(training_args)
        args, kwargs = continue_saved_adapter(self.continue_adapter, args, kwargs)
        self.kl_window = (
            training_args.per_device_train_batch_size
            * training_args.gradient_accumulation_steps
            * training_args.world_size
        )
        # TRL refuses micro-batch 1 because it pairs KL completions inside a micro-batch;
        # the plugin pairs across the accumulation window instead (see kl_pairing.py).
        real_micro_batch = self.real_micro_batch = training_args.per_device_train_batch_size
        training_args.per_device_train_batch_size = max(real_micro_batch, 2)
        try:
            super().__init__(*args, **kwargs)
        finally:
            training_args.per_device_train_batch_size = real_micro_batch
        self._train_batch_size = training_args.train_batch_size
        if self.class_sampling:  # the rare class is repeated in the order instead of weighted up
            self.desirable_weight = self.class_sampling.desirable_weight
            self.undesirable_weight = self.class_sampling.undesirable_weight
        if self.reference_point == "reward_mean":
            self.add_callback(RewardMeanReferencePoint())  # its sums are saved and restored with the trainer state
            LOG.info("KTO: z0 is the mean log-ratio of the earlier steps' rows, weighted by their class weights "
                     "(kto_reference_point: reward_mean): no KL pairs and no KL forward")
        if self.use_liger_kernel:
            LOG.warning(f"kto_plugin computes the KTO loss itself: `use_liger_kernel` ({trl_kto_fast_path()}) is not used")
            self.use_liger_kernel = False

    @property
    def calculate_KL(self) -> bool:  # noqa: N802 (TRL's name): no KL pairs, columns or forward without the KL z0
        return getattr(self, "_calculate_kl", True) and self.reference_point == "kl"

    @calculate_KL.setter
    def calculate_KL(self, value: bool) -> None:  # noqa: N802
        self._calculate_kl = value

    def set_beta(self, beta: float) -> None:
        set_trl_beta(self, beta)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        calculate_kl = self.calculate_KL
        if isinstance(dataset, Dataset):
            # TRL's own KL column (a +1 rotation inside each micro-batch, a pass over every row) would be
            # replaced below: it is not built.
            self.calculate_KL = False
        try:
            dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        finally:
            self.calculate_KL = calculate_kl
        if not isinstance(dataset, Dataset):
            return dataset
        if dataset_name == "train":  # the training order: a rare class repeated, micro-batches grouped by length
            dataset, self.class_sampling = training_order(dataset, args, self.real_micro_batch, self.group_by_length)
        if not self.calculate_KL:
            return dataset
        window = self.kl_window if dataset_name == "train" else args.per_device_eval_batch_size * args.world_size
        dataset, unpaired = with_kl_completions(dataset, window)
        if unpaired:
            LOG.warning(
                f"{unpaired} {dataset_name} examples have no example with a different completion to pair "
                "with: the KL estimate for them uses their own completion"
            )
        return dataset

    def _get_train_sampler(self, train_dataset=None):
        """The rows in dataset order, as the KL pairing assumed (TRL 1.9 does so only before transformers 5.2)."""
        from torch.utils.data import SequentialSampler
        from transformers.trainer_utils import has_length

        train_dataset = self.train_dataset if train_dataset is None else train_dataset
        if train_dataset is None or not has_length(train_dataset):
            return super()._get_train_sampler(train_dataset)
        return SequentialSampler(train_dataset)

    def report_logps_path(self) -> None:
        """Say once whether `kto_chunked_logps` runs for this model (training/chunked_logps.py)."""
        if not self.chunked_logps:
            return
        if chunkable_output_layer(self.model) is None:
            LOG.warning(
                "kto_chunked_logps: the output layer of this model cannot be applied in chunks (a LoRA or another "
                "wrapper on lm_head, or logits changed after it: a soft cap or a scale): full [batch, sequence, "
                "vocabulary] logits are computed instead"
            )
        else:
            LOG.info("KTO: completion log-probs from the last hidden states, the output layer on completion tokens "
                     "only, in chunks (kto_chunked_logps)")

    def _packs_rows(self, model) -> bool:
        """Whether `kto_padding_free` packs micro-batches for this model: checked once on two tiny rows."""
        if not self.padding_free:
            return False
        if self._packing_checked is None:
            implementation = attention_implementation(model)
            if self.padding_free == "auto" and implementation not in FLASH_ATTENTION:
                self._packing_checked = False
                LOG.info(f"KTO: micro-batches padded (kto_padding_free: auto with {implementation} attention): packed "
                         "rows would need a block mask over the whole packed sequence, measured slower than padding "
                         "here; `kto_padding_free: true` packs them anyway")
                return False
            self._packing_checked = model_keeps_packed_rows_apart(model)
            if self._packing_checked:
                LOG.info(f"KTO: padding-free micro-batches (kto_padding_free), attention {implementation}: each "
                         "micro-batch's rows packed into one sequence, position ids restarting at each row")
            elif self.padding_free == "auto":
                LOG.info(f"KTO: padding-free micro-batches off: this model ({implementation} attention) does not keep "
                         "packed rows apart, so micro-batches stay padded (kto_padding_free: auto)")
            else:
                raise ConfigError(
                    f"`kto_padding_free: true`, but this model ({implementation} attention) does not keep packed rows "
                    "apart: its attention would mix rows. Set `kto_padding_free: auto` or `false`."
                )
        return self._packing_checked

    def _sequence_logps(self, model, model_kwargs, batch, prefix: str = "", full_logits: bool = False,
                        sft_gce_q: float | None = None):
        """(per-sequence completion log-probs, [rows, 2] with the SFT token losses' sums for `sft_gce_q`, the model's
        outputs): packed and in chunks where those paths run."""
        input_ids, completion_mask = batch[f"{prefix}input_ids"], batch[f"{prefix}completion_mask"]
        packed = None
        if not full_logits and self._packs_rows(model):
            packed = pack_if_possible(model_kwargs, completion_mask, attention_implementation(model))
        rows = {}
        if packed is not None:
            model_kwargs, input_ids, completion_mask = packed.model_kwargs(model_kwargs), packed.input_ids, packed.completion_mask
            rows = {"row_ids": packed.row_ids, "rows": packed.rows}
        head = None if full_logits or not self.chunked_logps else chunkable_output_layer(model)
        if head is not None:
            return chunked_completion_logps(model, model_kwargs, input_ids, completion_mask, head, **rows,
                                            sft_gce_q=sft_gce_q)
        outputs = model(**model_kwargs)
        return completion_logps(outputs.logits, input_ids, completion_mask, **rows, sft_gce_q=sft_gce_q), outputs

    def _compute_kl_logps(self, model, batch):
        """The KL pairs' completion log-probs (no gradient); TRL's own where the chunked path is off."""
        if not self.calculate_KL or not self.chunked_logps or "KL_token_type_ids" in batch or "KL_mm_token_type_ids" in batch:
            return super()._compute_kl_logps(model, batch)
        kwargs = {key: value for key, value in batch.items() if key not in NON_MODEL_KEYS | {"input_ids", "attention_mask"}}
        kwargs.update(input_ids=batch["KL_input_ids"], attention_mask=batch["KL_attention_mask"], use_cache=False)
        with torch.no_grad():
            logps, _ = self._sequence_logps(model, kwargs, batch, prefix="KL_")
        return logps

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return self._compute_loss(model, inputs, return_outputs)

    def _global_kl(self, policy_kl_logps, reference_kl_logps, device):
        """(z0, raw) from the sum of KL log-ratios and their count over every rank."""
        if self.calculate_KL and policy_kl_logps is not None:
            local = torch.stack([
                (policy_kl_logps - reference_kl_logps).sum().float(),
                torch.tensor(float(policy_kl_logps.shape[0]), device=device),
            ])
        else:
            local = torch.zeros(2, device=device)
        total = self.accelerator.reduce(local.detach(), reduction="sum")
        return kl_reference_point(total[0], total[1])

    def _compute_loss(self, model, inputs, return_outputs=False):
        mode = "train" if self.model.training else "eval"
        device = self.accelerator.device
        batch = {key: (value.to(device) if isinstance(value, torch.Tensor) else value) for key, value in inputs.items()}
        rows = batch.pop(ROW_COLUMN, None)  # the reference cache's row numbers (training/reference_pass.py)
        desirable = torch.as_tensor(batch["label"], dtype=torch.bool, device=device)

        policy_kl_logps = self._compute_kl_logps(model, batch)
        model_kwargs = {key: value for key, value in batch.items() if key not in NON_MODEL_KEYS}
        # TRL sets aux_loss_enabled for a Mixture-of-Experts model whose coefficient is not 0.
        with_router_loss = getattr(self, "aux_loss_enabled", False)
        sft_gce_q = self.sft_gce_q if self.sft_weight and self.sft_gce_q else None
        policy_logps, outputs = self._sequence_logps(
            model, {**model_kwargs, **({"output_router_logits": True} if with_router_loss else {})}, batch,
            full_logits=return_outputs, sft_gce_q=sft_gce_q,  # a caller that asks for the outputs reads their logits
        )
        policy_logps, sft_sums = policy_logps.unbind(-1) if sft_gce_q else (policy_logps, None)
        reference_logps, reference_kl_logps = self._reference_logps(batch, model_kwargs, rows)
        if self.reference_point == "reward_mean":
            class_weights = torch.where(desirable, self.desirable_weight, self.undesirable_weight)
            kl = kl_raw = reward_mean_z0(self, policy_logps.detach() - reference_logps.detach(), class_weights,
                                         mode == "train")
        else:
            kl, kl_raw = self._global_kl(policy_kl_logps, reference_kl_logps, device)

        completion_tokens = batch["completion_mask"][:, 1:].sum(-1).clamp(min=1)
        result = kto_loss(
            policy_logps, reference_logps.to(policy_logps.dtype), desirable, kl.to(policy_logps.dtype),
            beta=self.beta, desirable_weight=self.desirable_weight,
            undesirable_weight=self.undesirable_weight, loss_type=self.loss_type,
            completion_tokens=completion_tokens, sft_weight=self.sft_weight, sft_token_loss_sums=sft_sums,
            sft_gce_max_reference_nll=self.sft_gce_max_reference_nll,
        )
        loss = result.losses.mean()
        if with_router_loss:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.reduce(outputs.aux_loss.detach(), reduction="mean").item())
        reference_nll = -reference_logps.detach().to(policy_logps.dtype) / completion_tokens
        self._record_metrics(mode, desirable, result, policy_logps.detach(), kl, kl_raw, reference_nll)
        return (loss, outputs) if return_outputs else loss

    def _record_metrics(self, mode, desirable, result, logps, kl, kl_raw, reference_nll):
        """Averages over every rank's examples; a class absent from the whole batch logs nothing."""
        undesirable, rewards, nll, sft_gce = ~desirable, result.rewards, result.nll, result.sft_gce
        stats = torch.stack([
            desirable.sum().float(), undesirable.sum().float(),
            rewards[desirable].sum().float(), rewards[undesirable].sum().float(),
            logps[desirable].sum().float(), logps[undesirable].sum().float(),
            nll[desirable].sum().float(), reference_nll[desirable].sum().float(),
            fell(nll, reference_nll)[desirable].sum().float(), (desirable if sft_gce is None else sft_gce)[desirable].sum().float(),
        ])
        n_desirable, n_undesirable, reward_d, reward_u, logps_d, logps_u, nll_d, reference_nll_d, fallen_d, gce_d = (
            self.accelerator.reduce(stats, reduction="sum").tolist()
        )
        metrics = self._metrics[mode]
        metrics["kl"].append(float(kl))
        metrics["kl_raw"].append(float(kl_raw))
        if n_desirable:
            metrics["rewards/chosen"].append(reward_d / n_desirable)
            metrics["logps/chosen"].append(logps_d / n_desirable)
            metrics[NLL_CHOSEN].append(nll_d / n_desirable)
            metrics[REFERENCE_NLL_CHOSEN].append(reference_nll_d / n_desirable)
            metrics[FALLEN_SHARE].append(fallen_d / n_desirable)
            if sft_gce is not None:  # the share of the accepted answers whose SFT term is the GCE (`kto_sft_gce_q`)
                metrics[SFT_GCE_SHARE].append(gce_d / n_desirable)
        if n_undesirable:
            metrics["rewards/rejected"].append(reward_u / n_undesirable)
            metrics["logps/rejected"].append(logps_u / n_undesirable)

    def log(self, logs, start_time=None):
        mode = "train" if self.model.training else "eval"
        metrics = self._metrics[mode]
        # The margin of the logging window, also when no single micro-batch held both classes
        # (always the case at micro-batch 1).
        if metrics.get("rewards/chosen") and metrics.get("rewards/rejected"):
            chosen, rejected = metrics["rewards/chosen"], metrics["rewards/rejected"]
            metrics["rewards/margins"] = [sum(chosen) / len(chosen) - sum(rejected) / len(rejected)]
        if mode == "train":
            logs["beta"] = float(self.beta)
            if self.accelerator.is_main_process:  # the metrics are global already: one warning, not one per rank
                self.displacement_guard.check(metrics, self.state.global_step, self.sft_weight,
                                              self.args.learning_rate, float(self.beta))
        super().log(logs, start_time)
