"""Local data files as rows, parsed one way for `check`, `clean`, `try` and training.

Training used to read files with `datasets`' JSON loader, `check` with Python's `json`, and
they disagreed: with `true` in one row's label and `"yes"` in another's, Arrow turned every
label into JSON text (`'"yes"'`), and a prompt that was a list in one row made every other
prompt gain quotes, silently. Now every local file is read here:

- `.jsonl` (and `.json` holding JSON Lines): one object per line, read a batch at a time
  (a million-row file never sits in memory as Python objects during training); blank lines
  are skipped; a byte-order mark at the start is allowed;
- `.json` holding an array of objects;
- `.csv`: every value is the text the cell holds (`000123` stays `000123`, `TRUE` stays
  `TRUE`, an empty cell is `""`), never a guessed number, boolean or NaN;
- `.parquet`, and a folder saved with `datasets.Dataset.save_to_disk` (their types are real);
- a folder of such files: each file in name order, each row named by its own file.

A line that is not a JSON object, a field given twice in one object (which value was meant?),
text holding half a UTF-16 surrogate pair (not a character) and a file that is not UTF-8
(UTF-16 is named as such) stop the read with the file and line (`DataFileError`). A file with
no rows stops it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

from kto_plugin.data.located_examples import RowLocator
from kto_plugin.errors import DataError


class DataFileError(DataError):
    """A data file that cannot be read as rows: malformed, not UTF-8, empty, or of an unknown kind."""


KINDS_BY_SUFFIX = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
READABLE = "a .jsonl, .json, .parquet or .csv file, a folder of them, or a folder saved with Dataset.save_to_disk"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _refuse_utf16(path: Path, start: bytes) -> None:
    if start.startswith(UTF16_BOMS) or (len(start) >= 4 and start[1:4:2] == b"\x00\x00"):
        raise DataFileError(f"{path} is UTF-16 text; save it as UTF-8 (in most editors: Save As, encoding UTF-8)")


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict:
    row = dict(pairs)
    if len(row) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"field {repeated!r} appears twice in one object: keep the one you mean")
    return row


_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_repeats)


def _lone_surrogate(value: Any) -> str | None:
    """The first text in `value` that is not valid Unicode (half a surrogate pair), if any."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value
        return None
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next((bad for bad in map(_lone_surrogate, children) if bad is not None), None)


def parse_json_value(text: str | bytes, where: str) -> Any:
    """One JSON value as check and training read it; DataFileError naming `where` for anything else."""
    try:
        value = _DECODER.decode(text.decode("utf-8") if isinstance(text, bytes) else text)
    except json.JSONDecodeError as err:
        shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        raise DataFileError(f"{where}: not valid JSON ({err.msg} at column {err.colno}): {shown.strip()[:80]!r}") from None
    except ValueError as err:  # a repeated field, from the hook
        raise DataFileError(f"{where}: {err}") from None
    if ("\\u" in text) if isinstance(text, str) else (b"\\u" in text):
        bad = _lone_surrogate(value)
        if bad is not None:
            raise DataFileError(f"{where}: text {bad.encode('utf-8', 'backslashreplace').decode()[:80]!r} holds half "
                                "of a UTF-16 surrogate pair (\\ud800-\\udfff), which is not a character")
    return value


@dataclass
class RowFile:
    """One local data file (or saved dataset) as rows: `len`, `batches`, `rows` and `where` (the row's name)."""

    path: Path
    kind: str  # jsonl | json | parquet | csv | saved | loaded (by Axolotl's loader)
    split: str | None = None  # of a saved DatasetDict
    line_numbers: list[int] | None = None  # of a JSON Lines file's rows
    _rows: list[dict] | None = field(default=None, repr=False)  # a JSON array's rows
    _dataset: Any = field(default=None, repr=False)  # csv / parquet / saved

    @cached_property
    def where(self) -> RowLocator:
        """Names a row: `data/feedback.jsonl line 12` (JSON Lines), else `data/feedback.parquet row 12`."""
        return RowLocator(str(self.path), self.line_numbers)

    def __len__(self) -> int:
        if self.line_numbers is not None:
            return len(self.line_numbers)
        return len(self._rows) if self._rows is not None else len(self._dataset)

    def batches(self, size: int) -> Iterator[tuple[int, list[dict]]]:
        """(index of the first row, the rows) `size` rows at a time, in file order."""
        if self.kind == "jsonl":
            yield from self._json_line_batches(size)
            return
        for start in range(0, len(self), size):
            if self._rows is not None:
                yield start, self._rows[start:start + size]
            else:
                columns = self._dataset[start:start + size]
                names = list(columns)
                yield start, [dict(zip(names, values)) for values in zip(*(columns[name] for name in names))]

    def rows(self) -> list[dict]:
        return [row for _, batch in self.batches(4096) for row in batch]

    def dataset(self):
        """The rows as a `datasets.Dataset` (for Axolotl's own KTO types, which map over one)."""
        if self._dataset is not None:
            return self._dataset
        import datasets
        import pyarrow

        try:
            return datasets.Dataset.from_list(self.rows())
        except (pyarrow.ArrowException, TypeError, ValueError) as err:
            raise DataFileError(
                f"{self.path}: a field holds values of different types in different rows ({err}); Axolotl's own "
                "KTO types need one type per field: make them agree, or use a plugin format (kto_plugin.*)"
            ) from None

    def _json_line_batches(self, size: int) -> Iterator[tuple[int, list[dict]]]:
        numbers = iter(self.line_numbers or [])
        wanted = next(numbers, None)
        batch: list[dict] = []
        start = 0
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number != wanted:
                    continue
                wanted = next(numbers, None)
                if number == 1 and raw.startswith(UTF8_BOM):
                    raw = raw[len(UTF8_BOM):]
                where = f"{self.path} line {number}"
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataFileError(f"{where}: not UTF-8 text ({err.reason} at byte {err.start + 1}); "
                                        "save the file as UTF-8") from None
                row = parse_json_value(text, where)
                if not isinstance(row, dict):
                    raise DataFileError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
                batch.append(row)
                if len(batch) == size:
                    yield start, batch
                    start, batch = start + size, []
        if batch:
            yield start, batch


