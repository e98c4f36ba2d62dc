"""Feedback files as their raw rows, and written back in the same format: what `check` and `clean` read and write.

`read_feedback_file` keeps every row exactly as the file has it (field names, extra fields,
values) with its line number, so `clean` can write the kept rows back unchanged. It reads
through `data/row_files.py`, the parser training uses: `.jsonl`, `.json`, `.parquet`, `.csv`
(every cell as its text), and a folder saved with `datasets.Dataset.save_to_disk`.

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
from kto_plugin.leftovers import owned_prefix, remove_stale
from kto_plugin.data.row_files import KINDS_BY_SUFFIX, DataFileError, data_files_in, is_saved_dataset, open_row_file


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


def read_feedback_file(path: Path) -> FeedbackFile:
    """Every row of one feedback file (or saved dataset) as a dict, in order, read as training reads it."""
    path = Path(path)
    if path.is_dir() and not is_saved_dataset(path):
        files = ", ".join(str(file) for file in data_files_in(path)[:5])
        raise DataFileError(f"{path} is a folder of data files ({files}...): pass one file")
    row_file = open_row_file(path)
    return FeedbackFile(row_file.path, row_file.kind, row_file.rows(), row_file.line_numbers)


@contextmanager
def atomic_path(out: Path, directory: bool = False):
    """Yield a hidden temporary path beside `out`; rename it over `out` when the block completes.

    If the block fails or is interrupted (KeyboardInterrupt too), the temporary is removed
    and `out` is left as it was. A temporary a killed process left (SIGKILL: no cleanup ran)
    names its process, and the next write to `out` removes it (`kto_plugin/leftovers.py`).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent, f".{out.name}.partial-")  # what a killed write to `out` left
    prefix = owned_prefix(f".{out.name}.partial-")
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


def output_kind(out: Path, input_kind: str) -> str:
    """The format rows are written to `out` in: its suffix's (.jsonl .json .parquet .csv); a path without a
    suffix is a saved dataset folder when the input is one."""
    kind = KINDS_BY_SUFFIX.get(out.suffix.lower())
    if kind:
        return kind
    if input_kind == "saved" and not out.suffix:
        return "saved"
    raise DataFileError(
        f"{out}: cannot tell which format to write from its name; end it with .jsonl, .json, .parquet or .csv"
        + (" (or no suffix, for a saved dataset folder)" if input_kind == "saved" else "")
    )


def _refuse_nested_in_csv(rows: list[dict], out: Path) -> None:
    for number, row in enumerate(rows, start=1):
        for name, value in row.items():
            if isinstance(value, (list, dict)):
                raise DataFileError(f"{out}: a CSV cell cannot hold field {name!r}'s {type(value).__name__} "
                                    f"(row {number}); write to .jsonl, .json or .parquet instead")


def write_rows_into(rows: Iterable[dict], kind: str, temporary: Path, out: Path) -> int:
    """Write rows in `kind`'s format to `temporary` (from `atomic_path(out)`); errors name `out`."""
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
    import pyarrow

    if kind == "csv":
        _refuse_nested_in_csv(rows, out)
    try:
        dataset = datasets.Dataset.from_list(rows)
    except (pyarrow.ArrowException, TypeError, ValueError) as err:
        raise DataFileError(f"{out}: {kind} needs one type per field, and these rows mix them ({err}); "
                            "write to .jsonl or .json instead") from None
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
        return write_rows_into(rows, kind, temporary, out)
