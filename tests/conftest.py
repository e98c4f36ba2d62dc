"""Shared fixtures: an offline environment, the embedded tiny model, configs loaded by Axolotl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "AXOLOTL_DO_NOT_TRACK", "DO_NOT_TRACK"):
    os.environ.setdefault(_name, "1")


@pytest.fixture(scope="session")
def plugin_cache(tmp_path_factory) -> Path:
    """A private cache for kto_plugin://tiny-model, also seen by `axolotl` subprocesses."""
    cache = tmp_path_factory.mktemp("kto_plugin_cache")
    os.environ["KTO_PLUGIN_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_model(plugin_cache) -> Path:
    from kto_plugin.tiny_model import ensure_tiny_model
    from kto_plugin.paths import tiny_model_dir

    return ensure_tiny_model(tiny_model_dir())


@pytest.fixture(autouse=True)
def fresh_plugin_manager():
    """Axolotl's plugin registry is a process-wide singleton: start each test empty."""
    from axolotl.integrations.base import PluginManager

    PluginManager._instance = None
    yield
    PluginManager._instance = None


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def base_config(tmp_path: Path, datasets: list[dict], **overrides) -> dict:
    config = {
        "plugins": ["kto_plugin.KTOPlugin"],
        "rl": "kto",
        "base_model": "kto_plugin://tiny-model",
        "datasets": datasets,
        "sequence_len": 256,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "num_epochs": 1,
        "learning_rate": 1e-3,
        "optimizer": "adamw_torch",
        "output_dir": str(tmp_path / "out"),
        "dataset_prepared_path": str(tmp_path / "prepared"),
        "bf16": False,
        "fp16": False,
        "tf32": False,
        "seed": 7,
    }
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
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "axolotl.cli.main", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )


def train_with_axolotl(tmp_path: Path, name: str, config: dict, *launch: str) -> subprocess.CompletedProcess:
    """Write `config` to tmp_path/NAME.yaml and run `axolotl train` on it (with launcher options); it must succeed."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_axolotl("train", str(path), *launch, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def with_lora(config: dict) -> dict:
    """A small LoRA on every linear layer, no checkpoints, a metrics record every step."""
    config.update(adapter="lora", lora_r=8, lora_alpha=16, lora_dropout=0.0, lora_target_linear=True,
                  save_strategy="no", logging_steps=1)
    return config


def read_metrics_file(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(output_dir) / "kto_metrics.jsonl").read_text().splitlines()]
