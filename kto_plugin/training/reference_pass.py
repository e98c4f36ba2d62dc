"""The reference model's pass over the data before training (TRL's `precompute_ref_log_probs`), cached on disk.

A mixin for the plugin's trainer: `compute_ref_log_probs` runs the reference through the
chunked log-prob path, and `_precompute_ref_logps` reads the columns from the
`ReferenceCache` when its key matches, else computes them (spread over all ranks, with a
progress bar, the results gathered to every rank) and has each node's first process write them. One log line per split says whether the cache was
hit, built, or rebuilt, and why. The plugin leaves the pass off under ZeRO-3, where no rank
holds the whole weights to hash.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from accelerate.utils import broadcast_object_list, is_peft_model
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from kto_plugin.log import get_logger
from kto_plugin.training.reference_cache import COLUMNS, ReferenceCache, reference_weights_digest, rows_digest

LOG = get_logger(__name__)


class ReferencePassMixin:
    reference_cache: ReferenceCache | None = None  # set by the plugin from `kto_ref_cache` before the trainer is built

    def _reference_adapter_off(self):
        """The context in which `self.model` is the reference: its adapter switched off (LoRA), else nothing."""
        if self.ref_model is None and is_peft_model(self.model):
            unwrapped = self.accelerator.unwrap_model(self.model)
            return use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        return nullcontext()

    def compute_ref_log_probs(self, model, inputs):
        """Reference log-probs of one padded batch's completions and KL pairs (TRL's precompute calls this)."""
        if not self.chunked_logps:
            return super().compute_ref_log_probs(model, inputs)
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            with self._reference_adapter_off():
                completion = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
                logps, _ = self._sequence_logps(model, completion, inputs)
                kl_logps = None
                if self.calculate_KL:
                    pairs = {"input_ids": inputs["KL_input_ids"], "attention_mask": inputs["KL_attention_mask"]}
                    kl_logps, _ = self._sequence_logps(model, pairs, inputs, prefix="KL_")
        return logps, kl_logps

    def _reference_cache_key(self, dataset) -> str:
        """The cache key, hashed by the first process only (every rank holds the same weights and rows) and sent to
        the others: one pass over the weights per run, not one per rank."""
        key = [None]
        if self.accelerator.is_main_process:
            if getattr(self, "_reference_weights_digest", None) is None:  # once for the train and eval splits
                reference = self.ref_model or self.model
                adapter_off = self.ref_model is None and is_peft_model(self.model)
                self._reference_weights_digest = reference_weights_digest(self.accelerator.unwrap_model(reference),
                                                                          adapter_off)
            key = [self.reference_cache.key(self._reference_weights_digest, rows_digest(dataset), self.calculate_KL)]
        broadcast_object_list(key, from_process=0)
        return key[0]

    def _reference_pass(self, dataset, name: str, batch_size: int) -> dict[str, torch.Tensor]:
        """Reference log-probs of every row, in dataset order; the batches are spread over the ranks."""
        from accelerate.utils import tqdm
        from torch.utils.data import DataLoader
        from trl.models import prepare_deepspeed

        loader = self.accelerator.prepare(DataLoader(
            dataset, batch_size=batch_size, collate_fn=self.data_collator, shuffle=False,
            num_workers=self.args.dataloader_num_workers,
        ))
        # As TRL does: before training, DeepSpeed has not placed the parameters yet; an inference engine does.
        model = self.ref_model or self.model
        if self.ref_model is None and self.is_deepspeed_enabled:
            if getattr(self, "_precompute_engine", None) is None:
                self._precompute_engine = prepare_deepspeed(self.model, self.accelerator)
            model = self._precompute_engine
        parts: dict[str, list[torch.Tensor]] = {column: [] for column in COLUMNS}
        for batch in tqdm(loader, desc=f"Reference log-probs of the {name} split"):
            logps, kl_logps = self.compute_ref_log_probs(model, batch)
            if kl_logps is None:
                parts["ref_logps"].append(self.accelerator.gather_for_metrics(logps).float().cpu())
            else:
                logps, kl_logps = self.accelerator.gather_for_metrics((logps, kl_logps))
                parts["ref_logps"].append(logps.float().cpu())
                parts["ref_KL_logps"].append(kl_logps.float().cpu())
        return {column: torch.cat(values) for column, values in parts.items() if values}

    def _precompute_ref_logps(self, dataset, name, batch_size):
        """Reference columns for `dataset`: read from the cache when its key matches on every rank, else computed.

        The pass spreads the batches over all ranks and gathers the results to every rank through the
        process group, so no rank needs another's disk: each node's first process (local rank 0) writes
        its own copy of the cache, and a run whose nodes do not share `kto_ref_cache_dir` works as one that
        does. A rank that finds no usable cache makes every rank compute (the ranks decide together).
        """
        if self.reference_cache is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        from accelerate.utils import gather_object

        key = self._reference_cache_key(dataset)
        columns, why = self.reference_cache.load(key, len(dataset))
        reasons = gather_object([why if columns is None else ""])
        missing = [reason for reason in reasons if reason]
        if missing:
            columns = self._reference_pass(dataset, name, batch_size)
            if self.accelerator.is_local_main_process:
                self.reference_cache.save(key, columns)
            self.accelerator.wait_for_everyone()
            verb = "built" if missing[0].startswith("no cache") else "rebuilt"
            where = " (each node's own copy)" if self.accelerator.num_processes > 1 else ""
            which = "" if len(missing) == len(reasons) else f"; on {len(missing)} of {len(reasons)} ranks"
            LOG.info(f"KTO reference cache: {verb} for the {name} split in {self.reference_cache.folder / key}{where} "
                     f"({missing[0]}{which})")
        else:
            LOG.info(f"KTO reference cache: hit for the {name} split ({self.reference_cache.folder / key}): "
                     "no reference forwards in this run")
        for column in COLUMNS:
            if column in columns:
                dataset = dataset.add_column(column, columns[column].tolist())
        return dataset
