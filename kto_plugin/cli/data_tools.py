"""`axolotl kto check` and `axolotl kto clean`: look at feedback data before training on it.

Exit codes of `check`: 0 clean, 1 problems that would hurt training, 2 unreadable input.
Without a config or `--tokenizer`, token lengths are counted with the embedded tiny
model's tokenizer (a byte-level BPE trained on the sample sets, ChatML template): a
stand-in, close for English and Chinese text but not your model's exact counts.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from kto_plugin.cli.json_stdout import json_stdout
from kto_plugin.data.data_check import DEFAULT_SEQUENCE_LEN, MixedInputsError, run_check
from kto_plugin.data.formats import FORMATS
from kto_plugin.errors import is_user_error


def _fail_unreadable(message: str):
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def field_names_option(items: tuple[str, ...]) -> dict[str, str]:
    """`--field query=question --field label=ok` as the dataset entry's keys: {"field_query": "question", ...}."""
    names = {}
    for item in items:
        role, _, column = item.partition("=")
        if not role.strip() or not column.strip():
            raise click.BadParameter(f"{item!r}: use ROLE=COLUMN, as in --field query=question", param_hint="--field")
        names[f"field_{role.strip()}"] = column.strip()
    return names


def low_information_options(command):
    command = click.option("--field", "field_items", multiple=True, metavar="ROLE=COLUMN",
                           help="A field named otherwise, as the config's field_* keys: --field query=question "
                                "--field label=ok (repeatable).")(command)
    command = click.option("--pattern", "patterns", multiple=True, metavar="REGEX",
                           help="Also low-information: a response this regular expression matches whole "
                                "(case-insensitive; repeatable).")(command)
    command = click.option("--min-chars", type=int, default=0, show_default=True,
                           help="Also low-information: a response with fewer characters than this "
                                "(punctuation, spaces and emoji not counted; 0: off).")(command)
    return click.option("--type", "format_name", type=click.Choice(sorted(FORMATS)), default=None,
                        help="Row format of the files (default: detected from their field names).")(command)


