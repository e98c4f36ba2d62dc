"""The speed bench's layouts: every run of an invocation gets the same processes, DeepSpeed config and adapter."""

from __future__ import annotations

from pathlib import Path

from bench.runs import Layout, run_specs


def specs(layout: Layout):
    return run_specs(Path("/m"), Path("/d.jsonl"), Path("/w"), steps=4, micro_batch=2, sequence_len=128,
                     layout=layout)


def test_one_process_lora_is_the_default_layout():
    for spec in specs(Layout()):
        assert spec.config["adapter"] == "lora" and "deepspeed" not in spec.config, spec.name
        assert "bench.cpu_ranks_plugin.CPURanksPlugin" not in spec.config["plugins"], spec.name
    assert Layout().launcher() == ["--launcher", "python"]
    assert Layout().describe() == "LoRA r8"


def test_zero3_full_fine_tuning_on_two_ranks_reaches_every_run():
    layout = Layout(processes=2, deepspeed="kto_plugin:zero3", full=True)
    runs = specs(layout)
    assert {spec.kind for spec in runs} >= {"kto-builtin", "kto-plugin", "kto-plugin-variant", "sft"}
    for spec in runs:
        # by its installed path: the built-in KTO and SFT runs have no plugin to resolve `kto_plugin:zero3`
        assert spec.config["deepspeed"].endswith("zero3.json") and Path(spec.config["deepspeed"]).is_file(), spec.name
        assert not {"adapter", "lora_r", "lora_target_linear"} & spec.config.keys(), spec.name
        # Axolotl alone cannot start DeepSpeed on CPU ranks: the runs without kto-plugin get its CPU-rank fixes
        assert ("bench.cpu_ranks_plugin.CPURanksPlugin" in spec.config["plugins"]) is (
            "kto_plugin.KTOPlugin" not in spec.config["plugins"]), spec.name
    assert layout.launcher() == ["--launcher", "torchrun", "--", "--nproc_per_node", "2"]
    assert layout.describe() == "full fine-tuning, 2 CPU ranks (gloo), deepspeed kto_plugin:zero3"
