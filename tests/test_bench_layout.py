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


def test_every_kto_run_trains_at_the_beta_a_user_gets():
    from kto_plugin.training.beta_schedule import DEFAULT_BETA

    kto_runs = [spec for spec in specs(Layout()) if spec.config.get("rl") == "kto"]
    assert kto_runs and all(spec.config["rl_beta"] == DEFAULT_BETA for spec in kto_runs)


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


def test_a_gpu_layout_trains_every_run_in_bf16_with_the_same_attention_and_no_triton_kernels():
    from axolotl.utils.schemas.config import AxolotlInputConfig

    layout = Layout(gpu=True)
    runs = specs(layout)
    assert {spec.kind for spec in runs} >= {"kto-builtin", "kto-plugin", "sft"}
    for spec in runs:
        assert spec.config["bf16"] is True and spec.config["tf32"] is True, spec.name
        # the CPU's fp32 keys are replaced, the Triton LoRA kernels stay off for every run alike
        assert spec.config["lora_mlp_kernel"] is False and spec.config["lora_qkv_kernel"] is False, spec.name
        # a key this Axolotl's schema knows: flash-attention 2 with the package, else sdpa (no package here)
        [(key, value)] = [(k, v) for k, v in spec.config.items() if "attn" in k or k.endswith("_attention")]
        assert key in AxolotlInputConfig.model_fields, spec.name
        assert value in ("sdpa", True), spec.name
    assert layout.describe() == "LoRA r8, GPU, bf16, sdpa attention"


def test_the_step_timer_times_whole_steps_only_when_told_not_to_profile(monkeypatch, tmp_path):
    import json

    from bench.step_timer import PROFILE_VARIABLE, StepTimes

    class State:
        is_world_process_zero = True

    monkeypatch.setenv(PROFILE_VARIABLE, "0")
    unprofiled = StepTimes(str(tmp_path / "plain"))
    monkeypatch.setenv(PROFILE_VARIABLE, "1")
    profiled = StepTimes(str(tmp_path / "split"))
    assert unprofiled.profile is None and profiled.profile is not None
    for times in (unprofiled, profiled):
        for _ in range(3):
            times.on_step_begin(None, State(), None)
            times.on_pre_optimizer_step(None, State(), None)
            times.on_optimizer_step(None, State(), None)
            times.on_step_end(None, State(), None)
        times.on_train_end(None, State(), None)
    plain = json.loads((tmp_path / "plain" / "bench_steps.json").read_text())
    split = json.loads((tmp_path / "split" / "bench_steps.json").read_text())
    assert len(plain["step_seconds"]) == len(split["step_seconds"]) == 3
    assert plain["step_parts"] == [] and len(split["step_parts"]) == 3
    import torch

    if not torch.cuda.is_available():
        assert plain["peak_gpu_bytes"] == 0


def test_the_gpu_peak_is_the_largest_of_each_steps_peak_though_the_trainer_resets_it(monkeypatch, tmp_path):
    # No GPU here: torch.cuda's two calls are replaced (mocked) by an allocator whose peak Axolotl's SFT log
    # resets after each step, as it does on a GPU; a peak read only at the end would be the last step's 2 GiB.
    import json

    import torch

    from bench.step_timer import PROFILE_VARIABLE, StepTimes

    class State:
        is_world_process_zero = True

    peaks = iter([3 << 30, 7 << 30, 2 << 30, 2 << 30])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: next(peaks))
    monkeypatch.setenv(PROFILE_VARIABLE, "0")
    times = StepTimes(str(tmp_path))
    for _ in range(3):
        times.on_step_begin(None, State(), None)
        times.on_step_end(None, State(), None)
    times.on_train_end(None, State(), None)
    assert json.loads((tmp_path / "bench_steps.json").read_text())["peak_gpu_bytes"] == 7 << 30
