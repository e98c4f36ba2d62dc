"""The memory-per-GPU tables: counts from real models, the ZeRO accounting, the tables in yaml_examples/."""

from __future__ import annotations

import pytest
from helpers import QWEN25_7B, REPO_ROOT, run_axolotl

from kto_plugin.distributed.memory_estimate import (
    GIB,
    ModelSize,
    count_parameters,
    format_gib,
    memory_table,
    model_state_bytes,
)

EXAMPLES = REPO_ROOT / "yaml_examples"

# Qwen/Qwen2.5-7B-Instruct's config.json (the architecture numbers that set the size).
def test_counts_match_the_real_model_and_peft(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    size = count_parameters(AutoConfig.from_pretrained(tiny_model), lora_r=8)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert size.parameters == sum(p.numel() for p in model.parameters())
    # Axolotl's lora_target_linear: every linear layer but the output head
    targets = sorted({name.split(".")[-1] for name, module in model.named_modules()
                      if module.__class__.__name__ == "Linear" and name != "lm_head"})
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=targets))
    assert size.lora_parameters == sum(p.numel() for p in peft_model.parameters() if p.requires_grad)


def test_qwen_7b_count_is_the_published_one():
    from transformers import Qwen2Config

    size = count_parameters(Qwen2Config(**QWEN25_7B), lora_r=64)
    assert size.parameters == 7_615_616_512  # "7.61B" on the model card


def test_zero_accounting():
    size = ModelSize(parameters=10**9, lora_parameters=10**7)
    full = {s: model_state_bytes(size, s, 8, lora=False) for s in ("DDP (no ZeRO)", "ZeRO-2", "ZeRO-3", "FSDP2",
                                                                  "ZeRO-3 offload")}
    assert full["DDP (no ZeRO)"] == (16e9, 0.0)  # 2 + 2 + 12 bytes per parameter; no reference copy (the cache)
    assert full["ZeRO-2"] == (2e9 + 14e9 / 8, 0.0)
    assert full["ZeRO-3"] == full["FSDP2"] == (16e9 / 8, 0.0)  # the cache's pass runs on the wrapped model: no copy
    assert full["ZeRO-3 offload"] == (0.0, 16e9)
    # LoRA: no reference copy (the adapter is switched off), optimizer only for the adapter
    assert model_state_bytes(size, "DDP (no ZeRO)", 8, lora=True) == (2e9 + 16e7, 0.0)
    for strategy in ("ZeRO-1", "ZeRO-2", "ZeRO-3", "FSDP2"):
        assert model_state_bytes(size, strategy, 4, lora=False)[0] > model_state_bytes(size, strategy, 8, lora=False)[0]
    with pytest.raises(ValueError, match="ZeRO-2"):
        model_state_bytes(size, "ZeRO-4", 8, lora=False)


@pytest.mark.parametrize(("name", "lora"), [("qwen2.5-7b-lora-zero2.yaml", True), ("qwen2.5-7b-full-zero3.yaml", False),
                                            ("qwen2.5-7b-full-fsdp2.yaml", False)])
def test_tables_in_the_examples_are_computed(name, lora):
    from transformers import Qwen2Config

    size = count_parameters(Qwen2Config(**QWEN25_7B), lora_r=64)
    expected = [f"# {row}" for row in memory_table(size, [2, 4, 8], lora=lora)]
    lines = (EXAMPLES / name).read_text().splitlines()
    start = lines.index(expected[0])
    assert lines[start:start + len(expected)] == expected
    if lora:  # the notes quote the frozen base's bf16 size
        assert f"frozen bf16 base ({size.parameters * 2 / GIB:.1f} GiB)" in "\n".join(lines)


def test_small_models_are_not_shown_as_zero():
    assert format_gib(40.84 * GIB, decimals=1) == "40.8"
    assert format_gib(0, decimals=1) == "0.0"
    assert format_gib(0.0043 * GIB, decimals=1) == "0.0043"
    assert format_gib(0.3 * GIB, decimals=0) == "0.3"
    # a 1M-parameter full fine-tune: 2 weights + 2 gradients + 12 Adam = 16 bytes each
    rows = memory_table(ModelSize(parameters=1_000_000, lora_parameters=10_000), [2], lora=False)
    assert rows[2] == "| DDP (no ZeRO) | 0.015 |"
    assert rows[-1] == "| ZeRO-3 offload | CPU 0.015 |"


def test_memory_command_reads_a_local_config(axolotl, tiny_model, tmp_path):
    from transformers import AutoConfig

    result = run_axolotl("kto", "memory", str(tiny_model), "--gpus", "2,4", "--lora-r", "8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| ZeRO-3 |" in result.stdout and "| strategy | 2 GPUs | 4 GPUs |" in result.stdout
    assert "| DDP (no ZeRO) | 0.0 | 0.0 |" not in result.stdout  # a tiny model's sizes stay readable
    size = count_parameters(AutoConfig.from_pretrained(tiny_model), lora_r=8)
    assert f"{size.parameters:,} parameters; LoRA r=8: {size.lora_parameters:,} trainable" in result.stdout
    from click.testing import CliRunner

    from kto_plugin.cli import kto

    bad = CliRunner().invoke(kto, ["memory", str(tiny_model), "--gpus", "two"])  # in-process: no second start
    assert bad.exit_code != 0 and "--gpus" in bad.output


def test_the_multi_gpu_page_table_is_the_computed_one():
    from transformers import Qwen2Config

    size = count_parameters(Qwen2Config(**QWEN25_7B), lora_r=64)
    readme = (EXAMPLES.parent / "docs" / "multi-gpu.md").read_text()  # the table moved from the README
    for strategy in ("DDP (no ZeRO)", "ZeRO-2", "ZeRO-3", "FSDP2"):
        lora, full = (model_state_bytes(size, strategy, 8, lora=flag)[0] / GIB for flag in (True, False))
        assert f"| {strategy} | {lora:.1f} | {full:.1f} |" in readme
    lora_cpu, full_cpu = (model_state_bytes(size, "ZeRO-3 offload", 8, lora=flag)[1] / GIB for flag in (True, False))
    assert f"| ZeRO-3 offload | CPU {lora_cpu:.0f} per node | CPU {full_cpu:.0f} per node |" in readme
