"""Prepared rows written to an Arrow file a batch at a time, so a split never exists as Python lists.

`load_split` renders and fits a batch of rows, hands it to `ArrowRowsWriter.write`, and at the
end gets a `datasets.Dataset` memory-mapped from the file: memory stays at one batch whatever
the number of rows. The file lives in a scratch folder (`scratch_folder`): beside the prepared
folders, removed once the split is saved there, or in the system's temporary folder until the
process ends where nothing is saved (`skip_prepare_dataset`).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def row_features():
    from datasets import Features, Value

    return Features({"prompt": Value("string"), "completion": Value("string"), "label": Value("bool")})


class ArrowRowsWriter:
    """Appends prompt / completion / label batches to one Arrow file; `dataset()` maps the finished file."""

    def __init__(self, path: Path):
        from datasets.arrow_writer import ArrowWriter

        self.path = path
        self._writer = ArrowWriter(features=row_features(), path=str(path))
        self._finished = False

    def write(self, prompts: list[str], completions: list[str], labels: list[bool]) -> None:
        if labels:
            self._writer.write_batch({"prompt": prompts, "completion": completions, "label": labels})

    def finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._writer.finalize()
            self._writer.close()

    def dataset(self):
        """The rows written, as a `datasets.Dataset` memory-mapped from the file."""
        from datasets import Dataset

        self.finish()
        return Dataset.from_file(str(self.path))

    def __enter__(self) -> ArrowRowsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.finish()


SCRATCH_PREFIX = "kto_plugin-rows-"


def scratch_folder(parent: Path, keep_until_exit: bool) -> Path:
    """A new folder for row files under `parent`; with `keep_until_exit`, removed when the process ends.

    Its name holds this host and process id: the next run removes the folder of a killed one."""
    from kto_plugin.leftovers import owned_prefix, remove_stale

    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(parent, SCRATCH_PREFIX)  # a killed run's rows
    folder = Path(tempfile.mkdtemp(prefix=owned_prefix(SCRATCH_PREFIX), dir=parent))
    if keep_until_exit:
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
