"""Where the plugin keeps what it makes, and how `kto_plugin://NAME` references resolve."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

URI_PREFIX = "kto_plugin://"
TINY_MODEL_NAME = "tiny-model"


def cache_dir() -> Path:
    """The project's cache folder: $KTO_PLUGIN_CACHE, else $XDG_CACHE_HOME/kto_plugin."""
    explicit = os.environ.get("KTO_PLUGIN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "kto_plugin"


def tiny_model_dir() -> Path:
    return cache_dir() / TINY_MODEL_NAME


def sample_dataset_names() -> list[str]:
    folder = resources.files("kto_plugin") / "sample_data"
    return sorted(
        entry.name.removesuffix(".jsonl")
        for entry in folder.iterdir()
        if entry.name.endswith(".jsonl")
    )


def sample_dataset_path(name: str) -> Path:
    """Installed path of a shipped sample set, e.g. `kto-sample-zh`."""
    names = sample_dataset_names()
    if name not in names:
        raise ValueError(
            f"unknown sample dataset {name!r}: the plugin ships {', '.join(names)}"
        )
    path = resources.files("kto_plugin") / "sample_data" / f"{name}.jsonl"
    return Path(str(path))


def is_plugin_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(URI_PREFIX)


def resolve_dataset_uri(value: str) -> str:
    """`kto_plugin://kto-sample-zh` -> the installed JSONL file."""
    return str(sample_dataset_path(value.removeprefix(URI_PREFIX)))


def resolve_model_uri(value: str) -> str:
    """`kto_plugin://tiny-model` -> the cached tiny model folder (made if missing)."""
    name = value.removeprefix(URI_PREFIX)
    if name != TINY_MODEL_NAME:
        raise ValueError(
            f"unknown model {value!r}: the only embedded model is {URI_PREFIX}{TINY_MODEL_NAME}"
        )
    from kto_plugin.tiny_model import ensure_tiny_model

    return str(ensure_tiny_model())


DEEPSPEED_PREFIX = "kto_plugin:"


def deepspeed_config_names() -> list[str]:
    folder = resources.files("kto_plugin") / "deepspeed_configs"
    return sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json"))


def deepspeed_config_path(name: str) -> Path:
    """Installed path of a shipped DeepSpeed config: `zero1`, `zero2`, `zero3`, `zero3_offload`."""
    names = deepspeed_config_names()
    if name not in names:
        raise ValueError(
            f"unknown DeepSpeed config {name!r}: the plugin ships {', '.join(names)} "
            f"(use `deepspeed: {DEEPSPEED_PREFIX}zero2`, or a path to your own JSON)"
        )
    return Path(str(resources.files("kto_plugin") / "deepspeed_configs" / f"{name}.json"))
