"""Read the raw rows of one `datasets:` entry, with file and line numbers for errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kto_plugin.data.located_examples import RowLocator
from kto_plugin.embedded.uris import is_plugin_uri, resolve_dataset_uri
from kto_plugin.errors import DataError


class DataFileError(DataError):
    """A data file that cannot be read as JSON Lines / JSON."""


def entry_with_fields(cfg: Any, split_key: str, index: int, entry: Any) -> dict:
    """A dataset entry as a dict, with the `field_*` keys the plugin kept at registration."""
    kept = (cfg.get("kto_dataset_fields") or {}).get(split_key) or []
    fields = kept[index] if index < len(kept) else {}
    return {**{key: value for key, value in dict(entry).items() if value is not None}, **fields}


def resolve_entry_path(entry: dict) -> None:
    """Replace a `kto_plugin://NAME` path in a dataset entry with the installed file."""
    if is_plugin_uri(entry.get("path")):
        entry["path"] = resolve_dataset_uri(entry["path"])


def iter_json_lines(path: Path, lines):
    """(line number, row) of each non-blank line of a JSON Lines file, read a line at a time.

    Raises DataFileError naming the file and line of the first malformed line or non-object row.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFileError(
                f"{path} line {number}: not valid JSON ({err.msg} at column {err.colno}): "
                f"{line.strip()[:80]!r}"
            ) from None
        if not isinstance(row, dict):
            raise DataFileError(
                f"{path} line {number}: each line must be a JSON object, got {type(row).__name__}"
            )
        yield number, row


def load_json_array(path: Path, handle) -> list:
    """The elements of a file holding one JSON array; DataFileError with the line of a syntax error."""
    try:
        return json.load(handle)
    except json.JSONDecodeError as err:
        raise DataFileError(
            f"{path} line {err.lineno}: not valid JSON ({err.msg} at column {err.colno})"
        ) from None


def is_json_array_file(path: Path, handle) -> bool:
    """A `.json` file whose text starts with `[` (else it is read as JSON Lines); the handle is rewound."""
    start = handle.read(4096).lstrip()
    handle.seek(0)
    return path.suffix.lower() == ".json" and start.startswith("[")


def check_json_file(path: Path) -> list[int]:
    """Parse a local .jsonl/.json file; return the line number of each row.

    Raises DataFileError naming the file and line of the first malformed line.
    """
    with open(path, encoding="utf-8") as handle:
        if is_json_array_file(path, handle):
            return list(range(1, len(load_json_array(path, handle)) + 1))
        return [number for number, _ in iter_json_lines(path, handle)]


def _local_json_file(entry: dict) -> Path | None:
    path = entry.get("path")
    if not path:
        return None
    candidate = Path(path)
    if candidate.is_file() and candidate.suffix in {".jsonl", ".json"}:
        return candidate
    return None


def load_entry_rows(entry: dict, cfg: Any):
    """Load one entry's raw rows with Axolotl's loader; return (dataset, RowLocator)."""
    from axolotl.utils.data.shared import load_dataset_with_config
    from axolotl.utils.dict import DictDefault
    from datasets import DatasetDict

    resolve_entry_path(entry)
    local_file = _local_json_file(entry)
    line_numbers = check_json_file(local_file) if local_file else None
    dataset = load_dataset_with_config(DictDefault(entry), cfg.hf_use_auth_token, streaming=False)
    if isinstance(dataset, DatasetDict):
        split = entry.get("split") or "train"
        dataset = dataset[split]
    return dataset, RowLocator(str(entry.get("path")), line_numbers)
