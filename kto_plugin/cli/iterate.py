"""`axolotl kto iterate CONFIG`: rounds of sample -> label -> check -> train -> score (`orchestration.iterate`)."""

from __future__ import annotations

from pathlib import Path

import click

OPTION_KEYS = ("prompts", "held_out_prompts", "rounds", "judge", "answers_per_prompt", "prompts_per_round",
               "temperature", "max_new_tokens", "sampler", "label_threshold", "replay_share", "seed", "output_dir")


def _threshold(value: str | None):
    if value is None or value in ("mean", "median"):
        return value
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: a number, mean or median", param_hint="--label-threshold") from None


def rounds_table(record: dict):
    """One row per round (`iterate_folder.round_rows`): what was labelled, kept and trained on, the held-out score."""
    from rich.table import Table

    from kto_plugin.orchestration.iterate_folder import round_rows

    rows = round_rows(record)
    table = Table(title=f"iterate: judge {record['judge']}, held-out answers judged desirable per round")
    for column in rows[0]:
        table.add_column(column, justify="left" if column in ("model", "step reached") else "right")
    for row in rows:
        table.add_row(*(str(value) for value in row.values()))
    return table


@click.command("iterate")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prompts", default=None, help="Prompt pool: .txt (one per line) or .jsonl rows with `query` "
              "(and `system`). Default: `kto_iterate.prompts` of the config.")
@click.option("--held-out", "held_out_prompts", default=None,
              help="Prompts scored after each round, never trained on (default: a share of the pool).")
@click.option("--rounds", type=int, default=None, help="Rounds to run (default 3); with --resume, more rounds "
              "than the run had continue it.")
@click.option("--judge", default=None, help="human | MODULE:FUNCTION | file.py:FUNCTION | reward-model:FOLDER | "
              "chat-model:FOLDER.")
@click.option("--answers-per-prompt", type=int, default=None, help="Answers sampled per prompt (default 4).")
@click.option("--prompts-per-round", type=int, default=None, help="Training prompts drawn each round (default: all).")
@click.option("--temperature", type=float, default=None, help="Sampling temperature (default 1.0).")
@click.option("--max-new-tokens", type=int, default=None, help="Longest answer, in tokens (default 128).")
@click.option("--sampler", type=click.Choice(["auto", "transformers", "vllm"]), default=None,
              help="What samples the answers: vllm (needs vLLM and a CUDA GPU), transformers, or auto (default: vLLM "
              "where it can run).")
@click.option("--label-threshold", default=None, help="A number-returning judge's answers are desirable above "
              "this: a number, mean or median (default median).")
@click.option("--replay-share", type=float, default=None, help="Share of earlier rounds' rows trained on again (default 0).")
@click.option("--seed", type=int, default=None, help="Seed of the held-out split and the sampling (default 0).")
@click.option("--output", "output_dir", default=None, help="Run folder (default: the config's output_dir/iterate).")
@click.option("--resume", is_flag=True, help="Continue the run in the run folder where it stopped (after a kill, "
              "or once a person labelled the round in the studio).")
def iterate(config, resume, **options):
    """Train KTO round after round on the current model's own answers, labelled by a judge or by you.

    Each round samples answers to the training prompts from the current model, labels them,
    checks them (duplicates, low-information answers, conflicting labels), trains
    `axolotl train CONFIG` on them with the current model as base and reference, and scores
    the result on held-out prompts. Every round is kept in the run folder (round-K/,
    rounds.json); a killed run continues with --resume.
    """
    from pydantic import ValidationError
    from rich.console import Console

    from kto_plugin.errors import ConfigError
    from kto_plugin.orchestration.iterate import run_iterate, run_settings

    console = Console()
    given = {key: value for key, value in options.items() if value is not None}
    if "label_threshold" in given:
        given["label_threshold"] = _threshold(given["label_threshold"])
    try:
        settings = run_settings(config, given, resume)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"kto_iterate settings: {problems}") from None
    outcome = run_iterate(config, settings, resume, progress=lambda line: console.print(f"[dim]{line}[/]"))
    console.print(rounds_table(outcome.record))
    if outcome.waiting_for:
        waiting = outcome.waiting_for
        click.echo(f"Round {waiting['round']} waits for your labels: {waiting['undecided']} answers to accept or "
                   "reject. Label them in the studio; its Rounds tab continues the run once they are done:")
        click.echo(f"  axolotl kto studio {config} --run {outcome.folder}")
        click.echo("or, once they are labelled, continue from here:")
        click.echo(f"  axolotl kto iterate {config} --resume --output {outcome.folder}")
        return
    console.print(f"run folder: {outcome.folder} (rounds.json, round-K/)")
