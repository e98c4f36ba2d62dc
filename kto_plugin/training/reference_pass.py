"""The reference model's log-probs through the on-disk cache, computed no earlier than needed.

A mixin for the plugin's trainer (`kto_ref_cache: auto`). TRL calls `_precompute_ref_logps` per
split inside the trainer's `__init__`; here that call reads what the `ReferenceCache` holds for
the split's key (every row on a hit, some after a short run, none the first time), numbers the
rows (`ref_row`, carried by the data loader) and registers them in a `ReferenceStore`. Nothing
more runs before step 1 where the reference stays at hand during training (a LoRA reference
is the adapter switched off): each step looks its rows up and, for a row not known yet, runs
the reference on that micro-batch as it would without the cache and records the values. At
each checkpoint and the end of each epoch and of training the ranks merge what they computed
through the process group and each node's first process writes its own copy of the cache (nodes need not share a
disk), so the next epoch and the next run with the same key run no reference forwards.

A full fine-tune has no reference at hand once its weights move, and keeping a second copy
would cost a model's memory: there the pass runs before step 1, over the rows this run will
train on only (the first `max_steps` x global batch rows; a whole epoch without `max_steps`),
spread over the ranks, with a progress bar. Where the weights are sharded in training (ZeRO-3,
FSDP) it runs after the trainer has wrapped the model (`on_train_begin`), on the training model,
whose forward gathers each layer's weights as a training step's does: before wrapping, FSDP's ranks
other than the first may hold no weights yet, and a second DeepSpeed engine would place them anew.
One log line per split says what the cache held and one per write what it holds. Under ZeRO-3 the
key's weights are gathered one at a time.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import torch
from accelerate.utils import broadcast_object_list, is_peft_model
from transformers import TrainerCallback
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from kto_plugin.log import get_logger
from kto_plugin.training.reference_cache import (
    COLUMNS,
    ReferenceCache,
    partitioned_by_zero3,
    reference_weights_digest,
    rows_digest,
)
from kto_plugin.training.reference_store import ReferenceStore, Segment

LOG = get_logger(__name__)

ROW_COLUMN = "ref_row"


@dataclass
class WithRowNumbers:
    """A data collator that also hands on each example's row number (`ref_row`), which TRL's collator drops."""

    collator: Callable

    def __call__(self, examples: list[dict[str, Any]], *args, **kwargs) -> dict[str, Any]:
        batch = self.collator(examples, *args, **kwargs)
        batch[ROW_COLUMN] = torch.tensor([example[ROW_COLUMN] for example in examples])
        return batch


class KeepReferenceValues(TrainerCallback):
    """At each checkpoint and the end of each epoch and of training: the ranks merge their reference values and the
    cache is written (a run resumed after a crash then finds the rows its earlier part met). At the start of
    training: the pass a full fine-tune with sharded weights waits for until the model is wrapped."""

    def __init__(self, trainer: ReferencePassMixin):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer.reference_passes_after_wrapping(state.global_step)

    def on_save(self, args, state, control, **kwargs):
        self.trainer.keep_reference_values()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer.keep_reference_values()

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer.keep_reference_values()


class ReferencePassMixin:
    reference_cache: ReferenceCache | None = None  # set from `kto_ref_cache` before the trainer is built
    reference_store: ReferenceStore | None = None  # made by the first `_precompute_ref_logps`

    def _reference_adapter_off(self):
        """The context in which `self.model` is the reference: its adapter switched off (LoRA), else nothing."""
        if self.ref_model is None and is_peft_model(self.model):
            unwrapped = self.accelerator.unwrap_model(self.model)
            return use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        return nullcontext()

    def _reference_at_hand(self) -> bool:
        """Whether the reference can run during training: a separate model, or the policy with its adapter off."""
        return self.ref_model is not None or is_peft_model(self.model)

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

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if self.reference_store is not None and ROW_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, ROW_COLUMN]  # kept for `WithRowNumbers`

    def _reference_logps(self, batch, model_kwargs, rows: torch.Tensor | None = None):
        """(reference log-probs, reference KL-pair log-probs) of a training or evaluation micro-batch; `rows` are its
        row numbers where the reference cache is on."""
        if self.reference_store is not None and rows is not None:
            found = self.reference_store.lookup(rows)
            if found is None:
                if not self._reference_at_hand():
                    raise RuntimeError(
                        "KTO reference cache: a micro-batch holds rows whose reference log-probs were not computed "
                        "before training, and a full fine-tune has no reference left once its weights move. Set "
                        "`kto_ref_cache: off` to run a reference copy beside the policy at every step.")
                found = self._reference_forward(batch, model_kwargs)
                self.reference_store.record(rows, found)
            device = batch["input_ids"].device
            return found["ref_logps"].to(device), (found["ref_KL_logps"].to(device) if self.calculate_KL else None)
        if "ref_logps" in batch:  # TRL's own precomputed columns
            return batch["ref_logps"], batch.get("ref_KL_logps")
        found = self._reference_forward(batch, model_kwargs)
        return found["ref_logps"], found.get("ref_KL_logps")

    def _reference_forward(self, batch, model_kwargs) -> dict[str, torch.Tensor]:
        """The reference run on one micro-batch, as it runs beside the policy without the cache."""
        reference = self.ref_model or self.model
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            with self._reference_adapter_off():
                kl_logps = self._compute_kl_logps(reference, batch)
                logps, _ = self._sequence_logps(reference, model_kwargs, batch)
        return {"ref_logps": logps, **({"ref_KL_logps": kl_logps} if kl_logps is not None else {})}

    def _reference_cache_key(self, dataset) -> str:
        """The cache key, hashed by the first process only (every rank holds the same weights and rows) and sent to
        the others: one pass over the weights per run, not one per rank. Under ZeRO-3 every rank takes part in
        gathering each weight for that process to hash."""
        key = [None]
        reference = self.accelerator.unwrap_model(self.ref_model or self.model)
        # Once for train and eval, on every rank alike: a rank that does not hash gets None, and must not take that
        # for "not yet" (at the eval split it gathered the stage-3 weights again, alone, and the run hung)
        if not getattr(self, "_reference_weights_seen", False):
            self._reference_weights_seen = True
            self._reference_weights_digest = None
            if self.accelerator.is_main_process or partitioned_by_zero3(reference):
                adapter_off = self.ref_model is None and is_peft_model(self.model)
                self._reference_weights_digest = reference_weights_digest(
                    reference, adapter_off, hashing=self.accelerator.is_main_process)
        if self.accelerator.is_main_process:
            key = [self.reference_cache.key(self._reference_weights_digest, rows_digest(dataset), self.calculate_KL)]
        broadcast_object_list(key, from_process=0)
        return key[0]

    def _reference_pass(self, dataset, name: str, batch_size: int, model=None) -> None:
        """Reference log-probs of these (numbered) rows into the store, run on `model` (by default the reference, or
        before training the policy as DeepSpeed would place it); the batches are spread evenly over the ranks."""
        from accelerate.utils import tqdm
        from torch.utils.data import DataLoader
        from trl.models import prepare_deepspeed

        loader = self.accelerator.prepare(DataLoader(
            dataset, batch_size=batch_size, collate_fn=self.data_collator, shuffle=False,
            num_workers=self.args.dataloader_num_workers,
        ))
        if model is None:
            # As TRL does: before training, DeepSpeed has not placed the parameters yet; an inference engine does.
            model = self.ref_model or self.model
            if self.ref_model is None and self.is_deepspeed_enabled:
                if getattr(self, "_precompute_engine", None) is None:
                    self._precompute_engine = prepare_deepspeed(self.model, self.accelerator)
                model = self._precompute_engine
        for batch in tqdm(loader, desc=f"Reference log-probs of the {name} split"):
            logps, kl_logps = self.compute_ref_log_probs(model, batch)
            self.reference_store.record(batch[ROW_COLUMN], {"ref_logps": logps, "ref_KL_logps": kl_logps})
        self.reference_store.merge_ranks(self.accelerator)

    def _rows_this_run_trains_on(self, name: str, rows: int) -> int:
        """The train split's first max_steps x global batch rows (rows are read in order); every row elsewhere."""
        if name != "train" or self.args.max_steps <= 0:
            return rows
        return min(rows, self.args.max_steps * self.kl_window)

    def _precompute_ref_logps(self, dataset, name, batch_size):
        """`dataset` numbered and registered with the store, with what the cache holds for it; the pass before
        training only where no reference is at hand during training (a full fine-tune)."""
        if self.reference_cache is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        if ROW_COLUMN in dataset.column_names:  # registered already (TRL's `evaluate` calls this again)
            return dataset
        key = self._reference_cache_key(dataset)
        known, why = self.reference_cache.load(key, len(dataset))
        if self.reference_store is None:
            self.reference_store = ReferenceStore(COLUMNS if self.calculate_KL else COLUMNS[:1])
            self.data_collator = WithRowNumbers(self.data_collator)
            self.add_callback(KeepReferenceValues(self))
            self._kept_rows: dict[str, int] = {}
            self._passes_after_wrapping: list[tuple] = []  # (rows, split name, batch size, segment)
        segment = self.reference_store.add_segment(name, key, len(dataset), known)
        self.reference_store.merge_ranks(self.accelerator)  # a node without the file gets the others' values
        self._kept_rows[key] = self.reference_store.known_rows(segment) if known is not None else -1
        dataset = dataset.add_column(ROW_COLUMN, range(segment.offset, segment.offset + segment.rows))
        self._report_what_the_cache_held(segment, why)
        if not self._reference_at_hand():
            needed = self.reference_store.rows_needed(segment, self._rows_this_run_trains_on(name, len(dataset)))
            if len(needed) and self._weights_sharded_in_training():
                self._passes_after_wrapping.append((dataset.select(needed.tolist()), name, batch_size, segment))
            elif len(needed):
                self._reference_pass(dataset.select(needed.tolist()), name, batch_size)
                self._keep_segment(segment, before_training=True)
        return dataset

    def _weights_sharded_in_training(self) -> bool:
        """ZeRO-3 or FSDP: the whole weights are on no rank before the trainer wraps the model."""
        plugin = self.accelerator.state.deepspeed_plugin if self.is_deepspeed_enabled else None
        return self.is_fsdp_enabled or (plugin is not None and plugin.zero_stage == 3)

    def reference_passes_after_wrapping(self, global_step: int) -> None:
        """The passes a full fine-tune with sharded weights left for the start of training, run on the wrapped
        training model (every rank takes part: its forward gathers each layer's weights), in eval mode, as the pass
        before wrapping runs on the model as loaded."""
        passes, self._passes_after_wrapping = self._passes_after_wrapping, []  # set with the callback that calls this
        if not passes:
            return
        if global_step > 0:
            rows = sum(len(dataset) for dataset, *_ in passes)
            raise RuntimeError(
                f"KTO reference cache: this run resumes at step {global_step}, and {rows:,} rows it trains on have no "
                "reference log-probs in the cache (a full fine-tune computes them before step 1, from the starting "
                "weights, which a resumed run no longer has). Resume with the `max_steps` of the run that wrote the "
                "checkpoint, or set `kto_ref_cache: off`.")
        model = self.model
        was_training = model.training
        model.eval()
        try:
            for dataset, name, batch_size, segment in passes:
                LOG.info(f"KTO reference cache: the {name} split's pass runs now that the weights are sharded over "
                         f"the ranks and each forward gathers them ({len(dataset):,} rows)")
                self._reference_pass(dataset, name, batch_size, model=model)
                self._keep_segment(segment, before_training=True)
        finally:
            model.train(was_training)

    def _report_what_the_cache_held(self, segment: Segment, why: str) -> None:
        where = self.reference_cache.folder / segment.key
        known = self.reference_store.known_rows(segment)
        if known == segment.rows:
            LOG.info(f"KTO reference cache: hit for the {segment.name} split ({where}): no reference forwards for it")
            return
        if self._reference_at_hand():
            when = "as training first meets each micro-batch (no pass before step 1)"
        else:
            when = ("before step 1, over the rows this run trains on (a full fine-tune keeps no reference copy "
                    "once its weights move)")
            if self._weights_sharded_in_training():
                when += ", once the trainer has wrapped the model"
        if known:
            LOG.info(f"KTO reference cache: {known:,} of {segment.rows:,} rows of the {segment.name} split known in "
                     f"{where}; the others computed {when}")
        else:
            verb = "built" if why.startswith("no cache") else "rebuilt"
            LOG.info(f"KTO reference cache: {verb} for the {segment.name} split in {where} ({why}), its rows "
                     f"computed {when}")

    def keep_reference_values(self) -> None:
        """Every rank's values merged (a collective: every rank calls it) and each split's new ones written."""
        if self.reference_store is None:
            return
        self.reference_store.merge_ranks(self.accelerator)
        for segment in self.reference_store.segments:
            self._keep_segment(segment)

    def _keep_segment(self, segment: Segment, before_training: bool = False) -> None:
        known = self.reference_store.known_rows(segment)
        if known == self._kept_rows.get(segment.key):
            return
        if self.accelerator.is_local_main_process:  # each node's own copy
            self.reference_cache.save(segment.key, self.reference_store.segment_values(segment))
        self._kept_rows[segment.key] = known
        where = self.reference_cache.folder / segment.key
        nodes = " (each node its own copy)" if self.accelerator.num_processes > 1 else ""
        complete = "; complete: no reference forwards for it from here" if known == segment.rows and not before_training else ""
        LOG.info(f"KTO reference cache: {known:,} of {segment.rows:,} rows of the {segment.name} split kept in "
                 f"{where}{nodes}{complete}")
