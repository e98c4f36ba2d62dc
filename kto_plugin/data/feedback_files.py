"""Feedback files as their raw rows, and written back in the same format: what `check` and `clean` read and write.

`read_feedback_file` keeps every row exactly as the file has it (field names, extra fields,
values) with its line number, so `clean` can write the kept rows back unchanged:

- `.jsonl` (and `.json` holding JSON Lines): one object per line; a malformed line stops
  the read with its file and line;
- `.json` holding an array of objects;
- `.parquet`, `.csv`, and a folder saved with `datasets.Dataset.save_to_disk`.

`write_feedback_rows` writes rows in a given format atomically: to a hidden temporary
file beside the output, renamed over it only once complete, so an interrupted write
leaves no partial output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable

from kto_plugin.data.located_examples import RowLocator
from kto_plugin.data.sources import DataFileError, is_json_array_file, iter_json_lines, load_json_array

KINDS_BY_SUFFIX = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
READABLE = "a .jsonl, .json, .parquet or .csv file, or a folder saved with Dataset.save_to_disk"


class UnreadableDataError(DataFileError):
    """Input that cannot be read as feedback rows: missing, malformed, empty, or of an unknown kind."""


@dataclass
class FeedbackFile:
    path: Path
    kind: str  # jsonl | json | parquet | csv | saved
    rows: list[dict]
    line_numbers: list[int] | None = None

    @cached_property
    def where(self) -> RowLocator:
        """Names a row: `data/feedback.jsonl line 12` (JSON Lines), else `data/feedback.parquet row 12`."""
        return RowLocator(str(self.path), self.line_numbers)


def feedback_kind(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return "saved"
        raise UnreadableDataError(
            f"{path} is a folder but not a saved dataset (no dataset_info.json or dataset_dict.json): "
            f"pass the data files inside it, or {READABLE}"
        )
    if not path.exists():
        raise UnreadableDataError(f"{path} does not exist")
    kind = KINDS_BY_SUFFIX.get(path.suffix.lower())
    if kind is None:
        raise UnreadableDataError(f"{path}: unknown file type {path.suffix!r}; expected {READABLE}")
    return kind


def _json_array(path: Path, handle) -> list[dict]:
    rows = load_json_array(path, handle)
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise UnreadableDataError(f"{path} row {bad + 1}: each element must be a JSON object, got {type(rows[bad]).__name__}")
    return rows


def read_feedback_file(path: Path) -> FeedbackFile:
    """Every row of a feedback file as a dict, in order, with line numbers for JSON Lines."""
    path = Path(path)
    kind = feedback_kind(path)
    if kind in ("jsonl", "json"):
        with open(path, encoding="utf-8") as handle:
            try:
                if is_json_array_file(path, handle):
                    feedback = FeedbackFile(path, "json", _json_array(path, handle))
                else:
                    numbered = list(iter_json_lines(path, handle))
                    feedback = FeedbackFile(path, "jsonl", [row for _, row in numbered], [n for n, _ in numbered])
            except UnicodeDecodeError as err:
                raise UnreadableDataError(f"{path}: not UTF-8 text ({err.reason})") from None
    else:
        feedback = FeedbackFile(path, kind, _read_with_datasets(path, kind))
    if not feedback.rows:
        raise UnreadableDataError(f"{path} has no rows")
    return feedback


def _read_with_datasets(path: Path, kind: str) -> list[dict]:
    import datasets

    try:
        if kind == "saved":
            dataset = datasets.load_from_disk(str(path))
            if isinstance(dataset, datasets.DatasetDict):
                split = "train" if "train" in dataset else next(iter(dataset))
                dataset = dataset[split]
        elif kind == "parquet":
            dataset = datasets.Dataset.from_parquet(str(path))
        else:
            dataset = datasets.Dataset.from_csv(str(path))
    except Exception as err:  # the readers raise many kinds; all mean "cannot read this"
        raise UnreadableDataError(f"{path}: cannot be read as {kind} ({type(err).__name__}: {err})") from None
    return dataset.to_list()


@contextmanager
def atomic_path(out: Path, directory: bool = False):
    """Yield a hidden temporary path beside `out`; rename it over `out` when the block completes.

    If the block fails or is interrupted (KeyboardInterrupt too), the temporary is removed
    and `out` is left as it was.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out.name}.partial-"
    if directory:
        temporary = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=prefix, dir=out.parent)
        os.close(handle)
        temporary = Path(name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; the output gets the usual permissions
    try:
        yield temporary
        if directory and out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(temporary, out)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(text: str, out: Path) -> None:
    with atomic_path(Path(out)) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _write_into(rows: Iterable[dict], kind: str, temporary: Path) -> int:
    count = 0
    if kind == "jsonl":
        with open(temporary, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        return count
    rows = list(rows)
    if kind == "json":
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
        return len(rows)
    import datasets

    dataset = datasets.Dataset.from_list(rows)
    if kind == "parquet":
        dataset.to_parquet(str(temporary))
    elif kind == "csv":
        dataset.to_csv(str(temporary), index=False)
    else:
        shutil.rmtree(temporary)
        dataset.save_to_disk(str(temporary))
    return len(rows)


def write_feedback_rows(rows: Iterable[dict], kind: str, out: Path, force: bool = False) -> int:
    """Write rows to `out` in `kind`'s format, atomically; return how many were written.

    An existing `out` is replaced only with `force`. Until the rows are all written they
    sit in a hidden `.OUT.partial-*` beside `out`, removed if the write fails or is interrupted.
    """
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists: pass --force to replace it")
    with atomic_path(out, directory=kind == "saved") as temporary:
        return _write_into(rows, kind, temporary)
