"""One way rows become examples: training, `check`, `clean`, `try`, the held-out probe and the studio all read here.

`located_examples(rows, converter, locate)` takes raw rows in order and yields, for each,
its `LocatedExample`s (one; two for a paired row) or one `UnusableRow` with the reason:

- kind `removed`: the format leaves the row out by design (a `messages` row that does not end
  with an assistant turn); training counts it by reason in its report line;
- kind `invalid`: a bad label, a missing field, a malformed value. `on_invalid="stop"` raises
  `DataRowError("<file> line N: <reason>")` at the first one (training); `"collect"` yields it
  (check, clean), so a report can list them all.

A converter turns one row into (prompt, completion, raw label) triples: `plugin_format_converter`
for the plugin's formats (the prompt as chat messages, rendered later), `axolotl_type_converter`
for rows already formatted by one of Axolotl's own KTO types (the prompt rendered). `RowLocator`
names a row in every message: `data/feedback.jsonl line 12`, or `data.parquet row 3`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from kto_plugin.data.formats import DatasetFormat, DroppedRow
from kto_plugin.data.labels import parse_label
from kto_plugin.errors import DataError, KTOPluginError

Converter = Callable[[dict], "list[tuple[Any, str, Any]] | DroppedRow"]


class DataRowError(DataError):
    """A row that stops the run: bad label, missing field, malformed value."""


@dataclass(frozen=True)
class RowLocator:
    """Names a row in messages: `data/feedback.jsonl line 12`, or `data row 3`."""

    source: str
    line_numbers: list[int] | None = None

    def __call__(self, index: int) -> str:
        if self.line_numbers is not None and index < len(self.line_numbers):
            return f"{self.source} line {self.line_numbers[index]}"
        return f"{self.source} row {index + 1}"


@dataclass
class LocatedExample:
    """One example and where it came from: its source, the row's place in it, and the row's index."""

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
    kind: Literal["invalid", "removed"] = "invalid"


def plugin_format_converter(fmt: DatasetFormat, fields: dict[str, str]) -> Converter:
    """A plugin format's rows: the prompt as chat messages."""

    def convert(row: dict):
        result = fmt.to_examples(row, fields)
        if isinstance(result, DroppedRow):
            return result
        return [(example.prompt_messages, example.completion, example.label) for example in result]

    return convert


def missing_formatted_columns(row: dict, dataset_type) -> str | None:
    """What a row formatted by an Axolotl type lacks of prompt / completion / label, said for an error."""
    missing = [name for name in ("prompt", "completion", "label") if name not in row]
    if not missing:
        return None
    return f"missing {missing} after formatting with type {dataset_type!r}; the row has {sorted(row)}"


def axolotl_type_converter(dataset_type) -> Converter:
    """Rows already formatted by one of Axolotl's own KTO types (`format_with_axolotl_type`): the prompt rendered."""

    def convert(row: dict):
        problem = missing_formatted_columns(row, dataset_type)
        if problem:
            raise DataError(problem)
        return [(str(row["prompt"] or ""), str(row["completion"] or ""), row["label"])]

    return convert


def format_with_axolotl_type(dataset, dataset_type, cfg, index: int, source: str):
    """The rows formatted by one of Axolotl's own KTO types (`chatml.intel`, `llama3.ultra`, a dict ...):
    prompt (already rendered), completion and label columns."""
    from axolotl.prompt_strategies.kto import load as load_kto

    strategy = "user_defined.default" if isinstance(dataset_type, dict) else dataset_type
    if not strategy:
        return dataset
    transform = load_kto(strategy, cfg, dataset_idx=index)
    if transform is None:
        raise DataError(f"unknown KTO dataset type {dataset_type!r} for {source}")
    transform, map_kwargs = transform if isinstance(transform, tuple) else (transform, {})
    return dataset.map(transform, desc=f"Formatting {source}", **map_kwargs)


def located_examples(rows: Iterable[dict], converter: Converter, locate: Callable[[int], str], source: str,
                     start: int = 0, on_invalid: Literal["stop", "collect"] = "collect",
                     ) -> Iterator[LocatedExample | UnusableRow]:
    """Each row's examples, or the row as unusable; see the module's docstring for the two kinds and the policy."""
    for offset, row in enumerate(rows):
        index = start + offset
        try:
            converted = converter(row)
            if isinstance(converted, DroppedRow):
                yield UnusableRow(source, locate(index), index, converted.reason, kind="removed")
                continue
            labelled = [(prompt, completion, parse_label(label)) for prompt, completion, label in converted]
        except (KTOPluginError, TypeError, ValueError) as err:  # a missing field, a bad label, a malformed value
            if on_invalid == "stop":
                raise DataRowError(f"{locate(index)}: {err}") from None
            yield UnusableRow(source, locate(index), index, str(err))
            continue
        where = locate(index)
        for prompt, completion, label in labelled:
            yield LocatedExample(source, where, index, prompt, completion, label)
