"""The prepared KTO rows kept on disk under `dataset_prepared_path`, as Axolotl keeps its own types'.

`axolotl preprocess CONFIG` reads, checks, renders and fits every row once and saves the
result (an Arrow dataset per split, `train` and `test`) in

    <dataset_prepared_path or last_run_prepared>/kto_plugin-<key>/

where the key is a hash of everything the rows depend on: the `datasets:` and
`test_datasets:` entries with their `field_*` keys, the content of every local file or
folder they read, the tokenizer (its vocabulary, special tokens and chat template),
`sequence_len`, `excess_length_strategy`, the split and shuffle settings, and the plugin's
version. `axolotl train` with the same key loads the saved rows instead of preparing them
again; any change gives a new key (Axolotl's own key has no file content, so an edited
file is silently reused there). Loaded from disk, the rows are memory-mapped, and the
tokenization TRL does next is cached by `datasets` in the same folder: a second run
tokenizes nothing either.

The saved rows carry checksums (in `kto_report.json`): rows edited, cut short or missing on
disk are prepared again, with a warning, never trained on.

Ranks take turns under a file lock: the first prepares and saves (to a temporary folder,
then renamed), the others find the folder and load it. `skip_prepare_dataset: true` turns
saving and loading off.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kto_plugin.leftovers import owned_prefix, remove_stale
from kto_plugin.log import get_logger

LOG = get_logger(__name__)

FOLDER_PREFIX = "kto_plugin-"
PARTIAL_PREFIX = ".kto_plugin-partial-"
REPORT_FILE = "kto_report.json"
FORMAT_VERSION = 2  # 2: checksums of the saved rows
# The config keys that change which rows come out of the data stage, or their order.
ROW_KEYS = (
    "datasets", "test_datasets", "kto_dataset_fields", "sequence_len", "excess_length_strategy",
    "shuffle_merged_datasets", "seed", "val_set_size", "chat_template", "chat_template_jinja",
)


def _hash_local_path(hasher, path: Path) -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file() and "cache-" not in p.name) if path.is_dir() else [path]
    for file in files:
        hasher.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)


def _entry_paths(entry: Any) -> list[Path]:
    if not isinstance(entry, dict):
        return []
    candidates = [entry.get("path")]
    data_files = entry.get("data_files")
    candidates += data_files if isinstance(data_files, list) else [data_files]
    return [Path(value) for value in candidates if isinstance(value, str) and Path(value).exists()]


def tokenizer_digest(tokenizer) -> str:
    """Hash of what rendering and length fitting read from the tokenizer."""
    hasher = hashlib.blake2b(digest_size=16)
    parts = [type(tokenizer).__name__, tokenizer.name_or_path, len(tokenizer), tokenizer.chat_template,
             str(tokenizer.special_tokens_map), getattr(tokenizer, "truncation_side", None)]
    hasher.update(json.dumps(parts, default=str).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        hasher.update(backend.to_str().encode())
    else:
        hasher.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    return hasher.hexdigest()


def prepared_key(cfg, tokenizer) -> str:
    """The hash that names a prepared folder (see the module docstring for what it covers)."""
    from kto_plugin.versions import plugin_version

    hasher = hashlib.blake2b(digest_size=12)
    settings = {key: cfg.get(key) for key in ROW_KEYS}
    hasher.update(json.dumps([FORMAT_VERSION, plugin_version(), settings], sort_keys=True, default=str).encode())
    hasher.update(tokenizer_digest(tokenizer).encode())
    for entry in list(cfg.get("datasets") or []) + list(cfg.get("test_datasets") or []):
        for path in _entry_paths(entry):
            _hash_local_path(hasher, path)
    return hasher.hexdigest()


def prepared_root(cfg) -> Path:
    """`dataset_prepared_path`, or Axolotl's default for it."""
    from axolotl.common.const import DEFAULT_DATASET_PREPARED_PATH

    return Path(cfg.dataset_prepared_path or DEFAULT_DATASET_PREPARED_PATH)


@dataclass(frozen=True)
class PreparedReport:
    """What preparing the splits found, saved beside them (`kto_report.json`) and repeated by a run that loads them."""

    lines: dict[str, str]  # split -> its report line (`SplitReport.line`)
    train_examples: int
    train_desirable: int

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PreparedReport:
        return cls(data["lines"], data["train_examples"], data["train_desirable"])


