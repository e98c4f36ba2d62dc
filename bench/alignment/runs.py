"""The Axolotl config of each alignment-bench variant, and one real `axolotl train` run of it.

All variants start from the same base (the embedded warm model by default), train a LoRA
adapter with the same rank, learning rate, epochs, batch, seed and row order (shuffled, not
grouped by length), and differ only in the objective and in how the feedback budget is
presented (`data.variant_rows`).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bench.alignment.data import variant_rows
from kto_plugin.orchestration.axolotl_jobs import cpu_job_config, run_axolotl_logged
from kto_plugin.training.beta_schedule import DEFAULT_BETA
from kto_plugin.training.loss import SFT_WEIGHT_DEFAULT

# the SFT term's weight in kto-sft and dpo-sft, and beta (KTO's and DPO's), are the plugin's defaults; 4 epochs as the
# feedback loop's recipe trains
DEFAULTS = {"learning_rate": 0.002, "num_epochs": 4, "rl_beta": DEFAULT_BETA, "micro_batch_size": 4,
            "gradient_accumulation_steps": 2, "kto_desirable_weight": 1.0, "kto_sft_weight": None,
            "sft_term_weight": SFT_WEIGHT_DEFAULT, "kto_reference_point": None, "kto_sft_gce_q": None,
            "kto_keys": {}}


def variant_config(variant: str, base_model: str, data: Path, output_dir: Path, seed: int, settings: dict) -> dict:
    common = cpu_job_config(**{
        "base_model": base_model, "sequence_len": 256, "seed": seed, "val_set_size": 0,
        "adapter": "lora", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "lora_target_linear": True,
        "num_epochs": settings["num_epochs"], "micro_batch_size": settings["micro_batch_size"],
        "gradient_accumulation_steps": settings["gradient_accumulation_steps"],
        "learning_rate": settings["learning_rate"], "lr_scheduler": "cosine", "warmup_ratio": 0.1,
        "optimizer": "adamw_torch", "weight_decay": 0.0,
        "logging_steps": 10, "save_strategy": "no", "output_dir": str(output_dir),
        "dataset_prepared_path": str(output_dir / "prepared"),
    })
    if variant.startswith("kto"):
        # `kto`: the paper's loss (no SFT term, the KL z0); `kto-sft`: the SFT term at `sft_term_weight`; the others:
        # the plugin's default, or `kto_sft_weight` and `kto_reference_point` where the bench was given them
        sft_weight = {"kto": 0.0, "kto-sft": settings["sft_term_weight"]}.get(variant, settings["kto_sft_weight"])
        point = settings["kto_reference_point"] or ("kl" if variant == "kto" else None)
        return {**common, "plugins": ["kto_plugin.KTOPlugin"], "rl": "kto", "rl_beta": settings["rl_beta"],
                **({} if sft_weight is None else {"kto_sft_weight": sft_weight}),
                **({} if point is None else {"kto_reference_point": point}),
                **({} if settings["kto_sft_gce_q"] is None or sft_weight == 0
                   else {"kto_sft_gce_q": settings["kto_sft_gce_q"]}),
                "kto_auto_weights": variant == "kto-few-desirable",
                **({} if variant == "kto-few-desirable" else {"kto_desirable_weight": settings["kto_desirable_weight"]}),
                # rows in data order, as DPO and SFT read them: the refund desk's answers of one kind share a
                # length, so length-grouped micro-batches would hold one kind each
                "kto_group_by_length": False,
                "datasets": [{"path": str(data), "type": "kto_plugin.query_response"}],
                # `--kto-key KEY=VALUE`: any other plugin key, for every KTO variant (last, so it wins)
                **settings["kto_keys"]}
    if variant in ("dpo", "dpo-sft"):
        # dpo-sft: TRL's NLL on the chosen answers beside the DPO loss (RPO; Axolotl 0.19 refuses `rpo_alpha`)
        sft_term = ({"dpo_loss_type": ["sigmoid", "sft"], "dpo_loss_weights": [1.0, settings["sft_term_weight"]]}
                    if variant == "dpo-sft" else {})
        return {**common, "rl": "dpo", "rl_beta": settings["rl_beta"], **sft_term,
                "datasets": [{"path": str(data), "type": "chatml.prompt_pairs"}]}
    return {**common, "chat_template": "tokenizer_default", "train_on_inputs": False,
            "datasets": [{"path": str(data), "type": "chat_template", "field_messages": "messages"}]}


def train_variant(variant: str, rows: list[dict], base_model: str, work: Path, seed: int, settings: dict) -> Path:
    """Write the variant's rows and config under `work`, run `axolotl train`, return the output folder."""
    folder = work / f"{variant}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in variant_rows(variant, rows, seed)), encoding="utf-8")
    config = folder / "config.yaml"
    output = folder / "model"
    config.write_text(yaml.safe_dump(variant_config(variant, base_model, data, output, seed, settings)), encoding="utf-8")
    run_axolotl_logged(["train", str(config)], folder / "train.log")
    return output
