"""Memory per GPU for the model states of a KTO run, by DeepSpeed or FSDP2 strategy (ZeRO paper, sec. 3).

Counted, for P parameters of the model and T trainable ones, N GPUs, bf16 weights and
AdamW (the ZeRO paper's mixed-precision accounting, K = 12 bytes of optimizer state):

    weights 2 bytes/param, gradients 2 bytes/trainable param,
    optimizer 12 bytes/trainable param (fp32 master copy, first and second moments)

    strategy        weights     gradients   optimizer
    DDP (no ZeRO)   2P          2T          12T
    ZeRO-1          2P          2T          12T/N
    ZeRO-2          2P          2T/N        12T/N
    ZeRO-3          2P/N        2T/N        12T/N
    FSDP2           2P/N        2T/N        12T/N     (full sharding: what ZeRO-3 shards)
    ZeRO-3 offload  (CPU)       (CPU)       (CPU)

No frozen reference copy is counted. With LoRA the reference is the base model with the
adapter switched off. A full fine-tune with `kto_ref_cache: auto` computes every reference
log-prob it needs before step 1 on the not yet trained policy (under ZeRO-3 and FSDP2 once
the trainer has wrapped it) and loads no copy (`training/reference_model.py`); with
`kto_ref_cache: off` TRL's copy adds 2P, sharded like the policy under ZeRO-3 and FSDP2.
Activations and the logits (`micro_batch_size x sequence_len x vocabulary` floats) come on
top and do not shrink with N.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
STRATEGIES = ("DDP (no ZeRO)", "ZeRO-1", "ZeRO-2", "ZeRO-3", "FSDP2", "ZeRO-3 offload")
WEIGHT_BYTES, GRADIENT_BYTES, OPTIMIZER_BYTES = 2, 2, 12


@dataclass(frozen=True)
class ModelSize:
    parameters: int
    lora_parameters: int  # trainable with LoRA on every linear layer but the head, at count_parameters' rank


def model_on_meta(model_config, trust_remote_code: bool = False):
    """The causal LM of a transformers config on the meta device: every shape, no weights read or allocated."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(model_config, trust_remote_code=trust_remote_code)
    model.tie_weights()  # not done on the meta device; tied input/output embeddings are one tensor
    return model


def count_parameters(model_config, lora_r: int = 16) -> ModelSize:
    """Exact counts from a transformers config, built on the meta device (no weights loaded)."""
    import torch

    model = model_on_meta(model_config)
    output_layer = model.get_output_embeddings()
    lora = sum(
        lora_r * (module.in_features + module.out_features)
        for module in model.modules()
        if isinstance(module, torch.nn.Linear) and module is not output_layer
    )
    parameters = sum(parameter.numel() for parameter in model.parameters())
    return ModelSize(parameters=parameters, lora_parameters=lora)


def model_state_bytes(size: ModelSize, strategy: str, gpus: int, lora: bool) -> tuple[float, float]:
    """(bytes per GPU, bytes of CPU memory per node) for the model states of one strategy."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    params = size.parameters
    trainable = size.lora_parameters if lora else params
    weights = WEIGHT_BYTES * (params + (size.lora_parameters if lora else 0))
    gradients = GRADIENT_BYTES * trainable
    optimizer = OPTIMIZER_BYTES * trainable
    if strategy == "DDP (no ZeRO)":
        return weights + gradients + optimizer, 0.0
    if strategy == "ZeRO-1":
        return weights + gradients + optimizer / gpus, 0.0
    if strategy == "ZeRO-2":
        return weights + (gradients + optimizer) / gpus, 0.0
    if strategy in ("ZeRO-3", "FSDP2"):
        return (weights + gradients + optimizer) / gpus, 0.0
    return 0.0, weights + gradients + optimizer


def format_gib(num_bytes: float, decimals: int) -> str:
    """GiB with `decimals` places; two significant digits when that would round to 0."""
    gib = num_bytes / GIB
    if gib == 0 or round(gib, decimals) != 0:
        return f"{gib:.{decimals}f}"
    return f"{gib:.2g}"


def memory_table(size: ModelSize, gpu_counts: list[int], lora: bool) -> list[str]:
    """Markdown-style rows: GiB per GPU for each strategy and GPU count."""
    header = "| strategy | " + " | ".join(f"{n} GPU{'s' if n > 1 else ''}" for n in gpu_counts) + " |"
    rows = [header, "|---" * (len(gpu_counts) + 1) + "|"]
    for strategy in STRATEGIES:
        cells = []
        for gpus in gpu_counts:
            per_gpu, cpu = model_state_bytes(size, strategy, gpus, lora)
            cells.append(f"CPU {format_gib(cpu, decimals=0)}" if cpu else format_gib(per_gpu, decimals=1))
        rows.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return rows
