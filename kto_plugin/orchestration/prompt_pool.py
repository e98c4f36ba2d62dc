"""The prompts `axolotl kto iterate` samples answers for: read once, repeats dropped, a held-out share set aside.

A pool is a .txt file (one prompt per non-blank line) or a data file the plugin reads
(.jsonl .json .csv .parquet) whose rows have the prompt under `query`, `prompt`,
`instruction` or `question`, and an optional `system` message. A prompt that appears twice
(same system message) is kept once, in its first place, so a feedback file's rows (several
answers to one prompt) give its prompts. A shipped sample set is named as in a config:
`kto_plugin://kto-sample-refunds/train`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from kto_plugin.errors import DataError

PROMPT_FIELDS = ("query", "prompt", "instruction", "question")


@dataclass(frozen=True)
class PoolPrompt:
    prompt: str
    system: str | None = None

    def messages(self) -> list[dict]:
        head = [] if self.system is None else [{"role": "system", "content": self.system}]
        return [*head, {"role": "user", "content": self.prompt}]

    def to_json(self) -> dict:
        return {"query": self.prompt, **({} if self.system is None else {"system": self.system})}


def read_prompt_pool(path: Path | str) -> list[PoolPrompt]:
    """The distinct prompts of a file (or a `kto_plugin://` sample set), in file order; a `DataError` says what the
    file lacks."""
    from kto_plugin.data.feedback_files import read_feedback_file
    from kto_plugin.embedded.uris import is_plugin_uri, resolve_dataset_uri

    path = Path(resolve_dataset_uri(path) if is_plugin_uri(path) else path)
    if not path.exists():
        raise DataError(f"the prompt file {path} does not exist")
    if path.suffix.lower() == ".txt":
        found = [PoolPrompt(line.strip()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        feedback = read_feedback_file(path)
        found = []
        for row in feedback.rows:
            prompt = next((row[name] for name in PROMPT_FIELDS if isinstance(row.get(name), str) and row[name].strip()),
                          None)
            if prompt is None:
                raise DataError(f"{path}: row {len(found) + 1} has no prompt under {', '.join(PROMPT_FIELDS)}; "
                                f"its fields are {sorted(row)}")
            system = row.get("system") if isinstance(row.get("system"), str) and row["system"].strip() else None
            found.append(PoolPrompt(prompt.strip(), system))
    distinct = list(dict.fromkeys(found))
    if not distinct:
        raise DataError(f"{path} holds no prompts: write one per line (.txt) or rows with `query` (.jsonl)")
    return distinct


def split_held_out(pool: list[PoolPrompt], share: float, seed: int) -> tuple[list[PoolPrompt], list[PoolPrompt]]:
    """(training prompts, held-out prompts): `share` of the pool (at least one, never all) drawn with `seed`."""
    if len(pool) < 2:
        raise DataError(f"the prompt pool has {len(pool)} prompt: at least 2 are needed to hold one out "
                        "(or name `held_out_prompts`)")
    count = min(len(pool) - 1, max(1, round(share * len(pool))))
    held = set(random.Random(seed).sample(range(len(pool)), count))
    return ([prompt for index, prompt in enumerate(pool) if index not in held],
            [prompt for index, prompt in enumerate(pool) if index in held])


def prompts_of_round(train: list[PoolPrompt], per_round: int | None, round_number: int, seed: int) -> list[PoolPrompt]:
    """The training prompts of one round: all of them, or `per_round` drawn for this round (seed and round fixed)."""
    if per_round is None or per_round >= len(train):
        return list(train)
    chosen = sorted(random.Random(seed * 1000 + round_number).sample(range(len(train)), per_round))
    return [train[index] for index in chosen]
