"""`axolotl kto pipeline`: SFT -> KTO -> DPO on the embedded model, and what each stage changed."""

from __future__ import annotations

import json
from pathlib import Path

import click

DEFAULT_FOLDER = Path("yaml_examples/pipeline")


@click.command("pipeline")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_FOLDER,
              show_default=True, help="Folder with sft.yaml, kto.yaml, kto-on-adapter.yaml and dpo.yaml "
                                      "(`axolotl kto recipes --all` copies them to yaml_examples/pipeline).")
@click.option("--route", type=click.Choice(["merged", "adapter", "both"]), default="merged", show_default=True,
              help="merged: each stage starts from the previous stage's merged weights; adapter: KTO keeps "
                   "training the SFT adapter on the base weights.")
@click.option("--held-out", "held_out_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Rows never trained on, scored after each stage (default: DIR/data/heldout.jsonl).")
@click.option("--max-steps", type=int, default=None, help="Cap each stage at this many optimizer steps (a quick run).")
@click.option("--max-new-tokens", type=int, default=32, show_default=True, help="Length of the sampled answers.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the numbers and sampled answers go (default: outputs/pipeline/report-ROUTE.json).")
def pipeline(folder, route, held_out_path, max_steps, max_new_tokens, json_path):
    """Run SFT, then KTO, then DPO (each a real `axolotl train`) and print what each stage changed.

    Run it from the repository root, or from a folder where `axolotl kto recipes --all` copied the
    recipes: the configs name ./outputs/pipeline/ and yaml_examples/pipeline/data/. The base model is the embedded tiny model, made in
    outputs/pipeline/base when missing.
    """
    from rich.console import Console
    from rich.table import Table

    from kto_plugin.errors import MissingFileError
    from kto_plugin.orchestration.pipeline import changes, run_pipeline

    if not (folder / "sft.yaml").exists():
        raise MissingFileError(f"{folder} holds no pipeline configs (sft.yaml, kto.yaml, ...): run this from the "
                               "repository root, or copy the recipes here first with `axolotl kto recipes --all`")
    console = Console()
    held_out_path = held_out_path or folder / "data" / "heldout.jsonl"
    trained: dict = {}  # both routes start with the same SFT stage: trained once
    for one_route in (["merged", "adapter"] if route == "both" else [route]):
        results = run_pipeline(folder, one_route, held_out_path, max_steps, max_new_tokens,
                               progress=lambda line: console.print(f"[dim]{line}[/]"), trained=trained)
        table = Table(title=f"{one_route} route: held-out rows ({results.held_out_rows} rows, "
                            f"{results.held_out_pairs} same-prompt pairs, never trained on)")
        table.add_column("measure")
        for stage in results.stages:
            table.add_column(f"after {stage['stage']}" if stage["stage"] != "base" else "base", justify="right")
        rows = [("preference accuracy", "preference_accuracy", None), ("mean log p(accepted)", "logp_accepted", None),
                ("mean log p(rejected)", "logp_rejected", None)]
        for title, key, _ in rows:
            table.add_row(title, *("-" if s[key] is None else f"{s[key]:.2f}" for s in results.stages))
        for rule in results.stages[0]["rules"]:
            table.add_row(f"answers: {rule.replace('_', ' ')}", *(f"{s['rules'][rule]:.2f}" for s in results.stages))
        console.print(table)
        for line in changes(results):
            console.print(f"  {line}")
        target = json_path if json_path and route != "both" else Path("outputs/pipeline") / f"report-{one_route}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        console.print(f"numbers and sampled answers: {target}")
