"""The shipped sample feedback sets (package data in `embedded/sample_data/`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_FOLDER = resources.files("kto_plugin.embedded") / "sample_data"


def sample_dataset_names() -> list[str]:
    return sorted(entry.name.removesuffix(".jsonl") for entry in _FOLDER.iterdir() if entry.name.endswith(".jsonl"))


def sample_dataset_path(name: str) -> Path:
    """Installed path of a shipped sample set, e.g. `kto-sample-zh`."""
    names = sample_dataset_names()
    if name not in names:
        raise ValueError(f"unknown sample dataset {name!r}: the plugin ships {', '.join(names)}")
    return Path(str(_FOLDER / f"{name}.jsonl"))


HELD_OUT_PER_SET = 4


def held_out_queries() -> frozenset[str]:
    """The prompts (`query`) nothing trains on in the warm-up and the pipeline: 4 per sample set, drawn with seed 0."""
    import json
    import random

    rng = random.Random(0)
    held = set()
    for name in ("kto-sample-en", "kto-sample-zh"):
        lines = sample_dataset_path(name).read_text(encoding="utf-8").splitlines()
        prompts = sorted({json.loads(line)["query"] for line in lines})
        held.update(rng.sample(prompts, HELD_OUT_PER_SET))
    return frozenset(held)


def chat_messages(row: dict) -> list[dict[str, str]]:
    """A sample row (system?, history?, query, response) as one chat conversation ending with the response."""
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    for query, response in row.get("history") or []:
        messages += [{"role": "user", "content": query}, {"role": "assistant", "content": response}]
    return messages + [{"role": "user", "content": row["query"]}, {"role": "assistant", "content": row["response"]}]
