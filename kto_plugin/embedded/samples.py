"""The shipped sample feedback sets (package data in `embedded/sample_data/`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from kto_plugin.errors import ConfigError

_FOLDER = resources.files("kto_plugin.embedded") / "sample_data"


def sample_dataset_names() -> list[str]:
    return sorted(entry.name.removesuffix(".jsonl") for entry in _FOLDER.iterdir() if entry.name.endswith(".jsonl"))


SPLITS = ("train", "held-out", "reworded")


def sample_dataset_path(name: str) -> Path:
    """Installed path of a shipped sample set, e.g. `kto-sample-zh`; `kto-sample-zh/train` and
    `kto-sample-zh/held-out` are its rows without / with the held-out prompts, and
    `kto-sample-zh/reworded` the rows of some trained prompts under a wording nothing trains on
    (`reworded_prompts`); each written to the cache."""
    set_name, _, split = name.partition("/")
    names = sample_dataset_names()
    if set_name not in names:
        raise ConfigError(f"unknown sample dataset {name!r}: the plugin ships {', '.join(names)}, "
                         f"each also as NAME/{' and NAME/'.join(SPLITS)}")
    path = Path(str(_FOLDER / f"{set_name}.jsonl"))
    if not split:
        return path
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r} of {set_name}: the splits are {', '.join(SPLITS)}")
    if split == "reworded" and set_name not in reworded_prompts():
        raise ConfigError(f"{set_name} has no reworded split: only {', '.join(reworded_prompts())} have one "
                         "(its held-out split asks new questions)")
    return _split_file(path, split)


def reworded_prompts() -> dict[str, dict[str, str]]:
    """Per sample set, trained prompt -> a rewording of it that nothing trains on (`sample_data/reworded-prompts.json`)."""
    import json

    return json.loads((_FOLDER / "reworded-prompts.json").read_text(encoding="utf-8"))["sets"]


def warm_up_wordings() -> dict[str, dict[str, list[str]]]:
    """Per sample set, trained prompt -> other wordings of it, read only by the warm-up (`sample_data/warm-up-wordings.json`)."""
    import json

    return json.loads((_FOLDER / "warm-up-wordings.json").read_text(encoding="utf-8"))["sets"]


def _split_lines(path: Path, split: str) -> list[str]:
    import json

    if split == "reworded":
        rewordings = reworded_prompts()[path.stem]
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return [json.dumps({**row, "query": rewordings[row["query"]]}, ensure_ascii=False)
                for row in rows if row["query"] in rewordings]
    held = held_out_queries()
    return [line for line in path.read_text(encoding="utf-8").splitlines()
            if (json.loads(line)["query"] in held) == (split == "held-out")]


def _split_file(path: Path, split: str) -> Path:
    """The rows of `path` whose prompt is (held-out) or is not (train) held out, or its reworded rows, as a file
    in the cache."""
    import os
    import tempfile

    from kto_plugin.embedded.cache import cache_dir

    text = "".join(line + "\n" for line in _split_lines(path, split))
    out = cache_dir() / "sample_splits" / f"{path.stem}.{split}.jsonl"
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        # written beside `out` and renamed over it: ranks and runs reading it never see half a file
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=out.parent, prefix=f".{out.name}.", delete=False) as handle:
            handle.write(text)
        os.replace(handle.name, out)
    return out


HELD_OUT_PER_SET = 4


def held_out_queries() -> frozenset[str]:
    """The prompts (`query`) nothing trains on in the warm-up, the quickstart and the pipeline: 4 per
    sample set of real-looking feedback (en, zh), drawn with seed 0, and the refund desk's held-out
    questions (`refund_desk.split_questions`: 16 (product, days) combinations, 48 prompts)."""
    import json
    import random

    from kto_plugin.embedded.refund_desk import split_questions

    rng = random.Random(0)
    held = set()
    for name in ("kto-sample-en", "kto-sample-zh"):
        lines = sample_dataset_path(name).read_text(encoding="utf-8").splitlines()
        prompts = sorted({json.loads(line)["query"] for line in lines})
        held.update(rng.sample(prompts, HELD_OUT_PER_SET))
    held.update(question.prompt for question in split_questions()[1])
    return frozenset(held)


def chat_messages(row: dict) -> list[dict[str, str]]:
    """A sample row (system?, history?, query, response) as one chat conversation ending with the response."""
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    for query, response in row.get("history") or []:
        messages += [{"role": "user", "content": query}, {"role": "assistant", "content": response}]
    return messages + [{"role": "user", "content": row["query"]}, {"role": "assistant", "content": row["response"]}]
