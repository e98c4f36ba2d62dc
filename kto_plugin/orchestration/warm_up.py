"""Make the warm model: the embedded recipe (`embedded.warm_model`) trained with a real `axolotl train`.

`ensure_warm_model` returns the cached model, making it first (a few minutes) when it is missing
or was made by another recipe; one process makes it at a time (a file lock).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from kto_plugin.embedded.tiny_model import build_tiny_model
from kto_plugin.embedded.warm_model import RECIPE, is_current, warm_model_dir, warm_up_rows
from kto_plugin.log import get_logger
from kto_plugin.orchestration.axolotl_jobs import cpu_job_config, run_axolotl_logged, train_command

LOG = get_logger(__name__)  # an `axolotl.` name: Axolotl's log filter shows its INFO lines


def warm_up_config(recipe: dict, base: Path, data: Path, output: Path) -> dict:
    """The Axolotl SFT config of the warm-up: full fine-tune, CPU, fp32, no checkpoints."""
    return cpu_job_config(lora_kernels_off=False, **{  # a full fine-tune: no LoRA kernel keys
        "base_model": str(base),
        "datasets": [{"path": str(data), "type": "chat_template", "field_messages": "messages"}],
        "chat_template": "tokenizer_default",
        "train_on_inputs": False,
        "sequence_len": recipe["sequence_len"],
        "num_epochs": recipe["num_epochs"],
        "micro_batch_size": recipe["micro_batch_size"],
        "gradient_accumulation_steps": 1,
        "learning_rate": recipe["learning_rate"],
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.05,
        "group_by_length": recipe["group_by_length"],
        # False: each batch padded to its longest row; None (unset), to a multiple of 64 tokens (recipe 4)
        "pad_to_sequence_len": False if recipe.get("pad_to_longest") else None,
        "optimizer": "adamw_torch",
        "weight_decay": 0.0,
        "seed": recipe["seed"],
        "logging_steps": 10,
        "save_strategy": "no",
        "val_set_size": 0,
        "output_dir": str(output),
        "dataset_prepared_path": str(output / "prepared"),
    })


def build_warm_model(output_dir: Path, recipe: dict | None = None) -> Path:
    """Make the base, warm it up with `axolotl train`, and move the result into `output_dir`."""
    recipe = {**RECIPE, **(recipe or {})}
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".warm-model-", dir=output_dir.parent) as work:
        work = Path(work)
        base = build_tiny_model(work / "base", seed=recipe["seed"], hidden_size=recipe["hidden_size"],
                                num_layers=recipe["num_layers"])
        data = work / "warm-up.jsonl"
        rows = warm_up_rows(recipe.get("sample_sets"), recipe["chat_set_repeats"])
        data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        config = work / "warm-up.yaml"
        trained = work / "trained"
        config.write_text(yaml.safe_dump(warm_up_config(recipe, base, data, trained), allow_unicode=True), encoding="utf-8")
        log = work / "warm-up.log"
        LOG.info("warming up the embedded model with axolotl train (log: %s)", log)
        run_axolotl_logged(train_command(config), log)
        result = work / "result"
        result.mkdir()
        for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                     "tokenizer_config.json", "chat_template.jinja"):
            source = trained / name if (trained / name).exists() else base / name
            if source.exists():
                shutil.copy2(source, result / name)
        (result / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        shutil.copy2(log, result / "warm-up.log")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(result, output_dir)
    return output_dir


def ensure_warm_model(output_dir: Path | None = None) -> Path:
    """The cached warm model, built (a few minutes) when missing or made by another recipe."""
    from filelock import FileLock

    output_dir = Path(output_dir or warm_model_dir())
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(output_dir) + ".lock"):
        if not is_current(output_dir):
            build_warm_model(output_dir)
    return output_dir
