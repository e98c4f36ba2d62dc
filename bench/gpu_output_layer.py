"""The output layer of a KTO step on a GPU: the plugin's chunked path against the built-in KTO's full logits.

Runs where only torch and transformers are installed (a GPU machine with neither Axolotl nor TRL): the
plugin's `training/chunked_logps.py` is loaded from its file, and the built-in KTO's log-prob step is
what TRL's `KTOTrainer.forward` does, `model(...).logits` then `selective_log_softmax`:

- `trl-1.9` (Axolotl 0.19): bf16 logits, a log-softmax one row at a time (TRL 1.9's bf16 branch, restated
  below in four lines);
- `trl-1.14` (Axolotl 0.21): bf16 logits into TRL's fused Triton kernel, loaded from a copy of
  `trl/kernels/logprob_entropy.py` given as `--trl-kernel` (skipped without one or without CUDA).

One KTO micro-batch per step, as the trainer runs it: the policy's completion log-probs with gradients
(forward and backward of the whole model) and the KL pass's log-probs without them; the built-in KTO
also runs the reference model over both (`--reference-forwards 2`; the plugin reads them from its
cache). Random weights in a Qwen2.5-0.5B shape (151,936-token vocabulary): speed and memory do not
depend on what the weights say. Prints one JSON object: tokens/s and peak GPU memory per method and
shape, and how far each method's log-probs and gradients are from an fp32 computation of the same.

    python bench/gpu_output_layer.py --trl-kernel PATH --out results.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent


def load_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chunked = load_file("chunked_logps", ROOT / "kto_plugin" / "training" / "chunked_logps.py")


def trl_1_9_logps(logits, labels):
    """TRL 1.9's `selective_log_softmax` for bf16 logits: a log-softmax one row at a time, then gather."""
    return torch.stack([F.log_softmax(row, dim=-1).gather(-1, row_labels[:, None])[:, 0]
                        for row, row_labels in zip(logits, labels)])


def full_logits_logps(model, input_ids, attention_mask, completion_mask, per_token):
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    token_logps = per_token(logits, input_ids[:, 1:])
    return (token_logps * completion_mask[:, 1:]).sum(-1)


def chunked_logps(model, input_ids, attention_mask, completion_mask, chunk_mib=None):
    head = chunked.chunkable_output_layer(model)
    assert head is not None, "the chunked path stepped aside for this model"
    chunk_tokens = chunk_mib and chunked.chunk_tokens_for(head.weight.shape[0], chunk_bytes=chunk_mib * 2**20)
    logps, _ = chunked.chunked_completion_logps(model, {"input_ids": input_ids, "attention_mask": attention_mask},
                                                input_ids, completion_mask, head, chunk_tokens)
    return logps


def methods(trl_kernel: Path | None, reference_forwards: int, chunk_mibs: list[int | None]):
    """name: (log-probs of a micro-batch, reference forwards per step)."""
    found = {}
    for mib in chunk_mibs:
        size = "" if mib is None else f"-{mib}MiB"
        plugin = lambda m, i, a, c, mib=mib: chunked_logps(m, i, a, c, mib)  # noqa: E731
        found[f"plugin-chunked{size}-cached-reference"] = (plugin, 0)
        found[f"plugin-chunked{size}-reference-every-step"] = (plugin, reference_forwards)
    found |= {
        "trl-1.9-full-logits": (lambda m, i, a, c: full_logits_logps(m, i, a, c, trl_1_9_logps), reference_forwards),
    }
    if trl_kernel is not None and torch.cuda.is_available():
        fused = load_file("trl_logprob_entropy", trl_kernel).selective_log_softmax_and_entropy
        found["trl-1.14-full-logits-fused"] = (lambda m, i, a, c: full_logits_logps(
            m, i, a, c, lambda logits, labels: fused(logits, labels)[0]), reference_forwards)
    return found


def make_model(args, device):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.hidden * 27 // 5,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=2,
                         tie_word_embeddings=True, max_position_embeddings=8192)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(device=device, dtype=torch.bfloat16)
    model.config._attn_implementation = "sdpa"
    model.train()
    return model


