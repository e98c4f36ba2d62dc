"""Turn the label values users bring into KTO's desirable (True) / undesirable (False)."""

from __future__ import annotations

from typing import Any

from kto_plugin.errors import DataError

DESIRABLE_WORDS = frozenset({"true", "yes", "accept", "good", "1"})
UNDESIRABLE_WORDS = frozenset({"false", "no", "reject", "bad", "0"})
ACCEPTED_LABELS_HELP = (
    "booleans, 0/1, or the strings true/false, yes/no, accept/reject, good/bad (any case)"
)


class InvalidLabelError(DataError):
    """A label value that is not one of the accepted spellings."""


def parse_label(value: Any) -> bool:
    """Return True for a desirable label and False for an undesirable one.

    Raises InvalidLabelError for anything else (None, 2, "maybe", 0.5, ...).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, float) and value in (0.0, 1.0):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in DESIRABLE_WORDS:
            return True
        if word in UNDESIRABLE_WORDS:
            return False
    raise InvalidLabelError(f"invalid label {value!r}: use {ACCEPTED_LABELS_HELP}")
