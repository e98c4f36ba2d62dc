"""Helpers shared by test modules in every folder: configs loaded by Axolotl, the real `axolotl` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


# Qwen2.5-7B's shape (7,615,616,512 parameters), for counting without weights
QWEN25_7B = dict(
    hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
    num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False,
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def base_config(tmp_path: Path, datasets: list[dict], **overrides) -> dict:
    """A KTO config on the tiny model, built like every job config (`orchestration.axolotl_jobs.cpu_job_config`)."""
    from kto_plugin.orchestration.axolotl_jobs import cpu_job_config

    config = cpu_job_config(
        lora_kernels_off=False,  # left unset: the plugin turns them off without CUDA, as a test checks
        plugins=["kto_plugin.KTOPlugin"], rl="kto", base_model="kto_plugin://tiny-model", datasets=datasets,
        sequence_len=256, micro_batch_size=2, gradient_accumulation_steps=1, num_epochs=1, learning_rate=1e-3,
        optimizer="adamw_torch", output_dir=str(tmp_path / "out"), dataset_prepared_path=str(tmp_path / "prepared"),
        seed=7,
    )
    config.update(overrides)
    return config


def load_config(tmp_path: Path, config: dict):
    """Load a config the way `axolotl train` does (plugins registered, schema validated)."""
    from axolotl.cli.config import load_cfg

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return load_cfg(str(path))


def load_kto_data(tmp_path: Path, datasets: list[dict], **overrides):
    """Config through Axolotl's loader, then the plugin's dataset hook as `axolotl train` calls it."""
    from axolotl.integrations.base import PluginManager

    cfg = load_config(tmp_path, base_config(tmp_path, datasets, **overrides))
    assert "kto_plugin.KTOPlugin" in PluginManager.get_instance().plugins, "plugin failed to load"
    return PluginManager.get_instance().load_datasets(cfg, preprocess=False)


def run_axolotl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real `axolotl` command line, in a subprocess, with this venv's launcher on PATH."""
    from kto_plugin.orchestration.axolotl_jobs import axolotl_command, axolotl_environment

    return subprocess.run(axolotl_command(list(args)), cwd=cwd, env=axolotl_environment(), capture_output=True,
                          text=True, timeout=600)


def train_with_axolotl(tmp_path: Path, name: str, config: dict, *launch: str) -> subprocess.CompletedProcess:
    """Write `config` to tmp_path/NAME.yaml and run `axolotl train` on it (with launcher options); it must succeed.

    Without a `--launcher` in `launch` the run is Axolotl's `--launcher python` (one process: the plugin's own jobs
    run so, `orchestration.axolotl_jobs.train_command`); `accelerate launch`, Axolotl's default, would start torch
    a second time in a second process, about 20 s a run. The tests of the default launcher pass
    `"--launcher", "accelerate"` (and tests/data and tests/studio run `axolotl train` as typed)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    if "--launcher" not in launch:
        launch = ("--launcher", "python", *launch)
    result = run_axolotl("train", str(path), *launch, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a process group's rendezvous)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_rank_script(tmp_path: Path, name: str, script: str, timeout: int = 600) -> str:
    """Run `script` (which spawns its ranks and takes the rendezvous port as its argument) from the repository root;
    it must succeed. Returns its stdout."""
    path = tmp_path / f"{name}.py"
    path.write_text(script, encoding="utf-8")
    result = subprocess.run([sys.executable, str(path), str(free_port())], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def with_lora(config: dict) -> dict:
    """A small LoRA on every linear layer, no checkpoints, a metrics record every step."""
    config.update(adapter="lora", lora_r=8, lora_alpha=16, lora_dropout=0.0, lora_target_linear=True,
                  save_strategy="no", logging_steps=1)
    return config


def read_metrics_file(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(output_dir) / "kto_metrics.jsonl").read_text().splitlines()]


TINY_VOCAB = 97


def tiny_qwen(tied: bool, attention: str = "sdpa"):
    """A two-layer Qwen2 of vocabulary 97, seeded, built in memory (no files)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=TINY_VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied)
    config._attn_implementation = attention
    return Qwen2ForCausalLM(config)


