"""Commands for multi-GPU runs: the shipped DeepSpeed configs and the memory table."""

from __future__ import annotations

from pathlib import Path

import click

from kto_plugin.cli.shipped_files import list_show_or_copy


@click.command("deepspeed")
@click.argument("name", required=False)
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Copy the config to this file instead of printing its path.")
def deepspeed(name: str | None, output: Path | None):
    """List the shipped DeepSpeed configs, print one's installed path, or copy it out."""
    from kto_plugin.distributed.zero_configs import deepspeed_config_names, deepspeed_config_path

    list_show_or_copy(name, output, deepspeed_config_names, deepspeed_config_path)


@click.command("memory")
@click.argument("model")
@click.option("--gpus", default="2,4,8", show_default=True, help="GPU counts to show, comma-separated.")
@click.option("--lora-r", type=int, default=16, show_default=True, help="LoRA rank (all linear layers but the head).")
def memory(model: str, gpus: str, lora_r: int):
    """GiB per GPU of a KTO run's model states (weights, gradients, AdamW, reference) by strategy.

    MODEL is a model folder, its config.json, or a hub id (read with AutoConfig; no weights are loaded).
    """
    from transformers import AutoConfig

    from kto_plugin.distributed.memory_estimate import count_parameters, memory_table

    try:
        gpu_counts = [int(count) for count in gpus.split(",")]
    except ValueError:
        raise click.BadParameter(f"{gpus!r} is not a comma-separated list of GPU counts", param_hint="--gpus") from None
    config_source = str(Path(model).parent) if model.endswith(".json") else model
    try:
        model_config = AutoConfig.from_pretrained(config_source)
    except OSError as err:
        raise click.BadParameter(f"cannot read a model config from {model!r}: {err}", param_hint="MODEL") from None
    size = count_parameters(model_config, lora_r=lora_r)
    click.echo(f"{model}: {size.parameters:,} parameters; LoRA r={lora_r}: {size.lora_parameters:,} trainable")
    for title, lora in ((f"LoRA r={lora_r}", True), ("full fine-tune", False)):
        click.echo(f"\n{title}: GiB per GPU for the model states (activations and logits come on top)")
        click.echo("\n".join(memory_table(size, gpu_counts, lora=lora)))
