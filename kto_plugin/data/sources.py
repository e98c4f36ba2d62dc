"""The raw rows of one `datasets:` / `test_datasets:` entry: local files through the plugin's own reader
(`data/row_files.py`, the same parser `check` and `clean` use), anything else through Axolotl's loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kto_plugin.data.row_files import KINDS_BY_SUFFIX
from kto_plugin.embedded.uris import is_plugin_uri, resolve_dataset_uri


def entry_with_fields(cfg: Any, split_key: str, index: int, entry: Any) -> dict:
    """A dataset entry as a dict, with the `field_*` keys the plugin kept at registration."""
    kept = (cfg.get("kto_dataset_fields") or {}).get(split_key) or []
    fields = kept[index] if index < len(kept) else {}
    return {**{key: value for key, value in dict(entry).items() if value is not None}, **fields}


def resolve_entry_path(entry: dict) -> None:
    """Replace a `kto_plugin://NAME` path in a dataset entry with the installed file."""
    if is_plugin_uri(entry.get("path")):
        entry["path"] = resolve_dataset_uri(entry["path"])


DS_TYPES = {"json": "json", "csv": "csv", "parquet": "parquet"}  # an entry's `ds_type` -> the reader's kind


def _local_data_path(entry: dict) -> Path | None:
    """The entry's local file or folder, when the plugin's reader can read it (else Axolotl's loader does)."""
    path = entry.get("path")
    if not path or entry.get("data_files") or entry.get("name"):
        return None
    candidate = Path(path)
    if not candidate.exists():
        return None
    if entry.get("ds_type"):
        return candidate if entry["ds_type"] in DS_TYPES else None
    if candidate.is_dir() or candidate.suffix.lower() in KINDS_BY_SUFFIX:
        return candidate
    return None


def load_entry_rows(entry: dict, cfg: Any) -> list:
    """One entry's rows: each local file through the plugin's reader (`data/row_files.py`, the parser `check`
    uses), anything else through Axolotl's loader. A list of RowFiles: a folder of files gives one per file."""
    from kto_plugin.data.row_files import RowFile, open_row_files

    resolve_entry_path(entry)
    local = _local_data_path(entry)
    if local is not None:
        kind = DS_TYPES.get(entry.get("ds_type") or "")
        return open_row_files(local, kind, entry.get("split"))
    from axolotl.utils.data.shared import load_dataset_with_config
    from axolotl.utils.dict import DictDefault
    from datasets import DatasetDict

    dataset = load_dataset_with_config(DictDefault(entry), cfg.hf_use_auth_token, streaming=False)
    if isinstance(dataset, DatasetDict):
        dataset = dataset[entry.get("split") or "train"]
    return [RowFile(Path(str(entry.get("path"))), "loaded", _dataset=dataset)]
