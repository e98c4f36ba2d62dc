"""The shipped DeepSpeed ZeRO configs (package data in `distributed/deepspeed_configs/`).

A config names one as `deepspeed: kto_plugin:zero2`; the plugin replaces that with the
installed file's path before Axolotl reads it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from kto_plugin.errors import ConfigError

DEEPSPEED_PREFIX = "kto_plugin:"
_FOLDER = resources.files("kto_plugin.distributed") / "deepspeed_configs"


def deepspeed_config_names() -> list[str]:
    return sorted(entry.name.removesuffix(".json") for entry in _FOLDER.iterdir() if entry.name.endswith(".json"))


def deepspeed_config_path(name: str) -> Path:
    """Installed path of a shipped DeepSpeed config: `zero1`, `zero2`, `zero3`, `zero3_offload`."""
    names = deepspeed_config_names()
    if name not in names:
        raise ConfigError(
            f"unknown DeepSpeed config {name!r}: the plugin ships {', '.join(names)} "
            f"(use `deepspeed: {DEEPSPEED_PREFIX}zero2`, or a path to your own JSON)"
        )
    return Path(str(_FOLDER / f"{name}.json"))


def resolve_deepspeed(value):
    """A `deepspeed:` value with a shipped config's name (`kto_plugin:zero2`) replaced by its installed path."""
    if isinstance(value, str) and value.startswith(DEEPSPEED_PREFIX):
        return str(deepspeed_config_path(value.removeprefix(DEEPSPEED_PREFIX)))
    return value


def zero_stage(deepspeed) -> int | None:
    """The ZeRO stage of a `deepspeed:` value (a path to a JSON file, or the loaded dict), None without one."""
    import json

    if not deepspeed:
        return None
    config = deepspeed if isinstance(deepspeed, dict) else json.loads(Path(deepspeed).read_text(encoding="utf-8"))
    return (config.get("zero_optimization") or {}).get("stage")
