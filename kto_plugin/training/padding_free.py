"""Padding-free micro-batches (`kto_padding_free`): the rows of a micro-batch packed into one sequence.

A padded micro-batch of B rows computes B x T_max token positions. Packed, the model gets one
sequence of the sum of the rows' real lengths, with position ids that restart at 0 at each
row's first token and no attention mask:

    input_ids    = [x1 y1 | x2 y2 | x3 y3]          (each row's prompt x and completion y, no padding)
    position_ids = [0 1 .. n1-1 | 0 1 .. n2-1 | 0 ..]

transformers reads that layout from the position ids (`masking_utils.find_packed_sequence_indices`,
flash-attention's `_is_packed_sequence`) and keeps every row's attention inside the row: with
flash-attention (a GPU) through the variable-length kernel, with sdpa or eager (the CPU) through a
block-diagonal causal mask over the packed sequence. Token t is predicted from position t-1 of its
own row, so a row's first token predicts nothing across the boundary, and each row's log-prob is
the sum over its own completion tokens (an `index_add` by row):

    logp(y_i | x_i) = sum over t in row i, position(t) > 0, t in y_i of  log p(token_t | tokens of row i before t)

Those are the padded path's numbers (tested within 1e-4, gradients included). What it saves: every
layer runs on real tokens only. What it costs on sdpa/eager: attention over the whole packed
sequence under an N x N block mask for N packed tokens, B times the padded batch's attention area;
on the 2-core CPU that made a step 16% slower at 1,024-token rows (bench/), so `auto` packs only
with flash-attention, and `true` packs on any implementation. A micro-batch whose packed mask would
pass `MAX_PACKED_MASK_BYTES` stays padded. Before packing, the model is checked once on two tiny
rows (`model_keeps_packed_rows_apart`: a model whose attention ignores position ids would mix
rows); `auto` stays padded with a log line where the check fails, `true` stops with an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kto_plugin.training.chunked_logps import without_distributed_wrappers

MAX_PACKED_MASK_BYTES = 64 * 1024**2  # an N x N boolean mask: 8,192 packed tokens
FLASH_ATTENTION = ("flash_attention_2", "flash_attention_3")
# Model inputs that have a packed form here; a batch with any other (token_type_ids, pixel_values ...) stays padded.
PACKABLE_INPUTS = frozenset({"input_ids", "attention_mask", "use_cache", "output_router_logits"})


@dataclass
class PackedRows:
    """One micro-batch as a single sequence of its real tokens (see the module docstring)."""

    input_ids: torch.Tensor  # [1, N]
    position_ids: torch.Tensor  # [1, N], 0 at each row's first token
    completion_mask: torch.Tensor  # [1, N]
    row_ids: torch.Tensor  # [1, N], the row each token came from
    rows: int

    def model_kwargs(self, model_kwargs: dict) -> dict:
        """The padded call's inputs with the packed sequence in place of input_ids and attention_mask.

        `use_cache=False`: with a cache, transformers does not look for packed rows.
        """
        kwargs = {key: value for key, value in model_kwargs.items() if key not in ("input_ids", "attention_mask")}
        return {**kwargs, "input_ids": self.input_ids, "position_ids": self.position_ids, "use_cache": False}


def pack_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_mask: torch.Tensor) -> PackedRows:
    """The real tokens of a padded batch (either padding side) as one packed sequence."""
    real = attention_mask.bool()
    positions = attention_mask.long().cumsum(-1) - 1
    row_ids = torch.arange(input_ids.shape[0], device=input_ids.device)[:, None].expand_as(input_ids)
    positions = positions[real]
    # a row's first token is not predicted (as in the padded batch), least of all from the row before it
    completion_mask = completion_mask[real] * (positions > 0)
    return PackedRows(input_ids=input_ids[real][None], position_ids=positions[None],
                      completion_mask=completion_mask[None], row_ids=row_ids[real][None],
                      rows=input_ids.shape[0])


def attention_implementation(model) -> str | None:
    config = getattr(without_distributed_wrappers(model), "config", None)
    return getattr(config, "_attn_implementation", None)


def packed_mask_fits(tokens: int, implementation: str | None) -> bool:
    """Whether a packed sequence of `tokens` is worth it: always with flash-attention (no mask), else while
    its N x N block mask stays under MAX_PACKED_MASK_BYTES."""
    return implementation in FLASH_ATTENTION or tokens * tokens <= MAX_PACKED_MASK_BYTES


def pack_if_possible(model_kwargs: dict, completion_mask: torch.Tensor, implementation: str | None) -> PackedRows | None:
    """The packed form of a padded call, or None where the batch stays padded (other inputs, too big a mask)."""
    attention_mask = model_kwargs.get("attention_mask")
    if attention_mask is None or attention_mask.dim() != 2 or not set(model_kwargs) <= PACKABLE_INPUTS:
        return None
    if not packed_mask_fits(int(attention_mask.sum()), implementation):
        return None
    return pack_rows(model_kwargs["input_ids"], attention_mask, completion_mask)


def model_keeps_packed_rows_apart(model) -> bool:
    """Two tiny rows through `model`, padded and packed: True when the packed call gives the padded logits.

    Dropout is switched off for the check (eval mode) and the mode restored afterwards.
    """
    inner = without_distributed_wrappers(model)
    embeddings = inner.get_input_embeddings() if hasattr(inner, "get_input_embeddings") else None
    if embeddings is None or not hasattr(embeddings, "weight"):
        return False
    device = embeddings.weight.device
    vocab = max(int(getattr(getattr(inner, "config", None), "vocab_size", 0) or 0), 8)
    input_ids = torch.tensor([[1, 5, 7, 3], [2, 6, 4, 0]], device=device) % vocab
    attention_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], device=device)
    packed = pack_rows(input_ids, attention_mask, attention_mask)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            padded = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
            together = model(**packed.model_kwargs({})).logits
    except (TypeError, ValueError, RuntimeError, ImportError):  # a forward that cannot take packed rows
        return False
    finally:
        model.train(was_training)
    tolerance = 1e-3 if padded.dtype == torch.float32 else 3e-2  # bf16 / fp16 kernels differ in rounding
    return torch.allclose(together[0].float(), padded[attention_mask.bool()].float(), atol=tolerance, rtol=tolerance)
