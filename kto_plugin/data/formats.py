"""The dataset formats: each turns one input row into KTO examples.

A format reads a row (a dict) and returns a list of `KTOExample`: the prompt as chat
messages, the completion text, and the raw label (checked later by `labels.parse_label`).
A row that cannot give an example returns a `DroppedRow` with the reason instead, so the
loader can count and report it. Field names come from the dataset entry
(`field_query: question`, ...), with the defaults in `FORMATS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kto_plugin.errors import DataError, KTOPluginError


class MissingFieldError(KTOPluginError, KeyError):
    """A row lacks a field its format needs."""

    def __init__(self, field: str, setting: str, row: dict):
        self.field = field
        self.setting = setting
        self.present = sorted(key for key, value in row.items() if value is not None)  # null counts as missing
        super().__init__(field)

    def __str__(self) -> str:
        return (
            f"missing field {self.field!r}; the row has {self.present}. "
            f"Rename the column or set `{self.setting}:` in the dataset entry."
        )


@dataclass(frozen=True)
class KTOExample:
    prompt_messages: list[dict[str, str]]
    completion: str
    label: Any


@dataclass(frozen=True)
class DroppedRow:
    reason: str


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    fields: dict[str, str]  # role -> default column name
    optional: frozenset[str]
    to_examples: Callable[[dict, dict[str, str]], list[KTOExample] | DroppedRow]
    example_row: dict

    def field_settings(self, entry: dict | None) -> dict[str, str]:
        """Column names for this entry: `field_<role>` keys override the defaults."""
        entry = entry or {}
        unknown = sorted(key for key in entry if key.startswith("field_") and key[6:] not in self.fields)
        if unknown:
            raise DataError(
                f"{unknown} are not fields of kto_plugin.{self.name}; "
                f"it reads {', '.join(f'field_{role}' for role in self.fields)}"
            )
        return {role: entry.get(f"field_{role}") or column for role, column in self.fields.items()}


def _get(row: dict, fields: dict[str, str], role: str, optional: bool = False) -> Any:
    column = fields[role]
    if column not in row:
        if optional:
            return None
        raise MissingFieldError(column, f"field_{role}", row)
    return row[column]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_text(value: Any, what: str) -> str:
    """Text as written; null is empty. Anything else (a number, a list, NaN) is a bad value, not text to train on."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise DataError(f"{what} must be text, got {type(value).__name__} {_short(value)}")


def _required(row: dict, fields: dict[str, str], role: str) -> Any:
    """A field the example needs: absent or null in this row is a missing field (a misspelt column reads as null
    in rows that lack it, as a dataset gives every row every column)."""
    value = _get(row, fields, role)
    if value is None:
        raise MissingFieldError(fields[role], f"field_{role}", row)
    return value


ROLE_ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}


def _as_message(message: Any) -> dict[str, str]:
    """A {role, content} message; ShareGPT's {from, value} is accepted too."""
    if not isinstance(message, dict):
        raise DataError(f"a message must be an object with role and content, got {message!r}")
    role = message.get("role", message.get("from"))
    content = message.get("content", message.get("value"))
    if role is None:
        raise DataError(f"message without a role: {message!r}")
    role = ROLE_ALIASES.get(str(role).lower(), str(role).lower())
    return {"role": role, "content": _as_text(content, "a message's content")}


def _as_prompt_messages(prompt: Any, what: str) -> list[dict[str, str]]:
    if isinstance(prompt, (list, tuple)):
        return [_as_message(message) for message in prompt]
    return [{"role": "user", "content": _as_text(prompt, what)}]


def _as_completion_text(completion: Any, what: str) -> str:
    if isinstance(completion, (list, tuple)):
        messages = [_as_message(message) for message in completion]
        return "".join(message["content"] for message in messages if message["role"] == "assistant")
    if isinstance(completion, dict):
        return _as_message(completion)["content"]
    return _as_text(completion, what)


def query_response_examples(row: dict, fields: dict[str, str]) -> list[KTOExample]:
    """ms-swift rows: {query, response, label, system?, history?: [[query, response], ...]}."""
    messages: list[dict[str, str]] = []
    system = _as_text(_get(row, fields, "system", optional=True), f"field {fields['system']!r}")
    if system:
        messages.append({"role": "system", "content": system})
    history = _get(row, fields, "history", optional=True)
    if history is not None and not isinstance(history, (list, tuple)):
        raise DataError(f"field {fields['history']!r} must be a list of [query, response] turns, got "
                        f"{type(history).__name__} {_short(history)}")
    for turn in history or []:
        if isinstance(turn, dict):
            messages.append(_as_message(turn))
            continue
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise DataError(f"a history turn must be [query, response], got {_short(turn)}")
        messages.append({"role": "user", "content": _as_text(turn[0], "a history turn's query")})
        messages.append({"role": "assistant", "content": _as_text(turn[1], "a history turn's response")})
    messages.append({"role": "user", "content": _as_text(_required(row, fields, "query"), f"field {fields['query']!r}")})
    response = _as_text(_required(row, fields, "response"), f"field {fields['response']!r}")
    return [KTOExample(messages, response, _get(row, fields, "label"))]


