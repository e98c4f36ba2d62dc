"""`axolotl kto pipeline`: SFT, then KTO, then a small DPO polish, each a real `axolotl train`, scored after each stage.

The stage configs live in one folder (`yaml_examples/pipeline/`); two routes hand a stage's
result to the next:

- merged: each stage's adapter is merged (`axolotl merge-lora`) and the next stage's
  `base_model` is the merged folder, so KTO's reference model is the SFT model;
- adapter: the KTO stage keeps training the SFT stage's adapter on the base weights
  (`lora_model_dir`, which the plugin loads trainable); its reference is then the base.
  Axolotl's DPO ignores `lora_model_dir`, so the KTO adapter is merged before DPO.

After each stage the model (its `base_model` plus the adapter it saved) is scored on the
held-out rows (`held_out_probe`): preference accuracy on same-prompt pairs, the mean
log-likelihood of accepted and of rejected answers, and the rule shares of greedy answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from kto_plugin.evaluation.held_out_probe import HeldOutSet, held_out_from_files, probe
from kto_plugin.evaluation.trained_run import load_model
from kto_plugin.orchestration.axolotl_jobs import run_axolotl_logged, train_command


@dataclass
class Stage:
    name: str
    config: str  # file in the pipeline folder
    overrides: dict = field(default_factory=dict)  # CLI overrides of config keys
    merge_after: bool = False

    def settings(self, folder: Path) -> dict:
        cfg = yaml.safe_load((folder / self.config).read_text(encoding="utf-8"))
        return {**cfg, **self.overrides}


ROUTES = {
    "merged": [
        Stage("sft", "sft.yaml", merge_after=True),
        Stage("kto", "kto.yaml", merge_after=True),
        Stage("dpo", "dpo.yaml"),
    ],
    "adapter": [
        Stage("sft", "sft.yaml"),
        Stage("kto", "kto-on-adapter.yaml", merge_after=True),
        Stage("dpo", "dpo.yaml", overrides={"base_model": "./outputs/pipeline/kto-on-adapter/merged",
                                            "output_dir": "./outputs/pipeline/dpo-after-adapter"}),
    ],
}


@dataclass
class PipelineResult:
    """One route of `axolotl kto pipeline`: the held-out rows and each stage's scores (the base model first);
    `to_json()` is `outputs/pipeline/report-ROUTE.json`."""

    route: str
    held_out: str
    held_out_rows: int
    held_out_pairs: int
    stages: list[dict] = field(default_factory=list)  # stage, model, preference_accuracy, logp_*, rules, answers

    def to_json(self) -> dict:
        return asdict(self)


def _cli_overrides(overrides: dict) -> list[str]:
    return [f"--{key.replace('_', '-')}={value}" for key, value in overrides.items()]


def train_stage(folder: Path, stage: Stage, max_steps: int | None, logs: Path) -> dict:
    """Train one stage (and merge its adapter when the next stage needs weights); return its settings."""
    config = str(folder / stage.config)
    overrides = dict(stage.overrides)
    if max_steps:
        overrides["max_steps"] = max_steps
    run_axolotl_logged(train_command(config, *_cli_overrides(overrides)), logs / f"{stage.name}-{Path(stage.config).stem}.log")
    settings = stage.settings(folder)
    if stage.merge_after:
        merge = {"lora_model_dir": settings["output_dir"]} if settings.get("lora_model_dir") else {}
        run_axolotl_logged(["merge-lora", config, *_cli_overrides({**stage.overrides, **merge})],
                    logs / f"{stage.name}-merge.log")
    return settings


def score(model, tokenizer, held_out: HeldOutSet, max_new_tokens: int) -> dict:
    measured = probe(model, tokenizer, held_out, max_new_tokens)
    return {key: measured[key] for key in ("preference_accuracy", "logp_accepted", "logp_rejected", "rules", "answers")}


def run_pipeline(folder: Path, route: str, held_out_path: Path, max_steps: int | None = None,
                 max_new_tokens: int = 32, progress=print, trained: dict | None = None) -> PipelineResult:
    """Every stage of `route` in order, each scored on the held-out rows; the base model first.

    `trained`, shared by the routes of one invocation, holds the stages already trained: a
    stage with the same config and overrides (both routes' SFT) is scored again, not retrained.
    """
    import gc

    from transformers import AutoTokenizer

    from kto_plugin.embedded.tiny_model import build_tiny_model

    stages = ROUTES[route]
    first = stages[0].settings(folder)
    logs = Path(first["output_dir"]).parent / "logs" / route
    base = Path(first["base_model"])
    if not (base / "config.json").exists():
        progress(f"making the embedded tiny model in {base}")
        build_tiny_model(base)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    held_out = held_out_from_files([held_out_path], tokenizer)
    results = PipelineResult(route, str(held_out_path), len(held_out.labels), len(held_out.pairs()))
    progress(f"scoring the base model {base} on {len(held_out.labels)} held-out rows")
    base_model = load_model(str(base))
    results.stages.append({"stage": "base", "model": str(base), **score(base_model, tokenizer, held_out, max_new_tokens)})
    del base_model
    for stage in stages:
        key = (stage.config, tuple(sorted(stage.overrides.items())))
        earlier = (trained or {}).get(key)
        reused = earlier is not None and (earlier["merged"] or not stage.merge_after)
        if reused:
            progress(f"stage {stage.name}: {folder / stage.config} was trained by the route before; not trained again")
            settings = earlier["settings"]
        else:
            progress(f"stage {stage.name}: axolotl train {folder / stage.config} (log in {logs})")
            settings = train_stage(folder, stage, max_steps, logs)
            if trained is not None:
                trained[key] = {"settings": settings, "merged": stage.merge_after}
        model = load_model(settings["base_model"], settings["output_dir"])  # the stage's base and its adapter
        results.stages.append({"stage": stage.name, "config": str(folder / stage.config),
                                  "model": f"{settings['base_model']} + {settings['output_dir']}",
                                  "trained_by_earlier_route": reused,
                                  **score(model, tokenizer, held_out, max_new_tokens)})
        del model
        gc.collect()
    return results


def changes(results: PipelineResult) -> list[str]:
    """One line per stage: what it changed against the stage before."""
    lines = []
    stages = results.stages
    for before, after in zip(stages, stages[1:]):
        parts = []
        if before["preference_accuracy"] is not None:
            parts.append(f"preference accuracy {before['preference_accuracy']:.2f} -> {after['preference_accuracy']:.2f}")
        gap_before = before["logp_accepted"] - before["logp_rejected"]
        gap_after = after["logp_accepted"] - after["logp_rejected"]
        parts.append(f"log p(accepted) - log p(rejected) {gap_before:+.2f} -> {gap_after:+.2f}")
        moved = [f"{rule.replace('_', ' ')} {before['rules'][rule]:.2f} -> {after['rules'][rule]:.2f}"
                 for rule in after["rules"] if abs(after["rules"][rule] - before["rules"][rule]) >= 0.01]
        parts.append("answers: " + (", ".join(moved) if moved else "rule shares unchanged"))
        lines.append(f"{after['stage']}: " + "; ".join(parts))
    return lines
