"""Seconds per step and peak memory of the plugin's KTO beside Axolotl's built-in KTO and SFT.

    python -m bench.speed                      # the default shape, 2 epochs of 64 rows (about 25 minutes on 2 cores)
    python -m bench.speed --epochs 0 --rows 256 --steps 12     # 12 steps each, the median after 2 warm-up steps
    python -m bench.speed --hidden 1024 --layers 8 --max-tokens 1024 --rows 16 --only kto-builtin,kto-plugin,sft
    python -m bench.speed --gpu --no-profile --rows 512      # on a GPU: bf16, flash-attention (or sdpa), peak GPU memory

All runs share one generated model and one file of rows and run one after the other in this
invocation, so their ratios compare like with like. Results go to a JSON file and a table.
By default each run trains 2 epochs and s/step is the second epoch's wall time over its
steps: every row once, no warm-up, batches of every length (with `kto_group_by_length` the
steps of one epoch differ in length, so a median of a few steps would depend on which
batches they were).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import click

from bench.flops import StepShape, body_parameters, dense_matmul_flops
from bench.runs import Layout, RunResult, run, run_specs
from bench.step_profile import PARTS, mean_parts
from bench.workload import ModelShape, build_model, write_rows

GIB = 1024**3


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name()


def stack_versions() -> dict[str, str]:
    """The versions of what the runs ran on (a GPU machine may have other ones than the project's pins)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("torch", "axolotl", "trl", "transformers", "peft", "accelerate", "datasets"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


def seconds_per_step(result: RunResult, warmup: int, steps_per_epoch: int | None) -> float:
    """The last epoch's wall time over its steps when a run trained whole epochs (every row, no warm-up in it),
    else the median of the steps after `warmup`."""
    ends = result.epoch_end_seconds
    if steps_per_epoch and len(ends) >= 2:
        return (ends[-1] - ends[-2]) / steps_per_epoch
    return result.median_step(warmup)


def print_table(results: list[RunResult], warmup: int, tokens_per_step: float, title: str,
                steps_per_epoch: int | None = None, gpu: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    by_kind = {result.kind: result for result in reversed(results) if result.returncode == 0}
    builtin, sft = by_kind.get("kto-builtin"), by_kind.get("sft")

    def per_step(result):
        return seconds_per_step(result, warmup, steps_per_epoch)

    # on a GPU the memory that matters is the GPU's (torch's peak allocation); on a CPU the process's peak RSS
    memory_name, memory_of = ("GPU", lambda r: r.peak_gpu_bytes) if gpu else ("RSS", lambda r: r.peak_rss_bytes)
    table = Table(title=title)
    columns = ("run", "s/step", "tokens/s", f"peak {memory_name} GiB", "time vs built-in", "time vs SFT",
               f"{memory_name} vs built-in", f"{memory_name} vs SFT", "to 1st step s", "wall s")
    for column in columns:
        table.add_column(column, justify="left" if column == "run" else "right")
    for result in results:
        if result.returncode != 0:
            table.add_row(result.name, "failed", *[""] * (len(columns) - 2))
            continue
        step = per_step(result)
        table.add_row(
            result.name, f"{step:.3f}" if gpu else f"{step:.2f}", f"{tokens_per_step / step:,.0f}",
            f"{memory_of(result) / GIB:.2f}",
            ratio(step, builtin and per_step(builtin)), ratio(step, sft and per_step(sft)),
            ratio(memory_of(result), builtin and memory_of(builtin)),
            ratio(memory_of(result), sft and memory_of(sft)),
            f"{result.seconds_to_first_step:.0f}", f"{result.wall_seconds:.0f}",
        )
    Console(width=200).print(table)
    how = ("s/step: the last epoch's wall time over its steps (every row once, no warm-up)" if steps_per_epoch
           else f"s/step: the median of the steps after the first {warmup}")
    Console(width=200).print(how)
    Console(width=200).print("to 1st step: process start to the first training step (loading, data preparation, "
                             "and for the plugin the reference pass); wall: the whole process")


def epoch_splits(result: RunResult, steps_per_epoch: int) -> list[dict[str, float]]:
    """For each whole epoch: the mean seconds per step of each part (`bench.step_profile`), and `between steps`
    (the epoch's wall time over its steps less the mean step: fetching batches, logging, the epoch's end)."""
    splits = []
    starts = [result.seconds_to_first_step, *result.epoch_end_seconds]
    for epoch, end in enumerate(result.epoch_end_seconds):
        steps = result.step_parts[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        if not steps:
            break
        parts = mean_parts(steps)
        per_step = (end - starts[epoch]) / len(steps)
        parts["between steps"] = max(0.0, per_step - sum(parts.values()))
        splits.append({"epoch": epoch + 1, "seconds_per_step": per_step, "parts": parts})
    return splits


def print_step_splits(results: list[RunResult], steps_per_epoch: int, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    columns = (*PARTS, "between steps")
    table = Table(title=f"Where a step's time goes, mean seconds per step of each whole epoch; {title}")
    for column in ("run", "epoch", "s/step", *columns):
        table.add_column(column, justify="left" if column == "run" else "right")
    for result in results:
        if result.returncode != 0:
            continue
        for split in epoch_splits(result, steps_per_epoch):
            table.add_row(result.name, str(split["epoch"]), f"{split['seconds_per_step']:.2f}",
                          *(f"{split['parts'][column]:.2f}" for column in columns))
    Console(width=220).print(table)
    Console(width=220).print(
        "policy / KL-pair / reference forward: the model body (embeddings and decoder layers) with gradients, "
        "without gradients and adapter on, and with the reference's weights; output layer: every lm_head call "
        "(the plugin's chunked log-probs run inside it); loss and log-probs: the rest of compute_loss; between "
        "steps: fetching batches, logging")


@click.command()
@click.option("--hidden", default=256, show_default=True)
@click.option("--layers", default=4, show_default=True)
@click.option("--vocab", default=151_936, show_default=True)
@click.option("--intermediate", default=None, type=int, help="MLP width (default 4 x hidden).")
@click.option("--rows", default=64, show_default=True)
@click.option("--min-tokens", default=143, show_default=True)
@click.option("--max-tokens", default=516, show_default=True)
@click.option("--micro-batch", default=4, show_default=True)
@click.option("--steps", default=12, show_default=True, help="Optimizer steps per run, warm-up included.")
@click.option("--warmup", default=2, show_default=True, help="Steps left out of the median.")
@click.option("--epochs", default=2, show_default=True, type=int,
              help="Train whole epochs instead of --steps; s/step is then the last epoch's time over its steps "
                   "(use 2 or more), and the wall time at each epoch's end is reported. 0: --steps steps.")
@click.option("--only", default=None,
              help="Comma-separated run kinds (kto-builtin,kto-plugin,kto-plugin-variant,sft,sft-grouped) or single "
                   "variants by name (kto-plugin-KEY-VALUE, e.g. kto-plugin-kto_padding_free-true).")
@click.option("--processes", default=1, show_default=True,
              help="CPU ranks per run (torchrun, gloo); peak RSS is then the largest rank's.")
@click.option("--deepspeed", default=None, help="A DeepSpeed config for every run, e.g. kto_plugin:zero3.")
@click.option("--full", is_flag=True, help="Full fine-tuning (every weight trained) instead of LoRA r8.")
@click.option("--gpu", is_flag=True,
              help="Train on the GPU in bf16 (flash-attention where `flash_attn` is installed, else sdpa); the table "
                   "shows peak GPU memory (torch's peak allocation) instead of peak RSS.")
@click.option("--profile/--no-profile", default=True, show_default=True,
              help="Split each step's time into its parts (on a GPU this synchronises the device at each part's "
                   "boundary, which costs time of its own: time a GPU run with --no-profile).")
@click.option("--work", type=click.Path(path_type=Path), default=Path("outputs/bench"), show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Results JSON (default: WORK/speed.json).")
def main(hidden, layers, vocab, intermediate, rows, min_tokens, max_tokens, micro_batch, steps, warmup, epochs, only,
         processes, deepspeed, full, gpu, profile, work, output):
    from kto_plugin.embedded.tiny_model import ensure_tiny_model

    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    shape = ModelShape(hidden_size=hidden, num_layers=layers, vocab_size=vocab,
                       intermediate_size=intermediate or 4 * hidden)
    tokenizer_dir = ensure_tiny_model()
    model_dir = work / "model"
    parameters = build_model(shape, tokenizer_dir, model_dir)
    data = work / "rows.jsonl"
    lengths = write_rows(tokenizer_dir, data, rows, min_tokens, max_tokens)
    click.echo(f"model: {shape.describe()}, {parameters:,} parameters; rows: {lengths}")
    machine_flops = dense_matmul_flops(gpu=gpu)
    click.echo(f"this machine: {machine_flops / 1e9:.1f} GFLOP/s {'bf16 on its GPU' if gpu else 'fp32'} dense matmul")

    layout = Layout(processes=processes, deepspeed=deepspeed, full=full, gpu=gpu)
    specs = run_specs(model_dir, data, work, steps, micro_batch, sequence_len=max_tokens + 64, epochs=epochs,
                      layout=layout)
    if only:
        wanted = set(only.split(","))
        specs = [spec for spec in specs if spec.kind in wanted or Path(spec.config["output_dir"]).name in wanted]
    results = []
    for spec in specs:
        started = time.perf_counter()
        result = run(spec, work, layout, profile=profile)
        click.echo(f"{spec.name}: {'ok' if result.returncode == 0 else 'FAILED'} in {time.perf_counter() - started:.0f} s")
        if result.returncode != 0:
            click.echo(result.log_tail)
        results.append(result)

    step_shape = StepShape(
        rows=micro_batch * processes, tokens_per_row=lengths["tokens"] / rows, completion_per_row=lengths["completion_tokens"] / rows,
        hidden=hidden, layers=layers, vocab=vocab, body_parameters=body_parameters(parameters, hidden, vocab, True),
    )
    tokens_per_step = micro_batch * processes * lengths["tokens"] / rows  # every rank's micro-batch
    steps_per_epoch = -(-rows // (micro_batch * processes)) if epochs else None
    precision = "" if gpu else ", fp32"
    print_table(results, warmup, tokens_per_step, f"{shape.describe()}; micro-batch {micro_batch}, {layout.describe()}{precision}",
                steps_per_epoch, gpu=gpu)
    if epochs and profile:
        print_step_splits(results, steps_per_epoch, layout.describe())
    plugin = next((r for r in results if r.name == "plugin KTO (defaults)" and r.returncode == 0), None)
    achieved = None
    if plugin:
        # s/step is the last epoch's: the reference is cached by then, and the default z0 needs no KL pairs
        achieved = step_shape.kto_step_unavoidable() / seconds_per_step(plugin, warmup, steps_per_epoch)
        click.echo(f"plugin: {achieved / 1e9:.1f} GFLOP/s of the FLOPs its step cannot avoid (policy forward and "
                   f"backward; {step_shape.kto_step_unavoidable() / 1e9:.0f} GFLOP a step) = "
                   f"{achieved / machine_flops:.0%} of this machine's matmul rate")
    if epochs:
        for result in results:
            if result.returncode == 0:
                click.echo(f"{result.name}: " + ", ".join(
                    f"end of epoch {epoch} at {end:.0f} s" for epoch, end in enumerate(result.epoch_end_seconds, start=1))
                    + " (wall clock from process start: loading and, for the plugin, the reference pass included)")
    report = {
        "date": time.strftime("%Y-%m-%d"), "machine": {"platform": platform.platform(), "processor": platform.processor(),
                                                       "cpus": __import__("os").cpu_count(),
                                                       "gpu": gpu_name() if gpu else None,
                                                       "matmul_flops": machine_flops},
        "stack": stack_versions(),
        "model": {**asdict(shape), "parameters": parameters}, "rows": lengths, "micro_batch": micro_batch,
        "steps": steps, "epochs": epochs, "warmup": warmup, "layout": asdict(layout), "tokens_per_step": tokens_per_step,
        "plugin_unavoidable_flops_per_second": achieved,
        "runs": [{**asdict(result), "median_step_seconds": result.median_step(warmup),
                  "seconds_per_step": seconds_per_step(result, warmup, steps_per_epoch),
                  "epoch_splits": epoch_splits(result, steps_per_epoch) if epochs and result.returncode == 0 else []}
                 for result in results],
    }
    output = output or work / "speed.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    click.echo(f"results: {output}")


if __name__ == "__main__":
    main()
