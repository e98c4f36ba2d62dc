"""`python -m bench.iterate`: rounds of `axolotl kto iterate` judged by the refund desk's grader, each round scored.

    python -m bench.iterate                                  # 3 rounds x 3 seeds + offline KTO and SFT (~40 min)
    python -m bench.iterate --seeds 0 --no-offline

The label budget is the offline runs': every training question's 4 answers (its good answer in
both wordings and two bad ones), 768 labelled answers. The loop spends the same number: each
round samples `answers_per_prompt` answers to a third of the training questions (drawn per round)
and the grader labels them. After every round the round's model is scored on the held-out
questions exactly as `bench.alignment` scores a variant.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import click
import yaml

from bench.alignment.data import budget
from bench.alignment.runs import DEFAULTS, train_variant, variant_config
from bench.alignment.scoring import score_model
from bench.iterate.report import plot, print_table
from kto_plugin.embedded.recipes import recipe_path
from kto_plugin.orchestration.axolotl_jobs import set_offline

JUDGE = "kto_plugin.embedded.refund_desk:judge"
# the loop's training settings are the shipped recipe's (yaml_examples/iterate-refunds.yaml); the offline runs get them too
RECIPE = yaml.safe_load(recipe_path("iterate-refunds").read_text(encoding="utf-8"))
OFFLINE_VARIANTS = ("kto-sft", "sft")  # offline KTO at the plugin's defaults (its SFT term on), and SFT


def round_config(base: str, work: Path, seed: int, settings: dict) -> dict:
    """The alignment bench's KTO config at the plugin's defaults, with `kto_auto_weights`: a round's share of good
    answers moves from round to round (about 1 in 6 at first)."""
    config = variant_config("kto", base, work / "unused.jsonl", work / "unused-output", seed, settings)
    for key in ("kto_sft_weight", "kto_desirable_weight"):
        config.pop(key, None)
    if settings["kto_sft_weight"] is not None:
        config["kto_sft_weight"] = settings["kto_sft_weight"]
    config["kto_auto_weights"] = True
    if settings.get("kto_class_balance"):
        config["kto_class_balance"] = settings["kto_class_balance"]
    return config


def scored(model_dir: str, tokenizer, samples: int, seed: int, adapter: Path | None = None) -> dict:
    from kto_plugin.evaluation.trained_run import load_model

    scores = score_model(load_model(model_dir, adapter), tokenizer, samples, seed)
    gc.collect()
    return scores


def run_seed(seed: int, base: str, tokenizer, rounds: int, answers_per_prompt: int, samples: int, work: Path,
             settings: dict, replay_share: float) -> list[dict]:
    """One iterate run; the scores of the starting model and of every round's model, with the round's wall time."""
    from kto_plugin.embedded.refund_desk import prompt_rows, split_questions
    from kto_plugin.orchestration.iterate import run_iterate
    from kto_plugin.orchestration.iterate_settings import IterateSettings

    folder = work / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    train, held_out = split_questions()
    for name, questions in (("prompts.jsonl", train), ("held-out.jsonl", held_out)):
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in prompt_rows(questions)), encoding="utf-8")
    config_path = folder / "kto.yaml"
    config_path.write_text(yaml.safe_dump(round_config(base, folder, seed, settings)), encoding="utf-8")
    labelled_budget = len(budget(seed))
    settings = IterateSettings(prompts=str(folder / "prompts.jsonl"), held_out_prompts=str(folder / "held-out.jsonl"),
                               judge=JUDGE, rounds=rounds, answers_per_prompt=answers_per_prompt,
                               prompts_per_round=labelled_budget // (rounds * answers_per_prompt),
                               max_new_tokens=48, seed=seed, output_dir=str(folder / "run"), replay_share=replay_share)
    started = time.monotonic()
    outcome = run_iterate(config_path, settings, resume=(folder / "run" / "rounds.json").exists(),
                          progress=lambda line: click.echo(f"  {line}"))
    click.echo(f"  seed {seed}: {rounds} rounds in {(time.monotonic() - started) / 60:.1f} min")
    results = [{"round": 0, **scored(outcome.record["start_model"], tokenizer, samples, seed)}]
    for entry in outcome.record["rounds"]:
        scores = scored(entry["model_out"], tokenizer, samples, seed)
        results.append({"round": entry["round"], "seconds": sum(entry["seconds"].values()),
                        "labels": entry["counts"]["labels"], **scores})
        click.echo(f"  round {entry['round']}: preference accuracy {scores['preference_accuracy']:.2f}, "
                   f"good {scores['good']:.2f}, bad {scores['bad']:.2f}, neither {scores['other']:.2f}")
    return results


@click.command()
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--rounds", type=int, default=3, show_default=True)
@click.option("--answers-per-prompt", type=int, default=4, show_default=True)
@click.option("--samples", type=int, default=4, show_default=True, help="Sampled answers per held-out question.")
@click.option("--replay-share", type=float, default=RECIPE["kto_iterate"]["replay_share"], show_default=True,
              help="Share of the earlier rounds' labelled rows trained on again (kto_iterate.replay_share; "
                   "default: the recipe's).")
@click.option("--epochs", "num_epochs", type=float, default=RECIPE["num_epochs"], show_default=True,
              help="Epochs of each round's training and of the offline runs (default: the recipe's).")
@click.option("--learning-rate", type=float, default=DEFAULTS["learning_rate"], show_default=True)
@click.option("--beta", "rl_beta", type=float, default=RECIPE["rl_beta"], show_default=True,
              help="rl_beta of the rounds and of offline KTO (default: the recipe's).")
@click.option("--sft-weight", "kto_sft_weight", type=float, default=RECIPE["kto_sft_weight"], show_default=True,
              help="kto_sft_weight of the rounds and of offline KTO (default: the recipe's).")
@click.option("--class-balance", "kto_class_balance", type=click.Choice(["auto", "weights", "sampling"]), default=None,
              help="kto_class_balance of the rounds (default: the plugin's, auto: a round's rare good answers "
                   "repeated where lambda_D is above 4).")
@click.option("--offline/--no-offline", default=True, show_default=True,
              help="Also train offline KTO and SFT on the same label budget (the alignment bench's kto-sft and sft).")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("outputs/bench-iterate"),
              show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Results file (default: bench/results/iterate-pyXY-axolotlV-DATE.json).")
def main(seeds, rounds, answers_per_prompt, samples, replay_share, num_epochs, learning_rate, rl_beta, kto_sft_weight,
         kto_class_balance, offline, work, json_path):
    """Rounds of KTO on the model's own answers, labelled by the refund desk's grader, against offline KTO and SFT."""
    set_offline(os.environ)
    import axolotl
    from transformers import AutoTokenizer

    from kto_plugin.embedded.uris import resolve_model_uri

    seed_list = [int(seed) for seed in seeds.split(",")]
    settings = {**DEFAULTS, "num_epochs": num_epochs, "learning_rate": learning_rate, "kto_sft_weight": kto_sft_weight,
                "rl_beta": rl_beta,
                "sft_term_weight": kto_sft_weight,  # offline kto-sft's SFT term at the loop's weight
                "kto_class_balance": kto_class_balance}
    base = resolve_model_uri("kto_plugin://warm-model")
    tokenizer = AutoTokenizer.from_pretrained(base)
    stack = f"py{sys.version_info.major}{sys.version_info.minor}-axolotl{axolotl.__version__}"
    today = datetime.date.today().isoformat()
    json_path = json_path or Path("bench/results") / f"iterate-{stack}-{today}.json"
    results = {"date": today, "machine": platform.processor() or platform.machine(), "stack": stack, "base_model": base,
               "judge": JUDGE, "rounds": rounds, "answers_per_prompt": answers_per_prompt, "seeds": seed_list,
               "samples_per_question": samples, "label_budget": len(budget(0)), "replay_share": replay_share,
               "settings": settings, "iterate": {}, "offline": {}}
    for seed in seed_list:
        click.echo(f"seed {seed}: axolotl kto iterate, {rounds} rounds")
        results["iterate"][str(seed)] = run_seed(seed, base, tokenizer, rounds, answers_per_prompt, samples, work,
                                                   settings, replay_share)
        if offline:
            for variant in OFFLINE_VARIANTS:
                click.echo(f"seed {seed}: offline {variant} on the same {results['label_budget']} labelled answers")
                started = time.monotonic()
                output = train_variant(variant, budget(seed), base, work / "offline", seed, settings)
                scores = scored(base, tokenizer, samples, seed, adapter=output)
                scores["seconds"] = time.monotonic() - started
                results["offline"].setdefault(variant, []).append(scores)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(results)
    plot(results, json_path.with_suffix(".png"))
    click.echo(f"results: {json_path}\nplot: {json_path.with_suffix('.png')}")


if __name__ == "__main__":
    main()
