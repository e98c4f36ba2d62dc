"""Feedback files and a config's datasets as located examples for `check`, `clean`, `try` and the held-out probe.

Rows go through the one reading core (`located_examples`) with the policy that collects bad
rows: a row with a bad label, a missing field or no assistant answer becomes an `UnusableRow`
with its reason, so a report can list them all (training stops at the first instead).

Two keys compare examples: `exact_key` (the prompt messages and the response as written)
and `normalised_key` (each text case folded, with runs of whitespace made one space).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from kto_plugin.data.feedback_files import read_feedback_file
from kto_plugin.data.formats import FORMATS, detect_format
from kto_plugin.data.located_examples import (
    LocatedExample,
    UnusableRow,
    axolotl_type_converter,
    format_with_axolotl_type,
    located_examples,
    plugin_format_converter,
)
from kto_plugin.errors import DataError


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def exact_key(example: LocatedExample) -> str:
    prompt = example.prompt if isinstance(example.prompt, str) else json.dumps(example.prompt, ensure_ascii=False)
    return prompt + "\x00" + example.completion


def normalised_prompt_key(example: LocatedExample) -> str:
    if isinstance(example.prompt, str):
        return _normalise(example.prompt)
    return "\x01".join(f"{message['role']}\x02{_normalise(message['content'])}" for message in example.prompt)


def normalised_key(example: LocatedExample) -> str:
    return normalised_prompt_key(example) + "\x00" + _normalise(example.completion)


def prompt_preview(example: LocatedExample, width: int = 80) -> str:
    """The last user turn (or the end of a rendered prompt), on one line."""
    if isinstance(example.prompt, str):
        text = example.prompt[-width:]
    else:
        users = [message["content"] for message in example.prompt if message["role"] == "user"]
        text = users[-1] if users else (example.prompt[-1]["content"] if example.prompt else "")
    return " ".join(text.split())[:width]


def examples_from_rows(rows, converter, where: Callable[[int], str], source: str,
                       progress: bool = True) -> tuple[list[LocatedExample], list[UnusableRow]]:
    """Each row through `located_examples`, every bad row kept as an UnusableRow with its reason."""
    examples: list[LocatedExample] = []
    unusable: list[UnusableRow] = []
    rows = tqdm(rows, desc=f"Reading {source}", leave=False, disable=not progress)
    for item in located_examples(rows, converter, where, source, on_invalid="collect"):
        (unusable if isinstance(item, UnusableRow) else examples).append(item)
    return examples, unusable


def examples_from_file(path: Path, format_name: str | None = None, progress: bool = True,
                       field_names: dict[str, str] | None = None):
    """(FeedbackFile, format, examples, unusable rows) of one file; the format is detected from its fields unless
    named; `field_names` (`{"field_query": "question"}`) are the `field_*` keys of a dataset entry."""
    feedback = read_feedback_file(path)
    try:
        if format_name:
            fmt = FORMATS[format_name]
        else:
            columns: set[str] = set()
            for row in feedback.rows:
                columns.update(row)
            fmt = detect_format(columns, field_names)
        fields = fmt.field_settings(field_names)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None
    examples, unusable = examples_from_rows(
        feedback.rows, plugin_format_converter(fmt, fields), feedback.where, str(path), progress
    )
    return feedback, fmt, examples, unusable


def examples_from_config(cfg: Any, progress: bool = True):
    """(sources, rows read, examples, unusable rows) of a config's `datasets:`, read as training reads them."""
    from kto_plugin.data.formats import format_of_type
    from kto_plugin.data.sources import entry_with_fields, load_entry_rows

    sources, rows_read = [], 0
    examples: list[LocatedExample] = []
    unusable: list[UnusableRow] = []
    for index, entry in enumerate(cfg.datasets or []):
        entry = entry_with_fields(cfg, "datasets", index, entry)
        fmt = format_of_type(entry.get("type"))
        for row_file in load_entry_rows(entry, cfg):
            locate = row_file.where
            sources.append(locate.source)
            rows_read += len(row_file)
            if fmt is not None:
                rows = (row for _, batch in row_file.batches(4096) for row in batch)
                converter = plugin_format_converter(fmt, fmt.field_settings(entry))
            else:
                rows = format_with_axolotl_type(row_file.dataset(), entry.get("type"), cfg, index, locate.source)
                converter = axolotl_type_converter(entry.get("type"))
            found, bad = examples_from_rows(rows, converter, locate, locate.source, progress)
            examples.extend(found)
            unusable.extend(bad)
    return sources, rows_read, examples, unusable
