"""Commands about training runs: the reward summary of a finished run, and its model before and after on held-out prompts."""

from __future__ import annotations

from pathlib import Path

import click

SUMMARY_ROWS = [
    ("reward margin", "rewards/margins"),
    ("desirable reward", "rewards/chosen"),
    ("undesirable reward", "rewards/rejected"),
    ("reference point z0", "kl"),
    ("NLL/token, accepted", "nll/chosen"),
    ("  the reference's", "nll_ref/chosen"),
    ("  share that fell", "nll_fallen/chosen"),
    ("  share on the GCE", "sft_gce/chosen"),
    ("beta", "beta"),
    ("loss", "loss"),
]


def _first_and_last(records: list[dict], key: str) -> tuple[dict | None, dict | None]:
    having = [record for record in records if key in record]
    return (having[0], having[-1]) if having else (None, None)


@click.command("summary")
@click.argument("output_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def summary(output_dir: Path):
    """Print the KTO reward margins of a finished run, before and after training."""
    from rich.console import Console
    from rich.table import Table

    from kto_plugin.training.displacement import first_displacement, first_held_out_displacement
    from kto_plugin.training.metrics_log import read_metrics

    records = read_metrics(output_dir)
    train_first, train_last = _first_and_last(records, "rewards/margins")
    eval_first, eval_last = _first_and_last(records, "eval_rewards/margins")
    columns = [
        ("train first", train_first, ""),
        ("train last", train_last, ""),
        ("eval before", eval_first, "eval_"),
        ("eval after", eval_last, "eval_"),
    ]
    columns = [column for column in columns if column[1] is not None]
    if not columns:
        raise click.ClickException(f"no KTO reward metrics were logged in {output_dir}")
    table = Table(
        title=f"KTO rewards in {output_dir}",
        caption="reward = beta * sum of log(policy / reference) over the completion; "
        "margin = desirable - undesirable; NLL/token: the accepted answers' negative log-likelihood per token",
    )
    table.add_column("metric")
    for title, record, _ in columns:
        table.add_column(f"{title}\n(step {record['step']})", justify="right")
    for label, key in SUMMARY_ROWS:
        cells = []
        for _, record, prefix in columns:
            value = record.get(prefix + key)
            cells.append("-" if value is None else f"{value:+.4f}")
        table.add_row(label, *cells)
    console = Console()
    console.print(table)
    displaced = first_displacement([record for record in records if "loss" in record])
    if displaced is not None:
        drop = displaced["nll/chosen"] - displaced["nll_ref/chosen"]
        console.print(
            f"[yellow]likelihood displacement from step {displaced['step']}:[/] the accepted answers' NLL per token was "
            f"{drop:.2f} nats above the reference's while the reward margin grew ({displaced['rewards/margins']:+.3f}); "
            "sampled answers drift to text nobody wrote. Raise `kto_sft_weight`, lower `learning_rate` or raise "
            "`rl_beta`."
        )
    held_out = first_held_out_displacement(records)
    if held_out is not None:
        drop = held_out["eval_nll/chosen"] - held_out["eval_nll_ref/chosen"]
        console.print(
            f"[yellow]held-out accepted answers falling from step {held_out['step']}:[/] on the eval split their NLL "
            f"per token was {drop:.2f} nats above the reference's while the eval reward margin was "
            f"{held_out['eval_rewards/margins']:+.3f}; the model learns its training answers by heart. Train fewer "
            "epochs, lower `learning_rate` or raise `kto_sft_weight`."
        )
    if eval_first is not None and eval_last is not None:
        before = eval_first["eval_rewards/margins"]
        after = eval_last["eval_rewards/margins"]
        console.print(
            f"held-out reward margin: {before:+.4f} before training -> {after:+.4f} after "
            "(before training the model is its own reference, so rewards start at 0)"
        )


@click.command("before-after")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--held-out", "held_out_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rows whose prompts were never trained on (repeatable; default: the held-out and reworded "
                   "splits of the config's kto_plugin://NAME/train sample sets).")
@click.option("--samples", "samples_per_prompt", type=int, default=8, show_default=True,
              help="Sampled answers per held-out prompt, for the shares.")
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--max-new-tokens", type=int, default=48, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (the same for both models).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where every number and sampled answer goes (default: OUTPUT_DIR/before_after.json).")
def before_after(config, held_out_paths, samples_per_prompt, temperature, max_new_tokens, seed, json_path):
    """Score CONFIG's base model and its trained result on held-out prompts, before and after."""
    import json

    from rich.console import Console
    from rich.table import Table

    from kto_plugin.evaluation.before_after import answer_kind_rows, run_before_after, share_rows

    result = run_before_after(config, list(held_out_paths), samples_per_prompt, max_new_tokens, temperature, seed)
    before, after = result.before, result.after
    prompts = sum(len(info["prompts"]) for info in result.sets.values())
    table = Table(title=f"Held-out prompts, in words never trained on: {prompts} prompts; "
                        f"{len(after['answers'])} sampled answers per model (temperature {temperature})")
    table.add_column("measure")
    table.add_column("before (base)", justify="right")
    table.add_column("after (trained)", justify="right")
    for name, info in result.sets.items():
        accuracy = [side["sets"][name]["preference_accuracy"] for side in (before, after)]
        if accuracy[0] is not None:
            table.add_row(f"preference accuracy, {name} ({info['pairs']} pairs)", *(f"{value:.2f}" for value in accuracy))
    for name in result.sets:
        reward_accuracy = after["sets"][name].get("reward_accuracy")
        if reward_accuracy is not None:  # the base against itself: every reward 0, chance by definition
            table.add_row(f"reward accuracy, {name} (every row pair)", "0.50", f"{reward_accuracy:.2f}")
    for title, share_before, share_after in share_rows(result):
        table.add_row(title, f"{share_before:.0%}", f"{share_after:.0%}")
    if after["refund_grades"]:
        kinds = dict.fromkeys([*before["refund_grades"], *after["refund_grades"]])
        for kind in kinds:
            label = {"good": "refund desk: good answers", "other": "refund desk: neither good nor bad"}.get(
                kind, f"refund desk: {kind.replace('_', ' ')}")
            table.add_row(label, f"{before['refund_grades'].get(kind, 0):.0%}", f"{after['refund_grades'].get(kind, 0):.0%}")
    for row in answer_kind_rows(result):
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name, info in result.sets.items():
        console.print(f"[dim]{name}:[/] {info['prompts'][0][:90]}")
        console.print(f"  [dim]before[/] {before['sets'][name]['answers'][0][:120]}")
        console.print(f"  [dim]after[/]  {after['sets'][name]['answers'][0][:120]}")
    target = json_path or Path(result.trained) / "before_after.json"
    target.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    console.print(f"numbers and every sampled answer: {target}")


@click.command("config-keys")
def config_keys():
    """Print the plugin's config keys (type, default, what each does) as the Markdown of docs/config-keys.md."""
    from kto_plugin.args_reference import config_keys_markdown

    click.echo(config_keys_markdown(), nl=False)
