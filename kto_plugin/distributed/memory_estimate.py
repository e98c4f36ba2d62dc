"""Memory per GPU for the model states of a KTO run, by DeepSpeed strategy (ZeRO paper, sec. 3).

Counted, for P parameters of the model and T trainable ones, N GPUs, bf16 weights and
AdamW (the ZeRO paper's mixed-precision accounting, K = 12 bytes of optimizer state):

    weights 2 bytes/param, gradients 2 bytes/trainable param,
    optimizer 12 bytes/trainable param (fp32 master copy, first and second moments)

    strategy        weights     gradients   optimizer   KTO reference (full fine-tune)
    DDP (no ZeRO)   2P          2T          12T         0 (the pass runs on the policy)
    ZeRO-1          2P          2T          12T/N       0 (the pass runs on the policy)
    ZeRO-2          2P          2T/N        12T/N       0 (the pass runs on the policy)
    ZeRO-3          2P/N        2T/N        12T/N       2P/N
    ZeRO-3 offload  (CPU)       (CPU)       (CPU)       (CPU)

With LoRA, T is the adapter's size (its own weights add 2T to the weights) and the
reference is the base model with the adapter switched off, so it costs nothing more. A
full fine-tune needs a frozen reference copy (2P) only where the reference cache is off:
with `kto_ref_cache: auto` (every strategy but ZeRO-3) the pass before training runs on the
not yet trained policy and stores every reference log-prob, and no copy is loaded
(`training/reference_model.py`); under ZeRO-3 the cache is off and TRL's copy is sharded
like the policy.
Activations and the logits (`micro_batch_size x sequence_len x vocabulary` floats) come on
top and do not shrink with N.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
STRATEGIES = ("DDP (no ZeRO)", "ZeRO-1", "ZeRO-2", "ZeRO-3", "ZeRO-3 offload")
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
    kept_reference = not lora and strategy in ("ZeRO-3", "ZeRO-3 offload")  # elsewhere the reference cache is on
    reference = WEIGHT_BYTES * params if kept_reference else 0
    weights = WEIGHT_BYTES * (params + (size.lora_parameters if lora else 0))
    gradients = GRADIENT_BYTES * trainable
    optimizer = OPTIMIZER_BYTES * trainable
    if strategy == "DDP (no ZeRO)":
        return weights + gradients + optimizer + reference, 0.0
    if strategy == "ZeRO-1":
        return weights + gradients + optimizer / gpus + reference, 0.0
    if strategy == "ZeRO-2":
        return weights + (gradients + optimizer) / gpus + reference, 0.0
    if strategy == "ZeRO-3":
        return (weights + gradients + optimizer + reference) / gpus, 0.0
    return 0.0, weights + gradients + optimizer + reference


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