def make_batch(rows, length, vocab, device, seed):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, vocab, (rows, length), generator=generator).to(device)
    attention_mask = torch.ones_like(input_ids)
    completion_mask = torch.zeros_like(input_ids)
    completion_mask[:, length // 2:] = 1  # the second half is the completion
    return input_ids, attention_mask, completion_mask


def kto_step(model, logps_of, batch, kl_batch, reference_forwards):
    logps = logps_of(model, *batch)
    with torch.no_grad():
        logps_of(model, *kl_batch)
        for _ in range(reference_forwards):
            logps_of(model, *(batch if _ % 2 == 0 else kl_batch))
    logps.float().mean().backward()


def measure(model, logps_of, batch, kl_batch, reference_forwards, steps, device):
    model.zero_grad(set_to_none=True)
    kto_step(model, logps_of, batch, kl_batch, reference_forwards)  # warm-up (kernels compiled, allocator grown)
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        kto_step(model, logps_of, batch, kl_batch, reference_forwards)
        model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    tokens = batch[0].numel()
    return {"seconds_per_step": round(seconds, 4), "tokens_per_s": round(tokens / seconds), "peak_gib": peak and round(peak, 2)}


def agreement(model, logps_of, batch, exact):
    """How far `logps_of`'s log-probs and output-layer gradient are from an fp32 log-softmax of the same logits."""
    model.zero_grad(set_to_none=True)
    logps = logps_of(model, *batch)
    logps.float().sum().backward()
    grad = model.get_output_embeddings().weight.grad.float()
    exact_logps, exact_grad = exact
    cosine = F.cosine_similarity(grad.flatten(), exact_grad.flatten(), dim=0).item()
    model.zero_grad(set_to_none=True)
    return {"max_abs_logp_diff": round((logps.float() - exact_logps).abs().max().item(), 4),
            "max_rel_logp_diff": round(((logps.float() - exact_logps).abs() / exact_logps.abs()).max().item(), 6),
            "head_grad_cosine": round(cosine, 6)}


def exact_reference(model, batch):
    model.zero_grad(set_to_none=True)
    input_ids, attention_mask, completion_mask = batch
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    token_logps = torch.log_softmax(logits, -1).gather(-1, input_ids[:, 1:, None])[..., 0]
    logps = (token_logps * completion_mask[:, 1:]).sum(-1)
    logps.sum().backward()
    grad = model.get_output_embeddings().weight.grad.float().clone()
    model.zero_grad(set_to_none=True)
    return logps.detach(), grad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trl-kernel", type=Path, help="a copy of TRL 1.14's trl/kernels/logprob_entropy.py")
    parser.add_argument("--shapes", default="8x1024,4x4096", help="micro-batches as ROWSxTOKENS, comma-separated")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--reference-forwards", type=int, default=2, help="the built-in KTO's reference passes")
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--hidden", type=int, default=896)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--heads", type=int, default=14)
    parser.add_argument("--chunk-mib", default="",
                        help="comma-separated fp32 logit budgets of the chunked path in MiB (default: its own)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = make_model(args, device)
    chunk_mibs = [int(mib) for mib in args.chunk_mib.split(",")] if args.chunk_mib else [None]
    found = methods(args.trl_kernel, args.reference_forwards, chunk_mibs)
    import transformers

    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__,
              "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6),
              "dtype": "bfloat16", "attention": "sdpa", "shapes": {}}
    for shape in args.shapes.split(","):
        rows, length = (int(part) for part in shape.split("x"))
        batch = make_batch(rows, length, args.vocab, device, seed=1)
        kl_batch = make_batch(rows, length, args.vocab, device, seed=2)
        exact = exact_reference(model, batch)
        shape_result = {}
        for name, (logps_of, reference_forwards) in found.items():
            try:
                shape_result[name] = {**measure(model, logps_of, batch, kl_batch, reference_forwards, args.steps, device),
                                      **agreement(model, logps_of, batch, exact)}
            except torch.OutOfMemoryError as error:
                shape_result[name] = {"error": f"out of memory: {str(error)[:120]}"}
            if device.type == "cuda":
                torch.cuda.empty_cache()
            print(shape, name, shape_result[name], flush=True)
        result["shapes"][shape] = shape_result
        del exact
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