def prepared_folder(cfg, key: str) -> Path:
    return prepared_root(cfg) / f"{FOLDER_PREFIX}{key}"


def _is_complete(folder: Path) -> bool:
    return (folder / REPORT_FILE).is_file() and (folder / "train").is_dir()


def _split_files(folder: Path) -> list[Path]:
    """The Arrow files `save_to_disk` wrote for a split (its state.json lists them), not the caches `datasets` adds."""
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    return [folder / entry["filename"] for entry in state["_data_files"]]


def _checksums(folder: Path, splits) -> dict[str, str]:
    sums = {}
    for split in splits:
        hasher = hashlib.blake2b(digest_size=16)
        for file in _split_files(folder / split):
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    hasher.update(block)
        sums[split] = hasher.hexdigest()
    return sums


class PreparedRowsChanged(Exception):
    """A prepared folder whose rows are not the ones saved: edited, cut short, or missing files."""


def load_prepared(folder: Path) -> tuple[dict, PreparedReport] | None:
    """({split: Dataset}, the saved report) of a complete prepared folder, or None.

    Raises PreparedRowsChanged when its rows are not byte for byte what was saved (the checksums
    in `kto_report.json`, as the reference cache keeps its own), or cannot be read.
    """
    from datasets import load_from_disk

    if not _is_complete(folder):
        return None
    try:
        saved = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
        if _checksums(folder, saved["splits"]) != saved.get("checksums"):
            raise PreparedRowsChanged("its rows differ from the checksums saved with them")
        splits = {split: load_from_disk(str(folder / split)) for split in saved["splits"]}
    except (OSError, ValueError, KeyError) as err:
        raise PreparedRowsChanged(f"{type(err).__name__}: {err}") from None
    return splits, PreparedReport.from_json(saved)


def save_prepared(folder: Path, splits: dict, report: PreparedReport) -> None:
    """Write the splits, their checksums and the report to a temporary folder, then rename it into place."""
    remove_stale(folder.parent, PARTIAL_PREFIX)  # folders a killed `preprocess` left half written
    temporary = Path(tempfile.mkdtemp(prefix=owned_prefix(PARTIAL_PREFIX), dir=folder.parent))
    for split, dataset in splits.items():
        dataset.save_to_disk(str(temporary / split))
    saved = {**report.to_json(), "splits": list(splits), "checksums": _checksums(temporary, splits)}
    (temporary / REPORT_FILE).write_text(json.dumps(saved, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    temporary.rename(folder)


def _load_checked(folder: Path):
    try:
        return load_prepared(folder)
    except PreparedRowsChanged as err:
        LOG.warning(f"KTO data: the prepared rows in {folder} are not the ones saved there ({err}); "
                    "preparing them again from the data files")
        return None


def load_or_prepare(cfg, tokenizer, prepare: Callable[[Path], tuple[dict, PreparedReport]],
                    rebuild: bool) -> tuple[dict, PreparedReport]:
    """The prepared splits and report: loaded from the prepared folder when its key matches, else prepared and saved.

    `prepare(scratch)` returns ({split: Dataset}, PreparedReport), its rows written to files in the
    folder `scratch` (`data/arrow_rows.py`). `rebuild` (`axolotl preprocess`) prepares and saves
    even when a folder exists.
    """
    from filelock import FileLock

    from kto_plugin.data.arrow_rows import scratch_folder

    if cfg.skip_prepare_dataset:  # nothing written under dataset_prepared_path; the rows' file lives until exit
        return prepare(scratch_folder(Path(tempfile.gettempdir()), keep_until_exit=True))
    folder = prepared_folder(cfg, prepared_key(cfg, tokenizer))
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        loaded = None if rebuild else _load_checked(folder)
        if loaded is not None:
            for line in loaded[1].lines.values():
                LOG.info(f"{line} (prepared earlier)")
            LOG.info(f"KTO data: loaded the prepared rows from {folder} (same data, tokenizer and settings)")
            return loaded
        scratch = scratch_folder(folder.parent, keep_until_exit=False)
        try:
            splits, report = prepare(scratch)
            save_prepared(folder, splits, report)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        LOG.info(f"KTO data: saved the prepared rows to {folder}; runs with the same data and settings load them")
        # Hand out the saved copy: memory-mapped, and the folder where `datasets` caches TRL's tokenization.
        return load_prepared(folder)