def _non_blank_line_numbers(path: Path) -> list[int]:
    with open(path, "rb") as handle:
        return [number for number, raw in enumerate(handle, start=1) if raw.strip() and raw.strip() != UTF8_BOM]


def _starts_as_array(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4096).removeprefix(UTF8_BOM).lstrip().startswith(b"[")


def _json_array_rows(path: Path) -> list[dict]:
    raw = path.read_bytes().removeprefix(UTF8_BOM)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise DataFileError(f"{path} line {line}: not UTF-8 text ({err.reason}); save the file as UTF-8") from None
    try:
        rows = parse_json_value(text, str(path))
    except DataFileError:
        try:
            json.loads(text)
        except json.JSONDecodeError as err:  # say the line of a syntax error
            raise DataFileError(f"{path} line {err.lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
        raise
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise DataFileError(f"{path} row {bad + 1}: each element must be a JSON object, got {type(rows[bad]).__name__}")
    return rows


def _tabular_dataset(path: Path, kind: str, split: str | None):
    import datasets

    try:
        if kind == "csv":
            import pandas

            frame = pandas.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            return datasets.Dataset.from_pandas(frame, preserve_index=False)
        if kind == "parquet":
            return datasets.Dataset.from_parquet(str(path))
        dataset = datasets.load_from_disk(str(path))
    except Exception as err:  # the readers raise many kinds; all mean "cannot read this"
        raise DataFileError(f"{path}: cannot be read as {kind} ({type(err).__name__}: {err})") from None
    if isinstance(dataset, datasets.DatasetDict):
        if split and split not in dataset:
            raise DataFileError(f"{path} has no split {split!r}; it has {sorted(dataset)}")
        dataset = dataset[split or ("train" if "train" in dataset else next(iter(dataset)))]
    return dataset


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists())


def open_row_file(path: Path, kind: str | None = None, split: str | None = None) -> RowFile:
    """One file (or saved dataset) ready to read; its kind from the suffix unless given (`json` covers JSON Lines)."""
    path = Path(path)
    if is_saved_dataset(path):
        return RowFile(path, "saved", split, _dataset=_tabular_dataset(path, "saved", split))
    if not path.exists():
        raise DataFileError(f"{path} does not exist")
    kind = kind or KINDS_BY_SUFFIX.get(path.suffix.lower())
    if kind is None:
        raise DataFileError(f"{path}: unknown file type {path.suffix!r}; expected {READABLE}")
    with open(path, "rb") as handle:
        _refuse_utf16(path, handle.read(4))
    if kind in ("json", "jsonl"):
        if _starts_as_array(path):
            row_file = RowFile(path, "json", _rows=_json_array_rows(path))
        else:
            row_file = RowFile(path, "jsonl", line_numbers=_non_blank_line_numbers(path))
    else:
        row_file = RowFile(path, kind, split, _dataset=_tabular_dataset(path, kind, split))
    if not len(row_file):
        raise DataFileError(f"{path} has no rows" + (" (it is empty)" if not path.stat().st_size else " (only blank lines)"
                                                       if kind in ("json", "jsonl") else ""))
    return row_file


def data_files_in(folder: Path) -> list[Path]:
    """The data files of a folder that is not a saved dataset, in name order (hidden files and folders skipped)."""
    found = sorted(
        path for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in KINDS_BY_SUFFIX
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not found:
        raise DataFileError(f"{folder} is a folder with no data files in it; expected {READABLE}")
    return found


def open_row_files(path: Path, kind: str | None = None, split: str | None = None) -> list[RowFile]:
    """A file, a saved dataset, or each data file of a folder, ready to read."""
    path = Path(path)
    if path.is_dir() and not is_saved_dataset(path):
        return [open_row_file(file, kind, split) for file in data_files_in(path)]
    return [open_row_file(path, kind, split)]
