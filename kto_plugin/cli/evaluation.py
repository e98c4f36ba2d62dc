"""Commands that evaluate a run: lm-eval tasks, base vs tuned, blind A/B sheets, chat."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("make-eval-tasks")
@click.argument("data")
@click.option("--type", "format_name", default="query_response", show_default=True,
              type=click.Choice(["query_response", "messages", "prompt_completion", "paired"]),
              help="The plugin format of DATA's rows.")
@click.option("--name", required=True, help="Task name prefix, e.g. kto_support: makes kto_support_preference and kto_support_rules.")
@click.option("--output", type=click.Path(path_type=Path), required=True, help="Folder for the task YAMLs, data and utils.py.")
@click.option("--field", "fields", multiple=True, metavar="ROLE=COLUMN",
              help="Column names, as in the dataset entry: --field query=question --field label=ok.")
def make_eval_tasks(data: str, format_name: str, name: str, output: Path, fields: tuple[str, ...]):
    """Write lm-eval tasks (preference and rule-scored generation) from a KTO JSONL file."""
    from kto_plugin.cli.data_tools import field_names_option
    from kto_plugin.data.feedback_files import read_feedback_file
    from kto_plugin.embedded.uris import is_plugin_uri, resolve_dataset_uri
    from kto_plugin.evaluation.tasks import write_eval_tasks

    if not name.startswith("kto_"):
        raise click.BadParameter("task names start with `kto_`", param_hint="--name")
    path = Path(resolve_dataset_uri(data) if is_plugin_uri(data) else data)
    field_settings = field_names_option(fields)
    rows = read_feedback_file(path).rows
    counts = write_eval_tasks(rows, format_name, name, output, field_settings)
    for task, count in counts.items():
        click.echo(f"{task}: {count} documents in {output / (task + '.jsonl')}")
    click.echo(f"run them with: lm_eval --model hf --model_args pretrained=MODEL --include_path {output} "
               f"--tasks {','.join(counts)} --apply_chat_template")


@click.command("eval")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def eval_run(config: Path):
    """Evaluate base and trained model of a finished run on its `kto_eval_tasks`."""
    from axolotl.cli.config import load_cfg

    from kto_plugin.evaluation.harness import evaluate_run

    cfg = load_cfg(str(config))
    eval_dir = evaluate_run(cfg)
    click.echo((eval_dir / "report.md").read_text(encoding="utf-8"))
    click.echo(f"raw results: {eval_dir / 'results.json'}")


@click.command("compare")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prompts", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Text file, one prompt per line.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Folder for sheet.csv, sheet.html and key.json (default: OUTPUT_DIR/compare).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the A/B order and for sampling.")
@click.option("--max-new-tokens", type=int, default=128, show_default=True)
@click.option("--min-new-tokens", type=int, default=0, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 = greedy decoding.")
@click.option("--force", is_flag=True, help="Replace a sheet that already holds ratings (it is kept as "
                                            "sheet.rated-N.csv, its key as key.rated-N.json).")
def compare(config: Path, prompts: Path, output: Path | None, seed: int, max_new_tokens: int,
            min_new_tokens: int, temperature: float, force: bool):
    """Answer each prompt with the base and the trained model; write a blind A/B rating sheet."""
    from axolotl.cli.config import load_cfg

    from kto_plugin.evaluation.generation import GenerationSettings, generate_answers, read_prompts, user_prompts
    from kto_plugin.evaluation.side_by_side import keep_rated_sheet, write_sheet
    from kto_plugin.evaluation.trained_run import TrainedRun

    cfg = load_cfg(str(config))
    folder = output or Path(cfg.output_dir) / "compare"
    kept = keep_rated_sheet(folder, replace=force)  # a rated sheet: refused, or (--force) kept aside, before any model loads
    prompt_list = read_prompts(prompts)
    pair = TrainedRun.from_config(cfg).load_pair()
    settings = GenerationSettings(max_new_tokens, min_new_tokens, temperature, seed)
    rendered = user_prompts(pair.tokenizer, prompt_list)
    with pair.base() as base_model:
        base_answers = generate_answers(base_model, pair.tokenizer, rendered, settings)
    tuned_answers = generate_answers(pair.tuned, pair.tokenizer, rendered, settings)
    paths = write_sheet(folder, prompt_list, base_answers, tuned_answers, seed,
                        {"base": str(cfg.base_model), "tuned": str(cfg.output_dir)})
    if kept:
        click.echo(f"the rated sheet was kept beside the new one as {kept.name} (its key as {kept.name.replace('sheet', 'key', 1).replace('.csv', '.json')})")
    click.echo(f"rating sheet: {paths['csv']} (and {paths['html']}); key: {paths['key']}")
    click.echo(f"fill rating_a and rating_b (1-5), then: axolotl kto score {paths['csv']} --key {paths['key']}")


@click.command("score")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
def score(sheet: Path, key_path: Path):
    """Unblind a filled rating sheet: mean rating per model with a 95% interval, and the win rate."""
    from rich.console import Console
    from rich.table import Table

    from kto_plugin.evaluation.side_by_side import score_sheet

    summary = score_sheet(sheet, key_path)
    table = Table(title=f"Blind ratings from {sheet} ({summary.prompts} prompts)")
    for column in ("model", "mean rating", "95% interval", "n"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model in ("base", "tuned"):
        stats = summary.model(model)
        low, high = stats["ci95"]
        table.add_row(model, f"{stats['mean']:.2f}", f"[{low:.2f}, {high:.2f}]", str(stats["n"]))
    console = Console()
    console.print(table)
    console.print(f"tuned wins {summary.tuned_wins}, ties {summary.ties}, base wins {summary.base_wins}: "
                  f"tuned win rate {summary.tuned_win_rate:.2f}")


@click.command("chat")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--base", "use_base", is_flag=True, help="Talk to the base model instead of the trained one.")
@click.option("--temperature", type=float, default=0.7, show_default=True, help="0 = greedy decoding.")
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--min-new-tokens", type=int, default=0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def chat(config: Path, use_base: bool, temperature: float, max_new_tokens: int, min_new_tokens: int, seed: int):
    """Multi-turn streaming chat with the trained model (or --base); reads stdin, so it also takes piped input."""
    from contextlib import nullcontext

    from axolotl.cli.config import load_cfg

    from kto_plugin.evaluation.trained_run import TrainedRun

    cfg = load_cfg(str(config))
    pair = TrainedRun.from_config(cfg).load_pair()
    with pair.base() if use_base else nullcontext(pair.tuned) as model:
        model.eval()
        _chat_loop(model, pair.tokenizer, cfg.output_dir, use_base, temperature, max_new_tokens, min_new_tokens, seed)


def _chat_loop(model, tokenizer, output_dir, use_base, temperature, max_new_tokens, min_new_tokens, seed):
    import sys

    from transformers import TextStreamer

    from kto_plugin.evaluation.generation import GenerationSettings, generate_answers, render_chat

    click.echo(f"chatting with the {'base' if use_base else 'trained'} model of {output_dir}; "
               "type a message, /reset to clear the conversation, /quit or Ctrl-D to leave")
    messages: list[dict] = []
    for line in sys.stdin:
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        if text == "/reset":
            messages = []
            click.echo("(conversation cleared)")
            continue
        messages.append({"role": "user", "content": text})
        click.echo(f"you> {text}\nmodel> ", nl=False)
        settings = GenerationSettings(max_new_tokens, min_new_tokens, temperature, seed=seed + len(messages) // 2)
        reply = generate_answers(model, tokenizer, [render_chat(tokenizer, messages)], settings, progress=None,
                                 streamer=TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True))[0]
        messages.append({"role": "assistant", "content": reply})
