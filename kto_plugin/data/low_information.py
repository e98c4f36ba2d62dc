"""Low-information responses: "ok", "好的", "got it", a lone emoji, answers too short to teach anything.

A response is low-information when, normalised (case folded; whitespace, punctuation,
symbols and emoji removed), it is empty, equals a phrase of the shipped list
(`low_information.txt`, English and Chinese) or a user's extra phrase, has fewer than
`min_chars` characters, or wholly matches one of the user's regular expressions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from kto_plugin.errors import ConfigError


def normalise_for_matching(text: str) -> str:
    """Case folded, with whitespace, punctuation and symbols (emoji included) removed."""
    return "".join(
        char for char in unicodedata.normalize("NFKC", text).casefold()
        if not char.isspace() and unicodedata.category(char)[0] not in "PSZC"
    )


@lru_cache(maxsize=1)
def default_phrases() -> frozenset[str]:
    """The shipped list, normalised."""
    text = files("kto_plugin.data").joinpath("low_information.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return frozenset(normalise_for_matching(line) for line in lines if line and not line.startswith("#"))


@dataclass(frozen=True)
class LowInformationRules:
    """What counts as low-information; the defaults are the shipped list alone."""

    min_chars: int = 0
    patterns: tuple[str, ...] = ()
    extra_phrases: tuple[str, ...] = ()
    use_default_list: bool = True
    _compiled: tuple = field(default=(), init=False, repr=False, compare=False)
    _phrases: frozenset = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self):
        compiled = []
        for pattern in self.patterns:
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as err:
                raise ConfigError(f"--pattern {pattern!r} is not a valid regular expression: {err}") from None
        phrases = (default_phrases() if self.use_default_list else frozenset()) | {
            normalise_for_matching(phrase) for phrase in self.extra_phrases
        }
        object.__setattr__(self, "_compiled", tuple(compiled))
        object.__setattr__(self, "_phrases", frozenset(phrases))

    def reason(self, response: str) -> str | None:
        """Why `response` is low-information, or None when it is not."""
        normalised = normalise_for_matching(response)
        if not normalised:
            return "no words (empty, or only punctuation / emoji)"
        if normalised in self._phrases:
            return f"a stock phrase ({response.strip()[:40]!r})"
        if len(normalised) < self.min_chars:
            return f"shorter than --min-chars {self.min_chars}"
        stripped = response.strip()
        for pattern in self._compiled:
            if pattern.fullmatch(stripped):
                return f"matches --pattern {pattern.pattern!r}"
        return None
