"""Commands about training runs: the reward summary of a finished run."""

from __future__ import annotations

from pathlib import Path

import click

SUMMARY_ROWS = [
    ("reward margin", "rewards/margins"),
    ("desirable reward", "rewards/chosen"),
    ("undesirable reward", "rewards/rejected"),
    ("KL estimate (z0)", "kl"),
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

    from kto_plugin.training.metrics_log import read_metrics

    try:
        records = read_metrics(output_dir)
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
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
        "margin = desirable - undesirable",
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
    if eval_first is not None and eval_last is not None:
        before = eval_first["eval_rewards/margins"]
        after = eval_last["eval_rewards/margins"]
        console.print(
            f"held-out reward margin: {before:+.4f} before training -> {after:+.4f} after "
            "(before training the model is its own reference, so rewards start at 0)"
        )
