"""Feedback rows as located examples for `check` and `clean`: every example knows its file, line and row.

Unlike the training loader (`loading`), nothing here stops at the first bad row: a row with
a bad label, a missing field or no assistant answer becomes an `UnusableRow` with its
reason, so a report can list them all.

Two keys compare examples: `exact_key` (the prompt messages and the response as written)
and `normalised_key` (each text case folded, with runs of whitespace made one space).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from kto_plugin.errors import DataError
from kto_plugin.data.feedback_files import read_feedback_file
from kto_plugin.data.formats import FORMATS, DroppedRow, MissingFieldError, detect_format
from kto_plugin.data.labels import InvalidLabelError, parse_label


@dataclass
class FeedbackExample:
    source: str
    where: str
    row_index: int  # the raw row's index in its source; a paired row gives two examples
    prompt: list[dict] | str  # chat messages, or a prompt already rendered (Axolotl's own KTO types)
    completion: str
    label: bool


@dataclass
class UnusableRow:
    source: str
    where: str
    row_index: int
    reason: str


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def exact_key(example: FeedbackExample) -> str:
    prompt = example.prompt if isinstance(example.prompt, str) else json.dumps(example.prompt, ensure_ascii=False)
    return prompt + "\x00" + example.completion


def normalised_prompt_key(example: FeedbackExample) -> str:
    if isinstance(example.prompt, str):
        return _normalise(example.prompt)
    return "\x01".join(f"{message['role']}\x02{_normalise(message['content'])}" for message in example.prompt)


def normalised_key(example: FeedbackExample) -> str:
    return normalised_prompt_key(example) + "\x00" + _normalise(example.completion)


def prompt_preview(example: FeedbackExample, width: int = 80) -> str:
    """The last user turn (or the end of a rendered prompt), on one line."""
    if isinstance(example.prompt, str):
        text = example.prompt[-width:]
    else:
        users = [message["content"] for message in example.prompt if message["role"] == "user"]
        text = users[-1] if users else (example.prompt[-1]["content"] if example.prompt else "")
    return " ".join(text.split())[:width]


def examples_from_rows(rows, fmt, fields: dict, where: Callable[[int], str], source: str,
                       progress: bool = True) -> tuple[list[FeedbackExample], list[UnusableRow]]:
    """Each row through its format; bad rows are kept as UnusableRow with the reason."""
    examples: list[FeedbackExample] = []
    unusable: list[UnusableRow] = []
    for index, row in enumerate(tqdm(rows, desc=f"Reading {source}", leave=False, disable=not progress)):
        try:
            result = fmt.to_examples(row, fields)
            if isinstance(result, DroppedRow):
                raise DataError(result.reason)
            labelled = [(example, parse_label(example.label)) for example in result]
        except (MissingFieldError, InvalidLabelError, TypeError, ValueError) as err:
            unusable.append(UnusableRow(source, where(index), index, str(err)))
            continue
        for example, label in labelled:
            examples.append(FeedbackExample(source, where(index), index, example.prompt_messages, example.completion, label))
    return examples, unusable


def examples_from_file(path: Path, format_name: str | None = None, progress: bool = True):
    """(FeedbackFile, examples, unusable rows) of one file; the format is detected from its fields unless named."""
    feedback = read_feedback_file(path)
    if format_name:
        fmt = FORMATS[format_name]
    else:
        columns: set[str] = set()
        for row in feedback.rows:
            columns.update(row)
        try:
            fmt = detect_format(columns)
        except ValueError as err:
            raise DataError(f"{path}: {err}") from None
    examples, unusable = examples_from_rows(
        feedback.rows, fmt, fmt.field_settings(None), feedback.where, str(path), progress
    )
    return feedback, fmt, examples, unusable


def examples_from_config(cfg: Any, progress: bool = True):
    """(sources, rows read, examples, unusable rows) of a config's `datasets:`, read as training reads them."""
    from kto_plugin.data.formats import format_of_type
    from kto_plugin.data.sources import entry_with_fields, load_entry_rows

    sources, rows_read = [], 0
    examples: list[FeedbackExample] = []
    unusable: list[UnusableRow] = []
    for index, entry in enumerate(cfg.datasets or []):
        entry = entry_with_fields(cfg, "datasets", index, entry)
        dataset, locate = load_entry_rows(entry, cfg)
        sources.append(locate.source)
        rows_read += len(dataset)
        fmt = format_of_type(entry.get("type"))
        if fmt is not None:
            found, bad = examples_from_rows(dataset, fmt, fmt.field_settings(entry), locate, locate.source, progress)
        else:
            found, bad = _axolotl_type_examples(dataset, entry.get("type"), cfg, index, locate)
        examples.extend(found)
        unusable.extend(bad)
    return sources, rows_read, examples, unusable


def _axolotl_type_examples(dataset, dataset_type, cfg, index, locate):
    """Examples from one of Axolotl's own KTO types: their transform renders the prompt."""
    from kto_plugin.data.loading import format_with_axolotl_type, missing_formatted_columns

    examples, unusable = [], []
    for position, row in enumerate(format_with_axolotl_type(dataset, dataset_type, cfg, index, locate.source)):
        try:
            problem = missing_formatted_columns(row, dataset_type)
            if problem:
                raise DataError(problem)
            label = parse_label(row["label"])
        except ValueError as err:
            unusable.append(UnusableRow(locate.source, locate(position), position, str(err)))
            continue
        examples.append(FeedbackExample(locate.source, locate(position), position,
                                        str(row["prompt"] or ""), str(row["completion"] or ""), label))
    return examples, unusable