def _rules(min_chars: int, patterns: tuple[str, ...]):
    from kto_plugin.data.low_information import LowInformationRules

    try:
        return LowInformationRules(min_chars=min_chars, patterns=tuple(patterns))
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def rich_table(table, cut: int | None = None, row_style=None):
    """A `check_tables.ReportTable` as a rich Table; long texts cut to `cut` characters in the terminal, each
    row styled by `row_style(row)`. Every cell is plain text: an answer that looks like Rich markup (`[/bold]`)
    is shown as written."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    shown = Table(title=escape(table.title))
    for index, column in enumerate(table.columns):
        shown.add_column(column, justify="right" if index in table.numeric else "left", overflow="fold")
    for row in table.rows:
        cells = [Text(str(cell) if cut is None or index in table.numeric else str(cell)[:cut])
                 for index, cell in enumerate(row)]
        shown.add_row(*cells, style=row_style(row) if row_style else None)
    return shown


def print_check_report(report, rows_per_kind: int) -> None:
    from rich.console import Console
    from rich.markup import escape

    from kto_plugin.data.check_tables import (
        CLEAN_ADVICE,
        finding_tables,
        lengths_table,
        problems_table,
        sources_table,
        weights_sentence,
    )

    console = Console()
    console.print(rich_table(sources_table(report), row_style=lambda row: "bold" if row[0] == "all" else None))
    if weights_sentence(report):
        console.print(weights_sentence(report), markup=False)
    if report.prompts:
        console.print("prompts: " + ", ".join(f"{key} {value}" for key, value in report.prompts.items()), markup=False)
    console.print(rich_table(lengths_table(report)))
    # a problem found that hurts training in red: columns rows, hurts training
    console.print(rich_table(problems_table(report), row_style=lambda row: "bold red" if row[1] and row[2] == "yes" else None))
    for table in finding_tables(report, rows_per_kind):
        console.print(rich_table(table, cut=60))
    if report.hurts_training():
        console.print(f"[bold red]{escape(report.verdict())}[/]. {escape(CLEAN_ADVICE)}")
    else:
        console.print(f"[bold green]{escape(report.verdict())}[/]")


@click.command("check")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@low_information_options
@click.option("--tokenizer", "tokenizer_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Local tokenizer folder for token counts (default: the config's, else the embedded stand-in).")
@click.option("--sequence-len", type=int, default=None,
              help=f"Window to check lengths against (default: the config's sequence_len, else {DEFAULT_SEQUENCE_LEN}).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Also write the report as JSON, every problem row included, to this file ('-': standard "
                   "output instead of the tables; use `axolotl-kto check ... --json -` for nothing but the JSON there, "
                   "as `axolotl` prints its logo first).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a self-contained HTML page: length histograms and the problem rows.")
@click.option("--rows", "rows_per_kind", type=int, default=5, show_default=True,
              help="Problem rows shown per kind in the terminal.")
def check(inputs, format_name, field_items, min_chars, patterns, tokenizer_path, sequence_len, json_path, html_path,
          rows_per_kind):
    """Report on feedback data: DATA files (.jsonl .json .parquet .csv, folders of them, saved datasets) or one
    Axolotl CONFIG.

    Rows per label and source, token lengths, rows over sequence_len, duplicates, conflicting
    labels, low-information responses, one-class prompts and the class weights
    kto_auto_weights would pick. Exit code 0 clean, 1 problems that would hurt training,
    2 unreadable input.
    """
    from kto_plugin.data.feedback_files import write_text_atomically

    to_stdout = json_path is not None and str(json_path) == "-"
    json_stream = json_stdout() if to_stdout else None  # before anything else can print to standard output
    rules = _rules(min_chars, patterns)
    try:
        report = run_check(inputs, format_name, tokenizer_path, sequence_len, rules, progress=True,
                           field_names=field_names_option(field_items))
    except MixedInputsError as err:
        raise click.UsageError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - unreadable files, fields that match no format; bugs are re-raised
        if not is_user_error(err):
            raise
        _fail_unreadable(str(err))
    if to_stdout:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2, default=str), file=json_stream)
        json_stream.flush()
    else:
        print_check_report(report, rows_per_kind)
    if json_path is not None and not to_stdout:
        write_text_atomically(json.dumps(report.to_json(), ensure_ascii=False, indent=2, default=str) + "\n", json_path)
        click.echo(f"JSON report written to {json_path}")
    if html_path is not None:
        from kto_plugin.data.check_html import render_check_html

        write_text_atomically(render_check_html(report), html_path)
        click.echo(f"HTML report written to {html_path}", err=to_stdout)
    sys.exit(1 if report.hurts_training() else 0)


def _beside(out: Path, tag: str, suffix: str | None = None) -> Path:
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}.{tag}{out.suffix if suffix is None else suffix}")


@click.command("clean")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), required=True,
              help="Where the kept rows go, in the format its suffix names (.jsonl .json .parquet .csv), with "
                   "DATA's field names and values.")
@low_information_options
@click.option("--review", "review_path", type=click.Path(path_type=Path), default=None,
              help="Where rows set aside for a person go: conflicting labels, unusable rows (default: OUT with .review).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON report of every removed or set-aside row (default: OUT with .clean-report.json).")
@click.option("--keep-normalised-duplicates", is_flag=True,
              help="Remove only exact duplicates, keep rows that differ in case or spacing.")
@click.option("--force", is_flag=True, help="Replace OUT, the review file and the report if they exist.")
def clean(data, out, format_name, field_items, min_chars, patterns, review_path, report_path, keep_normalised_duplicates,
          force):
    """Write DATA without low-information responses and duplicates; conflicting labels go to a review file.

    DATA is never modified. OUT, the review file and the report are written to hidden temporary
    files and renamed into place together once all are complete: an interrupted clean leaves
    none of them, and a temporary file a killed clean left is removed by the next.
    """
    from rich.console import Console
    from rich.table import Table

    from kto_plugin.data.cleaning import clean_report, plan_clean
    from kto_plugin.data.feedback_examples import examples_from_file
    from kto_plugin.data.feedback_files import atomic_path, output_kind, write_rows_into
    from kto_plugin.data.row_checks import FINDING_KINDS
    from kto_plugin.data.row_files import is_saved_dataset
    from kto_plugin.errors import DataError

    rules = _rules(min_chars, patterns)
    review_path = review_path or _beside(out, "review")
    report_path = report_path or _beside(out, "clean-report", ".json")
    for path in (out, review_path, report_path):
        if data.exists() and path.exists() and path.resolve() == data.resolve():
            raise click.UsageError(f"{path} is DATA: clean never modifies its input; write to another path")
    try:
        input_kind = "saved" if is_saved_dataset(data) else data.suffix
        out_kind, review_kind = output_kind(out, input_kind), output_kind(review_path, input_kind)
    except DataError as err:
        raise click.UsageError(str(err)) from None
    existing = [path for path in (out, review_path, report_path) if path.exists()]
    if existing and not force:
        raise click.UsageError(f"{', '.join(map(str, existing))} already exist(s): pass --force to replace")
    try:
        feedback, fmt, examples, unusable = examples_from_file(data, format_name, field_names=field_names_option(field_items))
    except Exception as err:  # noqa: BLE001 - unreadable files, fields that match no format; bugs are re-raised
        if not is_user_error(err):
            raise
        _fail_unreadable(str(err))
    plan = plan_clean(len(feedback.rows), examples, unusable, rules, keep_normalised_duplicates)
    review_rows = plan.indices("review")
    paths = {"input": str(data), "output": str(out), "review_file": str(review_path) if review_rows else None,
             "format": fmt.name}
    report = clean_report(plan, feedback.rows, paths)
    report_text = json.dumps(report, ensure_ascii=False, indent=2, default=str)
    try:  # all three renamed into place only once all are written: an interrupted clean leaves none of them
        with ExitStack() as outputs:
            def temporary(path: Path, kind: str = "json") -> Path:
                return outputs.enter_context(atomic_path(path, directory=kind == "saved"))

            temporary(report_path).write_text(report_text + "\n", encoding="utf-8")
            if review_rows:
                write_rows_into((feedback.rows[i] for i in review_rows), review_kind,
                                temporary(review_path, review_kind), review_path)
            write_rows_into((feedback.rows[i] for i in plan.keep), out_kind, temporary(out, out_kind), out)
    except Exception as err:  # noqa: BLE001 - rows the output's format cannot hold; bugs are re-raised
        if not is_user_error(err):
            raise
        _fail_unreadable(str(err))

    table = Table(title=f"clean {data} -> {out}")
    table.add_column("rows")
    table.add_column("count", justify="right")
    table.add_row("read", str(plan.rows_read))
    table.add_row("kept", str(len(plan.keep)), style="bold green")
    for action in ("removed", "review"):
        for kind, count in sorted(plan.counts(action).items()):
            where = "removed" if action == "removed" else f"to review ({review_path})"
            table.add_row(f"{where}: {FINDING_KINDS[kind][0]}", str(count))
    Console().print(table)
    click.echo(f"report of every removed or set-aside row: {report_path}")

