"""The warmed-up embedded model: a larger tiny Llama given a short, seeded SFT warm-up through Axolotl.

`kto_plugin://tiny-model` has random weights: it cannot show alignment. This model
(`kto_plugin://warm-model`) is the same tokenizer with a wider, deeper body (`RECIPE`:
hidden 256, 4 layers, 3.1M parameters), trained by `axolotl train` (full
fine-tune, Axolotl's own SFT, 5 epochs) on the shipped sample sets' prompts with *both* their
accepted and their rejected answers, so it answers sample-style questions in the sets' words
and mixes their good and bad habits the way an untuned model does: on the refund desk it
gives right and wrong decisions, promises and rude refusals. The held-out prompts
(`samples.held_out_queries`) are left out, so evaluations on them use prompts it never saw.

The result is cached in `$KTO_PLUGIN_CACHE/warm-model` with `recipe.json`; a cached model
whose recipe differs is rebuilt. The same recipe gives the same weights (seeded
initialisation and data order, no dropout, same thread count).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from kto_plugin.axolotl_command import run_axolotl_logged
from kto_plugin.embedded.cache import cache_dir
from kto_plugin.embedded.samples import chat_messages, held_out_queries, sample_dataset_names, sample_dataset_path
from kto_plugin.embedded.tiny_model import build_tiny_model

LOG = logging.getLogger(__name__)
WARM_MODEL_NAME = "warm-model"
RECIPE = {
    "recipe_version": 2,
    "seed": 42,
    "hidden_size": 256,
    "num_layers": 4,
    "num_epochs": 5,
    "learning_rate": 0.004,
    "micro_batch_size": 16,
    "sequence_len": 256,
    # Off: the refund desk's answers of one kind have one length, so length-grouped batches hold
    # one kind each; with them the warm-up's loss was 1.25 after 192 steps, without them 0.11.
    "group_by_length": False,
}


def warm_model_dir() -> Path:
    return cache_dir() / WARM_MODEL_NAME


def warm_up_rows(sample_sets: list[str] | None = None) -> list[dict]:
    """Every row of the sample sets (default: all) whose prompt is not held out, accepted and rejected alike,
    as chat messages."""
    held_out = held_out_queries()
    rows = []
    for name in sample_sets or sample_dataset_names():
        for line in sample_dataset_path(name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["query"] not in held_out:
                rows.append({"messages": chat_messages(row)})
    return rows


def warm_up_config(recipe: dict, base: Path, data: Path, output: Path) -> dict:
    """The Axolotl SFT config of the warm-up: full fine-tune, CPU, fp32, no checkpoints."""
    return {
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
        "optimizer": "adamw_torch",
        "weight_decay": 0.0,
        "seed": recipe["seed"],
        "bf16": False, "fp16": False, "tf32": False,
        "logging_steps": 10,
        "save_strategy": "no",
        "val_set_size": 0,
        "output_dir": str(output),
        "dataset_prepared_path": str(output / "prepared"),
    }


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
        rows = warm_up_rows(recipe.get("sample_sets"))
        data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        config = work / "warm-up.yaml"
        trained = work / "trained"
        config.write_text(yaml.safe_dump(warm_up_config(recipe, base, data, trained), allow_unicode=True), encoding="utf-8")
        log = work / "warm-up.log"
        LOG.info("warming up the embedded model with axolotl train (log: %s)", log)
        run_axolotl_logged(["train", str(config)], log)
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


def cached_recipe(folder: Path) -> dict | None:
    path = Path(folder) / "recipe.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def ensure_warm_model(output_dir: Path | None = None) -> Path:
    """The cached warm model, built (a few minutes) when missing or made by another recipe."""
    from filelock import FileLock

    output_dir = Path(output_dir or warm_model_dir())
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(output_dir) + ".lock"):
        if cached_recipe(output_dir) != RECIPE or not (output_dir / "model.safetensors").exists():
            build_warm_model(output_dir)
    return output_dir
