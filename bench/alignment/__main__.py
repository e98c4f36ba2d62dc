"""`python -m bench.alignment`: each variant a real `axolotl train` from the warm model, scored on held-out questions.

    python -m bench.alignment                                  # 9 variants x 3 seeds, 4 epochs (~95 min on 2 cores)
    python -m bench.alignment --variants kto,dpo --seeds 0 --learning-rate 0.001
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import click
import yaml

from bench.alignment.data import VARIANTS, budget
from bench.alignment.report import plot, print_table
from bench.alignment.runs import DEFAULTS, train_variant
from bench.alignment.scoring import score_model
from kto_plugin.orchestration.axolotl_jobs import set_offline
from kto_plugin.training.loss import REFERENCE_POINTS


def _load(base_model: str, adapter: Path | None):
    from kto_plugin.evaluation.trained_run import load_model

    return load_model(base_model, adapter)


def displacement_step(output: Path, keep_in: Path) -> int | None:
    """The step the plugin's displacement guard warned at (None: it did not, or not a KTO run); the run's metrics
    file is kept beside its log."""
    from kto_plugin.training.displacement import first_displacement
    from kto_plugin.training.metrics_log import METRICS_FILE, read_metrics

    if not (output / METRICS_FILE).exists():
        return None
    shutil.copy(output / METRICS_FILE, keep_in / METRICS_FILE)
    found = first_displacement([record for record in read_metrics(output) if "loss" in record])
    return None if found is None else found["step"]


def parse_kto_keys(pairs: tuple[str, ...]) -> dict:
    """`--kto-key` values as a config dict: `KEY=VALUE`, VALUE read as YAML (`0.5` a float, `true` a bool)."""
    keys = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--kto-key")
        keys[key.strip()] = yaml.safe_load(value)
    return keys


@click.command()
@click.option("--variants", default=",".join(VARIANTS), show_default=True, help="Comma-separated variants to run.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds (data draw and training).")
@click.option("--base-model", default=None, help="Model to start from (default: kto_plugin://warm-model).")
@click.option("--learning-rate", type=float, default=DEFAULTS["learning_rate"], show_default=True)
@click.option("--epochs", "num_epochs", type=float, default=DEFAULTS["num_epochs"], show_default=True)
@click.option("--beta", "rl_beta", type=float, default=DEFAULTS["rl_beta"], show_default=True)
@click.option("--desirable-weight", "kto_desirable_weight", type=float, default=DEFAULTS["kto_desirable_weight"],
              show_default=True, help="KTO's lambda_D for the variants without kto_auto_weights.")
@click.option("--sft-weight", "kto_sft_weight", type=float, default=None,
              help="kto_sft_weight for kto-few-desirable and kto-noisy (default: the plugin's default).")
@click.option("--sft-term-weight", "sft_term_weight", type=float, default=DEFAULTS["sft_term_weight"], show_default=True,
              help="The SFT term's weight in kto-sft (kto_sft_weight) and dpo-sft (dpo_loss_weights).")
@click.option("--reference-point", "kto_reference_point", type=click.Choice(REFERENCE_POINTS), default=None,
              help="kto_reference_point for every KTO variant (default: the plugin's default).")
@click.option("--sft-gce-q", "kto_sft_gce_q", type=float, default=None,
              help="kto_sft_gce_q for every KTO variant with an SFT term (default: the plugin's default).")
@click.option("--kto-key", "kto_keys", multiple=True, metavar="KEY=VALUE",
              help="Another key for every KTO variant's config, its value read as YAML (repeatable), e.g. "
                   "--kto-key kto_class_balance=weights.")
@click.option("--samples", type=int, default=4, show_default=True, help="Sampled answers per held-out question.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("outputs/bench-alignment"),
              show_default=True, help="Scratch folder for data, configs, logs and models (models removed after scoring).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Results file (default: bench/results/alignment-pyXY-axolotlV-DATE.json).")
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plot file (default: beside the JSON, same name, .png).")
def main(variants, seeds, base_model, learning_rate, num_epochs, rl_beta, kto_desirable_weight, kto_sft_weight,
         sft_term_weight, kto_reference_point, kto_sft_gce_q, kto_keys, samples, work, json_path, png_path):
    """Compare KTO (binary labels) with and without an SFT term, DPO (pairs) with and without one, KTO with 90% of
    the desirable rows removed, KTO with 20% of the labels flipped, SFT on the desirable rows, and SFT on the desirable
    rows of each of those two degraded budgets, from one feedback budget per seed."""
    set_offline(os.environ)  # for the `axolotl train` jobs it starts (kto_plugin.orchestration.axolotl_jobs)
    import axolotl
    from transformers import AutoTokenizer

    from kto_plugin.embedded.refund_desk import split_questions
    from kto_plugin.embedded.uris import resolve_model_uri

    variant_names = [name.strip() for name in variants.split(",") if name.strip()]
    unknown = sorted(set(variant_names) - set(VARIANTS))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; the variants are {', '.join(VARIANTS)}", param_hint="--variants")
    seed_list = [int(seed) for seed in seeds.split(",")]
    base = resolve_model_uri(base_model or "kto_plugin://warm-model") if not base_model or base_model.startswith(
        "kto_plugin://") else base_model
    settings = {**DEFAULTS, "learning_rate": learning_rate, "num_epochs": num_epochs, "rl_beta": rl_beta,
                "kto_desirable_weight": kto_desirable_weight, "kto_sft_weight": kto_sft_weight,
                "sft_term_weight": sft_term_weight, "kto_reference_point": kto_reference_point,
                "kto_sft_gce_q": kto_sft_gce_q, "kto_keys": parse_kto_keys(kto_keys)}
    tokenizer = AutoTokenizer.from_pretrained(base)
    stack = f"py{sys.version_info.major}{sys.version_info.minor}-axolotl{axolotl.__version__}"
    today = datetime.date.today().isoformat()
    json_path = json_path or Path("bench/results") / f"alignment-{stack}-{today}.json"
    png_path = png_path or json_path.with_suffix(".png")
    results = {"date": today, "machine": platform.processor() or platform.machine(), "stack": stack, "base_model": base,
               "settings": settings, "seeds": seed_list, "samples_per_question": samples,
               "held_out_questions": len(split_questions()[1]), "variants": {"base": []}}
    click.echo(f"scoring the base model {base}")
    base_scores = score_model(_load(base, None), tokenizer, samples)
    results["variants"]["base"] = [base_scores for _ in seed_list]
    for seed in seed_list:
        rows = budget(seed)
        for variant in variant_names:
            click.echo(f"seed {seed}: {variant} (axolotl train; log in {work / f'{variant}-seed{seed}' / 'train.log'})")
            output = train_variant(variant, rows, base, work, seed, settings)
            scores = score_model(_load(base, output), tokenizer, samples, seed)
            scores["seed"] = seed
            scores["displacement_warned_at_step"] = displacement_step(output, work / f"{variant}-seed{seed}")
            results["variants"].setdefault(variant, []).append(scores)
            click.echo(f"  preference accuracy {scores['preference_accuracy']:.2f}, good {scores['good']:.2f}, "
                       f"bad {scores['bad']:.2f}, neither {scores['other']:.2f}")
            shutil.rmtree(output, ignore_errors=True)
            gc.collect()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(results)
    plot(results, png_path)
    click.echo(f"results: {json_path}\nplot: {png_path}")


if __name__ == "__main__":
    main()