def messages_examples(row: dict, fields: dict[str, str]) -> list[KTOExample] | DroppedRow:
    """{messages: [{role, content}, ...], label}: the last assistant turn is the completion."""
    raw = _required(row, fields, "messages")
    if not isinstance(raw, (list, tuple)):
        raise DataError(f"field {fields['messages']!r} must be a list of messages, got {type(raw).__name__} {_short(raw)}")
    messages = [_as_message(message) for message in raw]
    if not messages or messages[-1]["role"] != "assistant":
        return DroppedRow("messages do not end with an assistant turn")
    return [KTOExample(messages[:-1], messages[-1]["content"], _get(row, fields, "label"))]


def prompt_completion_examples(row: dict, fields: dict[str, str]) -> list[KTOExample]:
    """TRL's unpaired rows: {prompt, completion, label}, strings or message lists."""
    prompt = _as_prompt_messages(_required(row, fields, "prompt"), f"field {fields['prompt']!r}")
    completion = _as_completion_text(_required(row, fields, "completion"), f"field {fields['completion']!r}")
    return [KTOExample(prompt, completion, _get(row, fields, "label"))]


def paired_examples(row: dict, fields: dict[str, str]) -> list[KTOExample]:
    """{prompt, chosen, rejected}: one desirable and one undesirable example per row."""
    prompt = _as_prompt_messages(_required(row, fields, "prompt"), f"field {fields['prompt']!r}")
    chosen = _as_completion_text(_required(row, fields, "chosen"), f"field {fields['chosen']!r}")
    rejected = _as_completion_text(_required(row, fields, "rejected"), f"field {fields['rejected']!r}")
    return [KTOExample(prompt, chosen, True), KTOExample(prompt, rejected, False)]


FORMATS: dict[str, DatasetFormat] = {
    fmt.name: fmt
    for fmt in [
        DatasetFormat(
            "query_response",
            {"query": "query", "response": "response", "label": "label",
             "system": "system", "history": "history"},
            frozenset({"system", "history"}),
            query_response_examples,
            {"system": "You are a polite support agent.",
             "history": [["Hi", "Hello! How can I help?"]],
             "query": "我的订单什么时候到？", "response": "请提供订单号，我帮您查询。", "label": True},
        ),
        DatasetFormat(
            "messages",
            {"messages": "messages", "label": "label"},
            frozenset(),
            messages_examples,
            {"messages": [{"role": "user", "content": "Cancel my plan."},
                          {"role": "assistant", "content": "Do it yourself."}], "label": False},
        ),
        DatasetFormat(
            "prompt_completion",
            {"prompt": "prompt", "completion": "completion", "label": "label"},
            frozenset(),
            prompt_completion_examples,
            {"prompt": [{"role": "user", "content": "Explain VPNs briefly."}],
             "completion": [{"role": "assistant", "content": "A VPN encrypts your traffic."}],
             "label": "good"},
        ),
        DatasetFormat(
            "paired",
            {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
            frozenset(),
            paired_examples,
            {"prompt": "Write a one-line apology.", "chosen": "Sorry for the delay; it ships today.",
             "rejected": "Delays happen."},
        ),
    ]
}


def format_of_type(dataset_type: Any) -> DatasetFormat | None:
    """The plugin format named by a dataset `type:` (`kto_plugin.messages`), else None."""
    if isinstance(dataset_type, str) and dataset_type.startswith("kto_plugin."):
        name = dataset_type.removeprefix("kto_plugin.")
        if name not in FORMATS:
            raise DataError(
                f"unknown dataset type {dataset_type!r}: the plugin provides "
                + ", ".join(f"kto_plugin.{known}" for known in FORMATS)
            )
        return FORMATS[name]
    return None


def detect_format(columns, field_names: dict[str, str] | None = None) -> DatasetFormat:
    """The plugin format whose required fields are all among `columns` (a file's field names); `field_names`
    (`{"field_query": "question"}`, as in a dataset entry) renames a format's fields first."""
    present = set(columns)
    field_names = field_names or {}
    for fmt in FORMATS.values():
        if any(key[len("field_"):] not in fmt.fields for key in field_names):
            continue
        named = fmt.field_settings(field_names)
        if {named[role] for role in fmt.fields if role not in fmt.optional} <= present:
            return fmt
    expected = "; ".join(
        f"{name}: {', '.join(column for role, column in fmt.fields.items() if role not in fmt.optional)}"
        for name, fmt in FORMATS.items()
    )
    raise DataError(f"the rows have fields {sorted(present)}, which match no format ({expected}); pass --type, "
                    "and --field ROLE=COLUMN for fields named otherwise (--field query=question)")
