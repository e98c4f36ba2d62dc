"""Completion log-probabilities from the last hidden states, a chunk of tokens at a time.

For a sequence with tokens y_1..y_T and completion positions C (the tokens after the prompt),

    logp(y_C | x) = sum over t in C of  log softmax(h_{t-1} W^T + b)[y_t]

where h_{t-1} is the model body's last hidden state (after its final norm) at the position
before token t and W, b are the output layer's weight and bias. The plain path computes
`[batch, sequence, vocabulary]` logits for every position, prompt and padding included,
then a log-softmax over all of them. This path runs inside the model's own call of its output
layer (so ZeRO-3, FSDP2 and offload hooks give it the whole weight, as they give it to that call),
keeps only the hidden states at completion positions, and applies the output layer to
`chunk_tokens` of them at a time: at most `chunk_tokens x vocabulary` logits exist at once,
forward or backward.

The gradient is exact: with p = softmax(logits) and g the incoming gradient of a token's
log-probability, d logp / d logits = g (onehot(y) - p), so

    d/dh = g (onehot(y) - p) W,   d/dW = sum_t g_t (onehot(y_t) - p_t)^T h_t,   d/db = sum_t g_t (onehot(y_t) - p_t)

computed chunk by chunk in `backward` from recomputed logits (nothing of vocabulary width
is kept between forward and backward). `W` gets a gradient only when it is trained (full
fine-tuning, tied or untied); under LoRA only the hidden states do, and then d/dh per unit g,

    W[y] - p W   (a [tokens, hidden] tensor, in place of the saved hidden states)

is computed in the forward from the chunk's logits already there, and the backward scales it
by g: two products with W a token (logits, p W) instead of three (logits, and in the
backward the logits again and g (onehot(y) - p) W). On the CPU bench's default shape
(vocabulary 151,936, hidden 256) that took a LoRA step's backward from 2.65 to 0.24 s and the
step from 4.46 to 2.59 s.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from kto_plugin.training.loss import sft_token_losses

# fp32 logits held at once. On a CPU: 110 tokens of a 152k vocabulary; 256 MiB cost 0.5 GB more peak RSS and no speed.
CPU_CHUNK_BYTES = 64 * 1024**2
# On a GPU: 1,766 tokens of a 152k vocabulary. On an H200 (bench/gpu_output_layer.py, Qwen2.5-0.5B shape, 16x2048
# tokens) a step took 0.92 s with 64 MiB chunks, 0.80 s with 256 MiB, 0.78 s with 1 GiB and 0.77 s with 4 GiB; the
# peak grew from 45.1 to 47.1 and 56.1 GiB (full logits: 62.6 GiB).
GPU_CHUNK_BYTES = 1024**3


def chunk_tokens_for(vocab_size: int, device: torch.device | None = None, chunk_bytes: int | None = None) -> int:
    """Tokens per chunk: `chunk_bytes` of fp32 logits, by default the budget of `device`'s kind."""
    if chunk_bytes is None:
        chunk_bytes = CPU_CHUNK_BYTES if device is None or device.type == "cpu" else GPU_CHUNK_BYTES
    return max(1, chunk_bytes // (4 * vocab_size))


def _chunk_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    # In the weight's dtype, as the output layer's own forward runs under autocast: an fp32 final norm
    # (Axolotl's `fp32_norms`) before a bf16 head, in forward and in backward alike.
    logits = hidden.to(weight.dtype) @ weight.t()
    if bias is not None:
        logits = logits + bias
    return logits.float()


class _TokenLogps(torch.autograd.Function):
    """log softmax(h W^T + b)[y] for each row of h, in chunks; see the module docstring."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_tokens, hidden_gradient_now):
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        direction = torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device) if hidden_gradient_now else None
        for start in range(0, hidden.shape[0], chunk_tokens):
            stop = start + chunk_tokens
            logits = _chunk_logits(hidden[start:stop], weight, bias)
            logsumexp = torch.logsumexp(logits, dim=-1)
            out[start:stop] = logits.gather(1, targets[start:stop, None])[:, 0] - logsumexp
            if hidden_gradient_now:  # W[y] - p W: d logp / dh without the logits again in the backward
                probabilities = torch.exp(logits.sub_(logsumexp[:, None]))
                expected = probabilities.to(weight.dtype) @ weight
                direction[start:stop] = (weight[targets[start:stop]].float() - expected.float()).to(hidden.dtype)
        ctx.hidden_gradient_now = hidden_gradient_now
        if hidden_gradient_now:
            ctx.save_for_backward(direction)
        else:
            ctx.save_for_backward(hidden, weight, bias, targets)
        ctx.chunk_tokens = chunk_tokens
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.hidden_gradient_now:
            (direction,) = ctx.saved_tensors
            return (grad_out[:, None] * direction.float()).to(direction.dtype), None, None, None, None, None
        hidden, weight, bias, targets = ctx.saved_tensors
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_hidden = torch.zeros_like(hidden) if need_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight else None
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if need_bias else None
        for start in range(0, hidden.shape[0], ctx.chunk_tokens):
            stop = start + ctx.chunk_tokens
            chunk_hidden = hidden[start:stop]
            grad_logits = -torch.softmax(_chunk_logits(chunk_hidden, weight, bias), dim=-1)
            rows = torch.arange(grad_logits.shape[0], device=grad_logits.device)
            grad_logits[rows, targets[start:stop]] += 1
            grad_logits *= grad_out[start:stop, None]
            if need_hidden:
                grad_hidden[start:stop] = (grad_logits.to(weight.dtype) @ weight).to(hidden.dtype)
            if need_weight:
                grad_weight += grad_logits.t() @ chunk_hidden.float()
            if need_bias:
                grad_bias += grad_logits.sum(0)
        return (grad_hidden,
                grad_weight.to(weight.dtype) if need_weight else None,
                grad_bias.to(bias.dtype) if need_bias else None,
                None, None, None)


def completion_targets(completion_mask: torch.Tensor, row_ids: torch.Tensor | None = None):
    """(which positions t-1 predict a completion token t, the row each such token's log-prob is summed into).

    Position t-1 predicts token t, so the targets are `[:, 1:]` where the completion mask is set. A padded
    batch sums into its own rows; a packed one (`training/padding_free.py`) into `row_ids`.
    """
    selected = completion_mask[:, 1:].bool()
    if row_ids is None:
        row_ids = torch.arange(completion_mask.shape[0], device=completion_mask.device)[:, None].expand_as(completion_mask)
    return selected, row_ids[:, 1:][selected]


def completion_logps_from_hidden(hidden_states: torch.Tensor, output_layer: torch.nn.Module,
                                 input_ids: torch.Tensor, completion_mask: torch.Tensor,
                                 chunk_tokens: int | None = None, row_ids: torch.Tensor | None = None,
                                 rows: int | None = None, sft_gce_q: float | None = None) -> torch.Tensor:
    """Sum over each sequence's completion tokens of log p(token | prefix), from the body's last hidden states.

    `row_ids` and `rows`: a packed sequence's row of each token and the number of rows (else one per batch row).
    With `sft_gce_q` (not None) each row's sum of the SFT term's token losses too (`loss.sft_token_losses`):
    `[rows, 2]`, the log-prob sums in column 0.
    """
    weight, bias = output_layer.weight, getattr(output_layer, "bias", None)
    chunk_tokens = chunk_tokens or chunk_tokens_for(weight.shape[0], weight.device)
    selected, target_rows = completion_targets(completion_mask, row_ids)
    hidden = hidden_states[:, :-1][selected]
    # Only the hidden states get a gradient (LoRA, a frozen head): it is computed in the forward, whose logits
    # are at hand, so the backward recomputes none (2 products with W a token instead of 3)
    hidden_gradient_now = (torch.is_grad_enabled() and hidden.requires_grad and not weight.requires_grad
                           and (bias is None or not bias.requires_grad))
    token_logps = _TokenLogps.apply(hidden, weight, bias, input_ids[:, 1:][selected], chunk_tokens,
                                    hidden_gradient_now)
    rows = input_ids.shape[0] if rows is None else rows
    return row_sums(token_logps, target_rows, rows, sft_gce_q)


def row_sums(token_logps: torch.Tensor, target_rows: torch.Tensor, rows: int, sft_gce_q: float | None = None):
    """Each row's sum of its tokens' log-probs, and with `sft_gce_q` (not None) of their SFT token losses: `[rows, 2]`."""
    values = token_logps if sft_gce_q is None else torch.stack([token_logps, sft_token_losses(token_logps, sft_gce_q)], -1)
    return torch.zeros((rows, *values.shape[1:]), dtype=values.dtype, device=values.device).index_add(0, target_rows, values)


def without_distributed_wrappers(model):
    """The model inside DDP / DeepSpeed engine wrappers (a PEFT model stays as it is)."""
    inner = model
    while hasattr(inner, "module") and isinstance(inner.module, torch.nn.Module):
        inner = inner.module
    return inner


# Config keys of models that change the logits after the output layer, each with the values that change nothing
# (Gemma 2-4's soft cap; Cohere's scale, Granite's divisor, Falcon-H1's multiplier): log-probs from the output layer
# alone would be wrong for them.
LOGIT_TRANSFORM_KEYS = {"final_logit_softcapping": (None,), "logit_scale": (None, 1), "logits_scaling": (None, 1),
                        "lm_head_multiplier": (None, 1)}


def logit_transform_key(model) -> str | None:
    """The config key by which `model` changes its logits after the output layer, or None."""
    config = getattr(without_distributed_wrappers(model), "config", None)
    configs = [config, config.get_text_config()] if hasattr(config, "get_text_config") else [config]
    for key, identities in LOGIT_TRANSFORM_KEYS.items():
        for each in configs:
            if getattr(each, key, None) not in identities:
                return key
    return None


def chunkable_output_layer(model):
    """The output layer of a causal LM under PEFT / DDP / DeepSpeed / FSDP2 wrappers, or None where this path cannot run.

    It cannot run when the output layer is not a plain `nn.Linear` (a LoRA or another wrapper on
    `lm_head`) or when the model changes the logits after it (`LOGIT_TRANSFORM_KEYS`). A head
    partitioned by ZeRO-3, sharded by FSDP2 or offloaded by accelerate is fine: the path runs
    inside the head's own forward (`chunked_completion_logps`), where each of them gathers it.
    """
    inner = without_distributed_wrappers(model)
    if hasattr(inner, "get_base_model"):  # PEFT
        inner = inner.get_base_model()
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear) or type(head) is not torch.nn.Linear or logit_transform_key(inner):
        return None
    return head


@contextmanager
def _output_layer_forward(head: torch.nn.Module, forward):
    """Within the block, calling `head` runs `forward(hidden)` in place of its own forward, inside its hooks.

    ZeRO-3 and FSDP2 gather the weight in hooks around the call (and again before its backward),
    accelerate's offload in a wrapper around `_old_forward`; all of them stay in place.
    """
    name = "_old_forward" if hasattr(head, "_hf_hook") and hasattr(head, "_old_forward") else "forward"
    own = head.__dict__.get(name)
    setattr(head, name, forward)
    try:
        yield
    finally:
        if own is None:
            delattr(head, name)
        else:
            setattr(head, name, own)


def chunked_completion_logps(model, model_kwargs: dict, input_ids: torch.Tensor, completion_mask: torch.Tensor,
                             head: torch.nn.Module, chunk_tokens: int | None = None,
                             row_ids: torch.Tensor | None = None, rows: int | None = None,
                             sft_gce_q: float | None = None):
    """(per-sequence completion log-probs, the model's outputs with `logits` None): the output layer on completion
    tokens only.

    The model is called through its wrappers as usual, and its own call of the output layer, on the
    last hidden states of every position, computes the completion log-probs in place of the logits.
    So the head's weight is read where the model's own forward reads it: gathered by ZeRO-3 and FSDP2
    (unsharded for the call, resharded after, and gathered again before the backward, because the
    log-probs are the tensor the call returns), loaded by accelerate's offload hooks; and a
    transform of the hidden states before the head (Inkling's divisor) is included.

    Checked on every call: the model must return the head's result unchanged (up to a cast to its
    output dtype, as FSDP2's mixed precision does; the fp32 values are kept), else its logits are
    transformed after the head and these would not be its log-probs: an error names the key to set.
    """
    computed = {}

    def forward(hidden):
        if hidden.shape[:-1] != input_ids.shape:
            raise RuntimeError(f"kto_chunked_logps: the output layer was called on hidden states of shape "
                               f"{tuple(hidden.shape)} for input ids of shape {tuple(input_ids.shape)}; this model "
                               "does not apply it once to every position. Set `kto_chunked_logps: false`.")
        computed["logps"] = completion_logps_from_hidden(hidden, head, input_ids, completion_mask, chunk_tokens,
                                                         row_ids=row_ids, rows=rows, sft_gce_q=sft_gce_q)
        return computed["logps"]

    with _output_layer_forward(head, forward):
        outputs = model(**model_kwargs)
    returned, logps = outputs.logits, computed.get("logps")
    if logps is None or returned.shape != logps.shape or not torch.allclose(
            returned, logps.to(returned.dtype), rtol=0, atol=0, equal_nan=True):
        raise RuntimeError("kto_chunked_logps: this model changes the output layer's logits before returning them "
                           "(a soft cap or a scale), so log-probs from the output layer alone would be wrong. Set "
                           "`kto_chunked_logps: false`.")
    if returned.dtype != logps.dtype:  # cast by a wrapper: its values are lower precision; its graph holds the hooks
        returned = logps.detach() + (returned.float() - returned.float().detach())
    outputs["logits"] = None
    return returned, outputs
