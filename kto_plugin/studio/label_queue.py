"""The answers waiting for a label: read from a file of unlabelled rows, in file order.

A row needs a prompt and an answer under one of the usual names (`query`, `prompt`,
`instruction`, `question`; `response`, `completion`, `answer`, `output`); a `system` message is
kept in the labelled rows; any other fields (a `label` too) are ignored. Answers generated in the page are appended to such a file
(`NAME.answers.jsonl` beside the labelled file), so they survive a restart and are labelled
like any other file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from kto_plugin.data.feedback_files import read_feedback_file
from kto_plugin.errors import DataError
from kto_plugin.data.label_log import LabelLog, append_rows_durably, item_key

PROMPT_FIELDS = ("query", "prompt", "instruction", "question")
RESPONSE_FIELDS = ("response", "completion", "answer", "output")


@dataclass(frozen=True)
class Item:
    prompt: str
    response: str
    where: str
    key: str = ""  # item_key(prompt, response), computed once
    system: str | None = None  # the row's `system` message, kept in its labelled rows

    def __post_init__(self):
        if not self.key:
            object.__setattr__(self, "key", item_key(self.prompt, self.response))


def _first_text(row: dict, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def read_unlabelled(path: Path) -> list[Item]:
    """The (prompt, answer) rows of a file; an error names the fields it looked for and found."""
    feedback = read_feedback_file(Path(path))
    items = []
    for index, row in enumerate(feedback.rows):
        prompt, response = _first_text(row, PROMPT_FIELDS), _first_text(row, RESPONSE_FIELDS)
        if prompt is not None and response is not None:
            system = row.get("system") if isinstance(row.get("system"), str) else None
            items.append(Item(prompt, response, feedback.where(index), system=system))
    if not items:
        found = sorted({name for row in feedback.rows[:100] for name in row})
        raise DataError(
            f"{path}: no row has a prompt ({', '.join(PROMPT_FIELDS)}) and an answer "
            f"({', '.join(RESPONSE_FIELDS)}); its fields are {found}"
        )
    return items


def answers_file_for(labels_path: Path) -> Path:
    return Path(labels_path).with_name(Path(labels_path).stem + ".answers.jsonl")


def append_answers(path: Path, pairs: list[tuple[str, str]]) -> int:
    """Append generated (prompt, answer) pairs as unlabelled rows, durably, under the file's lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=30):
        append_rows_durably(path, [{"query": prompt, "response": answer} for prompt, answer in pairs])
    return len(pairs)


class LabelQueue:
    """The items of one source not yet decided in one labelled file, shared by every tab on them."""

    def __init__(self, source: Path, items: list[Item], log: LabelLog):
        self.source = Path(source)
        self.items = items
        self.log = log
        self._cursor = 0  # every item before it is decided
        self._keys = {item.key for item in items}
        self._decided_seen = 0  # how many of log.decided_in_order have been counted
        self._decided_here = 0  # distinct answers of this source decided so far
        self._generation = log.generation

    def next_item(self) -> Item | None:
        """The first item not decided in the labelled file (by this tab or any other writer)."""
        self.log.refresh()
        self._start_over_if_the_log_did()
        while self._cursor < len(self.items) and self.items[self._cursor].key in self.log.decided:
            self._cursor += 1
        return self.items[self._cursor] if self._cursor < len(self.items) else None

    def _start_over_if_the_log_did(self) -> None:
        """The labelled file was replaced or cut by hand, so the log read it again: so does the queue."""
        if self._generation != self.log.generation:
            self._generation, self._cursor, self._decided_seen, self._decided_here = self.log.generation, 0, 0, 0

    def distinct(self) -> int:
        return len(self._keys)

    def remaining(self) -> int:
        """Distinct answers of this source not decided yet (counted from what the log read since last time)."""
        self._start_over_if_the_log_did()
        new = self.log.decided_in_order[self._decided_seen:]
        self._decided_seen += len(new)
        self._decided_here += sum(1 for key in new if key in self._keys)
        return len(self._keys) - self._decided_here
