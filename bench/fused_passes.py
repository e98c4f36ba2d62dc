"""Is one policy call on completions and KL pairs together cheaper than two calls?

    python -m bench.fused_passes

Per step the policy runs on the completions (with gradient) and on the KL pairs (without:
the KL term is a constant of the step). TRL and the plugin make two calls. One call on the
concatenated batch saves a call's fixed cost, but the KL rows then keep their activations
for the backward, and the backward runs over the whole concatenated batch even though the
KL rows get zero gradient. This times both ways on the bench's default shape (LoRA r 8 on
all linear layers, chunked log-probs), the median of REPEATS steps each, and prints the ratio.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click


def _model(shape, work: Path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from bench.workload import build_model
    from kto_plugin.embedded.tiny_model import ensure_tiny_model

    build_model(shape, ensure_tiny_model(), work)
    model = AutoModelForCausalLM.from_pretrained(work)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=targets, lora_dropout=0.0))


@click.command()
@click.option("--micro-batch", default=4, show_default=True)
@click.option("--tokens", default=320, show_default=True, help="Sequence length of every row.")
@click.option("--completion-tokens", default=160, show_default=True)
@click.option("--repeats", default=5, show_default=True)
def main(micro_batch: int, tokens: int, completion_tokens: int, repeats: int):
    import torch

    from bench.workload import ModelShape
    from kto_plugin.training.chunked_logps import chunked_completion_logps, chunkable_output_layer

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        model = _model(ModelShape(), Path(folder))
    head = chunkable_output_layer(model)
    vocab = model.config.vocab_size

    def batch(rows):
        ids = torch.randint(0, vocab, (rows, tokens))
        mask = torch.zeros(rows, tokens, dtype=torch.long)
        mask[:, -completion_tokens:] = 1
        return ids, torch.ones_like(ids), mask

    ids, attention, completion = batch(micro_batch)
    kl_ids, kl_attention, kl_completion = batch(micro_batch)

    def two_calls():
        with torch.no_grad():
            kl, _ = chunked_completion_logps(model, {"input_ids": kl_ids, "attention_mask": kl_attention},
                                             kl_ids, kl_completion, head)
        logps, _ = chunked_completion_logps(model, {"input_ids": ids, "attention_mask": attention},
                                            ids, completion, head)
        (logps.sum() - kl.sum()).backward()

    def one_call():
        both = torch.cat([ids, kl_ids]), torch.cat([attention, kl_attention]), torch.cat([completion, kl_completion])
        logps, _ = chunked_completion_logps(model, {"input_ids": both[0], "attention_mask": both[1]},
                                            both[0], both[2], head)
        (logps[:micro_batch].sum() - logps[micro_batch:].detach().sum()).backward()

    times = {}
    for name, step in (("two calls (KL without gradient)", two_calls), ("one concatenated call", one_call)):
        step()  # warm-up
        measured = []
        for _ in range(repeats):
            model.zero_grad()
            started = time.perf_counter()
            step()
            measured.append(time.perf_counter() - started)
        times[name] = statistics.median(measured)
        click.echo(f"{name}: {times[name]:.2f} s per step (median of {repeats})")
    two, one = times.values()
    click.echo(f"one call / two calls = {one / two:.2f}x")


if __name__ == "__main__":
    main()
