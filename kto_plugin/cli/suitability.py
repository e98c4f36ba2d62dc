"""`axolotl kto try CONFIG`: a few minutes that say whether KTO learns from a config's data."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("try")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--per-label", type=int, default=50, show_default=True, help="Accepted and rejected examples to take, each.")
@click.option("--held-out", "held_out_share", type=float, default=0.2, show_default=True,
              help="Share of the sample held out (whole prompts, never trained on).")
@click.option("--epochs", type=float, default=2.0, show_default=True, help="Epochs over the training part of the sample.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the brief run writes its model (default: the config's output_dir + '-try').")
@click.option("--max-new-tokens", type=int, default=48, show_default=True, help="Length of the sampled answers.")
@click.option("--seed", type=int, default=42, show_default=True, help="Which rows are sampled and held out.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every number and the sampled answers as JSON.")
def try_config(config, per_label, held_out_share, epochs, output_dir, max_new_tokens, seed, json_path):
    """Train briefly on a sample of CONFIG's data and say whether KTO learns from it.

    Takes up to --per-label accepted and rejected rows, holds out whole prompts, trains the
    config's model for --epochs, and compares before and after on the held-out rows:
    preference accuracy, reward accuracy (chance 0.5) and the rules of the generation task.
    """
    from rich.console import Console
    from rich.table import Table

    from kto_plugin.evaluation.lm_eval_tasks.utils import RULES
    from kto_plugin.orchestration.suitability import run_try

    result = run_try(config, per_label, held_out_share, epochs, output_dir, max_new_tokens, seed)
    console = Console()
    table = Table(title=f"axolotl kto try {config}: {result.train_examples} examples trained on "
                        f"({result.train_accepted} accepted), {result.held_out_examples} held out")
    table.add_column("held-out measure")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")

    def cell(value):
        return "-" if value is None else f"{value:.2f}"

    table.add_row(f"preference accuracy ({result.held_out_pairs} same-prompt pairs)",
                  cell(result.before["preference_accuracy"]), cell(result.after["preference_accuracy"]))
    for rule in RULES:
        table.add_row(f"answers: {rule.replace('_', ' ')}", cell(result.before["rules"][rule]),
                      cell(result.after["rules"][rule]))
    table.add_row("reward accuracy (chance 0.50)", "", cell(result.reward_accuracy))
    console.print(table)
    for answer in result.answers[:2]:
        console.print(f"[dim]prompt[/] {answer['prompt'][:80]!r}\n  [dim]before[/] {answer['before'][:100]!r}\n"
                      f"  [dim]after[/]  {answer['after'][:100]!r}")
    kind, text = result.verdict()
    style = {"learns": "bold green", "does not learn": "bold red"}.get(kind, "bold yellow")
    console.print(f"[{style}]{text}[/]")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        console.print(f"JSON written to {json_path}")
