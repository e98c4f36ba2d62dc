"""The labelled file: each decision appended at once under a file lock, flushed and fsynced.

Rows are the plugin's `query_response` format, `{"query", "response", "label"}`, so the file
trains as it is (`type: kto_plugin.query_response`). Accept writes one row labelled true,
reject one labelled false; an edited answer writes the original as rejected and the edit as
accepted. Skips go to a file beside it (`NAME.skipped.jsonl`), so a reopened studio does not
show them again, and nothing untrainable enters the labelled file.

A decision is keyed by its (prompt, original answer). Before appending, the writer reads
under the lock whatever other writers (another tab, another process) appended since it last
looked, and refuses a decision already made: two labellers on one file lose nothing and write
nothing twice. Each look reads only the new bytes, so a long session stays linear.

A last line without its newline is never lost. When it is a whole JSON row (an editor that
saves without a final newline), it gets its newline and counts. When it is not (a writer
killed mid-write), its bytes move, under the lock, to `NAME.torn.jsonl` beside the file, so
the file still trains; its decision was not completed, and the item comes back.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

VERDICTS = ("accept", "reject", "skip")


def item_key(prompt: str, response: str) -> str:
    return hashlib.blake2b(json.dumps([prompt, response], ensure_ascii=False).encode("utf-8"), digest_size=16).hexdigest()


def _is_json_row(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def append_rows_durably(path: Path, rows: list[dict]) -> None:
    """Append JSON Lines in one write, flushed and fsynced (the caller holds the lock)."""
    append_bytes_durably(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8"))


def append_bytes_durably(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class Decision:
    prompt: str
    response: str
    verdict: str  # accept | reject | skip
    edited: str | None = None  # accept with a changed answer: the edit is accepted, the original rejected
    system: str | None = None  # the prompt's system message, kept in the rows (`query_response`'s `system`)
    extra: dict | None = None  # more fields for the rows (a judge's `score`); never `query`, `response` or `label`

    def rows(self) -> list[dict]:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; expected one of {VERDICTS}")
        head = {} if self.system is None else {"system": self.system}
        tail = {key: value for key, value in (self.extra or {}).items() if key not in ("query", "response", "label")}
        if self.verdict == "skip":
            return [{**head, "query": self.prompt, "response": self.response, **tail}]
        edited = self.edited is not None and self.edited.strip() and self.edited.strip() != self.response.strip()
        if self.verdict == "accept" and edited:
            return [{**head, "query": self.prompt, "response": self.response, "label": False, **tail},
                    {**head, "query": self.prompt, "response": self.edited.strip(), "label": True}]
        return [{**head, "query": self.prompt, "response": self.response, "label": self.verdict == "accept", **tail}]


HELPER_SUFFIXES = (".skipped.jsonl", ".torn.jsonl", ".answers.jsonl")
LOOKED_AT_LINES = 50


def require_labels_file(path: Path) -> None:
    """Refuse a file the studio would append decisions to but is not a labelled file (a run's `kto_metrics.jsonl`,
    a feedback file of another format, the studio's own skip and answer files); a new or empty file is fine."""
    from kto_plugin.errors import ConfigError

    if path.name.endswith(HELPER_SUFFIXES):
        raise ConfigError(f"{path.name} is one of the studio's own files beside a labelled file: name the labelled "
                          f"file itself (without {', '.join(HELPER_SUFFIXES)})")
    if not path.exists():
        return
    with open(path, "rb") as handle:
        lines = [(number, line) for number, line in enumerate(handle, start=1) if line.strip()][:LOOKED_AT_LINES]
    for number, line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not (isinstance(row, dict) and {"query", "response", "label"} <= set(row)):
            raise ConfigError(
                f"{path} is not a labelled file: line {number} is {line.decode('utf-8', 'replace').strip()[:80]!r}, "
                'not a {"query", "response", "label"} row. Name a new file (the studio creates it) or one it wrote; '
                "nothing was written to this one"
            )


def skipped_path_of(labels_path: Path) -> Path:
    """The skip file beside a labelled file: `NAME.skipped.jsonl`."""
    return Path(labels_path).with_name(Path(labels_path).stem + ".skipped.jsonl")


class LabelLog:
    """The decisions in a labelled file (and its skip file), kept current with other writers."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.skipped_path = skipped_path_of(self.path)
        self.torn_path = self.path.with_name(self.path.stem + ".torn.jsonl")
        self.lock = FileLock(str(self.path) + ".lock", timeout=30)
        self._forget()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.refresh()

    def refresh(self) -> None:
        with self.lock:
            self._catch_up()

    def record(self, decision: Decision) -> bool:
        """Append the decision's rows; False (nothing written) when the item was already decided."""
        rows = decision.rows()
        with self.lock:
            self._catch_up()
            if item_key(decision.prompt, decision.response) in self.decided:
                return False
            append_rows_durably(self.skipped_path if decision.verdict == "skip" else self.path, rows)
            self._catch_up()
        return True

    def _catch_up(self) -> None:
        if any((path.stat().st_size if path.exists() else 0) < offset for path, offset in self._read_up_to.items()):
            self._forget()  # a file was replaced or cut by hand: read both again from their start
        for path, skipped in ((self.path, False), (self.skipped_path, True)):
            if not path.exists():
                continue
            with open(path, "rb+") as handle:
                handle.seek(self._read_up_to[path])
                new = handle.read()
                complete = new.rfind(b"\n") + 1
                if complete < len(new):  # a last line without its newline
                    if _is_json_row(new[complete:]):  # a whole row (an editor's file): give it its newline
                        handle.write(b"\n")
                        handle.flush()
                        os.fsync(handle.fileno())
                        new, complete = new + b"\n", len(new) + 1
                    else:  # a torn write: its bytes go beside the file, not into it, and not away
                        append_bytes_durably(self.torn_path, new[complete:] + b"\n")
                        handle.truncate(self._read_up_to[path] + complete)
            self._read_up_to[path] += complete
            for line in new[:complete].splitlines():
                self._count(line, skipped)

    def _forget(self) -> None:
        self.generation = getattr(self, "generation", -1) + 1  # readers of decided_in_order start over when it changes
        self.decided, self.decided_in_order, self.counts, self.unreadable_lines = set(), [], Counter(), 0
        self._read_up_to = {self.path: 0, self.skipped_path: 0}

    def _count(self, line: bytes, skipped: bool) -> None:
        if not line.strip():
            return
        try:
            row = json.loads(line)
            key = item_key(row["query"], row["response"])
        except (ValueError, KeyError, TypeError):
            self.unreadable_lines += 1
            return
        if key not in self.decided:
            self.decided.add(key)
            self.decided_in_order.append(key)
        self.counts["skipped" if skipped else ("accepted" if row.get("label") is True else "rejected")] += 1