def moved_from_reference(model, seed: int = 9, scale: float = 0.05) -> None:
    """Perturb the trainable weights in place, as training would move the policy away from its reference."""
    import torch

    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        for param in model.parameters():
            if param.requires_grad:
                param.add_(scale * torch.randn(param.shape, generator=generator))


def padded_rows(lengths: list[int], seed: int, left: bool = False):
    """(input_ids, attention_mask, completion_mask) of rows of the given lengths, padded to the longest."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    input_ids = torch.zeros(len(lengths), width, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    completion_mask = torch.zeros_like(input_ids)
    for row, length in enumerate(lengths):
        span = slice(width - length, width) if left else slice(0, length)
        input_ids[row, span] = torch.randint(1, TINY_VOCAB, (length,), generator=generator)
        attention_mask[row, span] = 1
        prompt = int(torch.randint(0, length, (1,), generator=generator))  # 0: no prompt, the first token is completion
        completion = torch.zeros(length, dtype=torch.long)
        completion[prompt:] = 1
        completion_mask[row, span] = completion
    return input_ids, attention_mask, completion_mask


def kto_batch(lengths: list[int], seed: int) -> dict:
    input_ids, attention_mask, completion_mask = padded_rows(lengths, seed)
    kl_ids, kl_attention, kl_completion = padded_rows(lengths[1:] + lengths[:1], seed + 100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "completion_mask": completion_mask,
            "KL_input_ids": kl_ids, "KL_attention_mask": kl_attention, "KL_completion_mask": kl_completion,
            "label": [row % 3 != 1 for row in range(len(lengths))]}


def bare_trainer(model, lora_reference: bool = False, **attributes):
    """The plugin's trainer with only what `_compute_loss` reads: building a full one takes an `axolotl train`.

    The reference is a frozen copy of `model`, or with `lora_reference` the model with its adapter off. The
    plugin's settings come from training arguments as in a real run (`KTOTrainingArgsMixin`), every fast path
    off and the paper's KL z0 (`reference_point="reward_mean"` needs the trainer's callback); `attributes` set
    anything else (or a setting, by its trainer attribute: `chunked_logps=True`).
    """
    import copy
    from collections import defaultdict
    from dataclasses import asdict
    from types import SimpleNamespace

    from accelerate import Accelerator

    from kto_plugin.training.trainer import KTOPluginTrainer
    from kto_plugin.training.training_args import KTOTrainingArgsMixin

    settings = asdict(KTOTrainingArgsMixin(kto_chunked_logps=False, kto_group_by_length=False, kto_padding_free=False,
                                           kto_reference_point="kl"))
    args = SimpleNamespace(gradient_checkpointing_kwargs=None, **settings)
    trainer = object.__new__(KTOPluginTrainer)
    trainer.apply_settings(args)
    trainer.__dict__.update(
        model=model, ref_model=None if lora_reference else copy.deepcopy(model).eval(),
        accelerator=Accelerator(cpu=True), args=args,
        precompute_ref_logps=False, _calculate_kl=True, use_liger_kernel=False, beta=0.1, desirable_weight=1.0,
        undesirable_weight=1.0, loss_type="kto", aux_loss_enabled=False, router_aux_loss_coef=0.0,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    for name, value in attributes.items():
        setattr(trainer, name, value)  # calculate_KL is a property
    return trainer


def interrupt_python_when(code: str, ready, sig, cwd: Path, wait_s: float = 240, poll_s: float = 0.001):
    """Start `python -c code`, send it `sig` as soon as `ready()` is true, and return it once it has ended.

    Fails if the process ends before `ready()` (it could not be interrupted where the test meant)."""
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + wait_s
    while time.time() < deadline and process.poll() is None and not ready():
        time.sleep(poll_s)
    assert process.poll() is None, "the process finished before it could be interrupted"
    process.send_signal(sig)
    process.wait(timeout=60)
    return process

