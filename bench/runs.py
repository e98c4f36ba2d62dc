"""The runs the bench times, each a real `axolotl train` process: built-in KTO, the plugin, SFT.

Every run gets the same model, rows, LoRA, micro-batch, steps and seed; they differ only in
what trains. The bench's own plugin (`bench.step_timer`) is added to all of them and only
records step times.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kto_plugin.orchestration.axolotl_jobs import cpu_job_config, set_offline
from kto_plugin.training.beta_schedule import DEFAULT_BETA

REPO = Path(__file__).resolve().parents[1]
TIMER = "bench.step_timer.StepTimerPlugin"
CHATML_PROMPT = "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"

# The plugin's speed switches, each set against its default in a run of its own: the three that are on
# by default turned off; `kto_padding_free`, whose `auto` packs only with flash-attention, forced on.
OPTIMIZATION_KEYS: dict[str, object] = {
    "kto_chunked_logps": False, "kto_ref_cache": "off", "kto_group_by_length": False, "kto_padding_free": True,
    # not a speed switch: the paper's loss without the SFT term, to show what the default term costs
    "kto_sft_weight": 0,
    # the paper's KL z0 (the default is BCO's running reward mean: no KL pairs and no KL forward)
    "kto_reference_point": "kl",
    # glibc's own mmap threshold: freed activations stay in the heap (resident memory, not time)
    "kto_release_cpu_memory": False,
}


@dataclass
class RunSpec:
    name: str
    config: dict
    kind: str  # "kto-builtin", "kto-plugin", "kto-plugin-variant", "sft" or "sft-grouped"


@dataclass
class RunResult:
    name: str
    kind: str
    returncode: int
    step_seconds: list[float] = field(default_factory=list)
    peak_rss_bytes: int = 0
    peak_gpu_bytes: int = 0  # the largest torch.cuda.max_memory_allocated() read at a step's end (GPU layouts)
    wall_seconds: float = 0.0
    seconds_to_first_step: float = 0.0
    epoch_end_seconds: list[float] = field(default_factory=list)  # from process start
    step_parts: list[dict[str, float]] = field(default_factory=list)  # bench.step_profile: each step's parts
    log_tail: str = ""

    def median_step(self, warmup: int) -> float:
        measured = self.step_seconds[warmup:] or self.step_seconds
        return statistics.median(measured) if measured else float("nan")


@dataclass
class Layout:
    """How every run of one bench invocation is laid out: processes, DeepSpeed, LoRA or every weight trained."""

    processes: int = 1
    deepspeed: str | None = None
    full: bool = False
    gpu: bool = False  # bf16 on the GPU, with flash-attention where the `flash_attn` package is installed, else sdpa

    def attention(self) -> str:
        """The attention a GPU layout uses: flash-attention 2 where the `flash_attn` package is installed, else sdpa."""
        import importlib.util

        return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"

    def attention_keys(self) -> dict:
        """The config keys for `attention()`: `attn_implementation` where this Axolotl has it (0.21), else the
        older booleans (`flash_attention`, `sdp_attention`)."""
        from axolotl.utils.schemas.config import AxolotlInputConfig

        if "attn_implementation" in AxolotlInputConfig.model_fields:
            return {"attn_implementation": self.attention()}
        return {"flash_attention" if self.attention() == "flash_attention_2" else "sdp_attention": True}

    def describe(self) -> str:
        parts = ["full fine-tuning" if self.full else "LoRA r8"]
        if self.gpu:
            parts.append(f"GPU, bf16, {self.attention()} attention")
        if self.processes > 1:
            parts.append(f"{self.processes} CPU ranks (gloo)")
        if self.deepspeed:
            parts.append(f"deepspeed {self.deepspeed}")
        return ", ".join(parts)

    def apply(self, config: dict) -> dict:
        if self.processes > 1:  # the plugin's runs replace the plugins list, and bring these fixes themselves
            from bench.cpu_ranks_plugin import PLUGIN

            config["plugins"] = [*config.get("plugins", []), PLUGIN]
        if self.deepspeed:  # a shipped config by its path: the built-in KTO and SFT runs have no plugin to resolve it
            from kto_plugin.distributed.zero_configs import resolve_deepspeed

            config["deepspeed"] = resolve_deepspeed(self.deepspeed)
        if self.gpu:  # over the CPU job's fp32; Axolotl's Triton LoRA kernels stay off, the same for every run
            config.update({"bf16": True, "tf32": True, **self.attention_keys()})
        if self.full:
            for key in ("adapter", "lora_r", "lora_alpha", "lora_dropout", "lora_target_linear"):
                config.pop(key, None)
        return config

    def launcher(self) -> list[str]:
        if self.processes == 1:
            return ["--launcher", "python"]
        return ["--launcher", "torchrun", "--", "--nproc_per_node", str(self.processes)]


def common_config(model_dir: Path, data: Path, work: Path, name: str, steps: int, micro_batch: int,
                  sequence_len: int, epochs: int | None = None, layout: Layout | None = None) -> dict:
    length = {"num_epochs": epochs} if epochs else {"max_steps": steps}
    return (layout or Layout()).apply(cpu_job_config(**{
        **length,
        "base_model": str(model_dir),
        "sequence_len": sequence_len,
        "micro_batch_size": micro_batch,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-4,
        "optimizer": "adamw_torch",
        "lr_scheduler": "constant",
        "adapter": "lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_target_linear": True,
        "seed": 0,
        "logging_steps": 1,
        "save_strategy": "no",
        "val_set_size": 0,
        "output_dir": str(work / name),
        "dataset_prepared_path": str(work / name / "prepared"),
        "plugins": [TIMER],
        "datasets": [{"path": str(data), "ds_type": "json"}],
    }))


def run_specs(model_dir: Path, data: Path, work: Path, steps: int, micro_batch: int, sequence_len: int,
              beta: float = DEFAULT_BETA, epochs: int | None = None, layout: Layout | None = None) -> list[RunSpec]:
    """The runs; with `epochs`, whole epochs instead of `steps` steps."""
    def base(name: str) -> dict:
        return common_config(model_dir, data, work, name, steps, micro_batch, sequence_len, epochs, layout)

    builtin = base("kto-builtin")
    builtin.update(rl="kto", rl_beta=beta, remove_unused_columns=False)
    builtin["datasets"][0]["type"] = {
        "field_prompt": "prompt", "field_completion": "completion", "field_label": "label",
        "prompt_format": CHATML_PROMPT, "completion_format": "{completion}<|im_end|>",
    }
    specs = [RunSpec("Axolotl built-in KTO", builtin, "kto-builtin")]

    def plugin(name: str, **overrides) -> dict:
        config = base(name)
        # a reference cache of this run's own, emptied before it starts: its build is part of the run
        config.update(rl="kto", rl_beta=beta, kto_ref_cache_dir=str(work / name / "ref_cache"), **overrides)
        config["plugins"] = ["kto_plugin.KTOPlugin", TIMER]
        config["datasets"][0]["type"] = "kto_plugin.prompt_completion"
        return config

    specs.append(RunSpec("plugin KTO (defaults)", plugin("kto-plugin"), "kto-plugin"))
    for key, value in OPTIMIZATION_KEYS.items():
        folder = f"kto-plugin-{key}-{str(value).lower()}"
        specs.append(RunSpec(f"plugin KTO, {key}: {value}", plugin(folder, **{key: value}),
                             "kto-plugin-variant"))

    sft = base("sft")
    sft["datasets"][0].update(type="completion", field="text")
    specs.append(RunSpec("Axolotl SFT", sft, "sft"))
    # SFT with Axolotl's own length grouping, the like-for-like of kto_group_by_length
    grouped = base("sft-grouped")
    grouped["datasets"][0].update(type="completion", field="text")
    grouped["group_by_length"] = True
    specs.append(RunSpec("Axolotl SFT, group_by_length: true", grouped, "sft-grouped"))
    return specs


def run(spec: RunSpec, work: Path, layout: Layout | None = None, profile: bool = True) -> RunResult:
    """`axolotl train` under bench.measure_child: one process (`--launcher python`), or torchrun's ranks, whose
    peak RSS is the largest rank's. `profile=False`: step times only, no split (on a GPU the split
    synchronises the device at each boundary, which the plain step time should not pay)."""
    config_path = work / f"{spec.config['output_dir'].rsplit('/', 1)[-1]}.yaml"
    shutil.rmtree(spec.config["output_dir"], ignore_errors=True)
    config_path.write_text(yaml.safe_dump(spec.config, allow_unicode=True), encoding="utf-8")
    measured = config_path.with_suffix(".measure.json")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    set_offline(env)
    from bench.step_timer import PROFILE_VARIABLE  # it imports Axolotl: only where a run starts

    env[PROFILE_VARIABLE] = "1" if profile else "0"
    command = [sys.executable, "-m", "bench.measure_child", str(measured), "--",
               sys.executable, "-m", "axolotl.cli.main", "train", str(config_path), *(layout or Layout()).launcher()]
    log_path = config_path.with_suffix(".log")
    with log_path.open("w", encoding="utf-8") as log:
        subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    measure = json.loads(measured.read_text())
    result = RunResult(spec.name, spec.kind, measure["returncode"], peak_rss_bytes=measure["peak_rss_bytes"],
                       wall_seconds=measure["wall_seconds"])
    steps_file = Path(spec.config["output_dir"]) / "bench_steps.json"
    if steps_file.exists():
        steps = json.loads(steps_file.read_text())
        result.step_seconds = steps["step_seconds"]
        result.seconds_to_first_step = steps["train_begin"] - measure["started"]
        result.epoch_end_seconds = [end - measure["started"] for end in steps.get("epoch_ends", [])]
        result.step_parts = steps.get("step_parts", [])
        result.peak_gpu_bytes = steps.get("peak_gpu_bytes", 0)
    if result.returncode != 0:
        result.log_tail = log_path.read_text(encoding="utf-8")[-3000:]
    return result
