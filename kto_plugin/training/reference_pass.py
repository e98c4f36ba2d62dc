"""The reference model's pass over the data before training (TRL's `precompute_ref_log_probs`), cached on disk.

A mixin for the plugin's trainer: `compute_ref_log_probs` runs the reference through the
chunked log-prob path, and `_precompute_ref_logps` reads the columns from the
`ReferenceCache` when its key matches, else lets TRL compute them (spread over all ranks,
with TRL's progress bar) and has rank 0 write them. One log line per split says whether
the cache was hit, built, or rebuilt, and why.
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

    def _reference_cache_key(self, dataset) -> str | None:
        reference = self.ref_model or self.model
        if any(hasattr(parameter, "ds_id") for parameter in reference.parameters()):
            return None  # ZeRO-3: each rank holds a shard, so no rank can hash the weights
        adapter_off = self.ref_model is None and is_peft_model(self.model)
        key = [self.reference_cache.key(reference_weights_digest(self.accelerator.unwrap_model(reference), adapter_off),
                                        rows_digest(dataset), self.calculate_KL)]
        broadcast_object_list(key, from_process=0)
        return key[0]

    def _precompute_ref_logps(self, dataset, name, batch_size):
        if self.reference_cache is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        key = self._reference_cache_key(dataset)
        if key is None:
            LOG.info(f"KTO reference cache: not used for the {name} split under ZeRO-3; computed for this run only")
            return super()._precompute_ref_logps(dataset, name, batch_size)
        columns, why = self.reference_cache.load(key, len(dataset))
        if columns is not None:
            LOG.info(f"KTO reference cache: hit for the {name} split ({self.reference_cache.folder / key}): "
                     "no reference forwards in this run")
            for column in COLUMNS:
                if column in columns:
                    dataset = dataset.add_column(column, columns[column].tolist())
            return dataset
        prepared = super()._precompute_ref_logps(dataset, name, batch_size)
        path = None
        if self.accelerator.is_main_process:
            path = self.reference_cache.save(key, {
                column: torch.tensor(prepared[column], dtype=torch.float32)
                for column in COLUMNS if column in prepared.column_names
            })
        self.accelerator.wait_for_everyone()
        verb = "built" if why.startswith("no cache") else "rebuilt"
        LOG.info(f"KTO reference cache: {verb} for the {name} split in {path or self.reference_cache.folder} ({why})")
        return prepared
