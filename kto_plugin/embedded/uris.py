"""`kto_plugin://NAME` references in a config: the shipped sample sets and the embedded model."""

from __future__ import annotations

from kto_plugin.embedded.cache import TINY_MODEL_NAME
from kto_plugin.embedded.samples import sample_dataset_path
from kto_plugin.embedded.tiny_model import ensure_tiny_model
from kto_plugin.errors import ConfigError

URI_PREFIX = "kto_plugin://"


def is_plugin_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(URI_PREFIX)


def resolve_dataset_uri(value: str) -> str:
    """`kto_plugin://kto-sample-zh` -> the installed JSONL file; `kto_plugin://kto-sample-zh/train` -> its split (cached)."""
    return str(sample_dataset_path(value.removeprefix(URI_PREFIX)))


def resolve_model_uri(value: str) -> str:
    """`kto_plugin://tiny-model` / `kto_plugin://warm-model` -> the cached folder (the tiny model is made if missing;
    the warm model, which takes an `axolotl train`, by the plugin when a config names it)."""
    from kto_plugin.embedded.warm_model import WARM_MODEL_NAME, warm_model_path

    name = value.removeprefix(URI_PREFIX)
    if name == TINY_MODEL_NAME:
        return str(ensure_tiny_model())
    if name == WARM_MODEL_NAME:
        return str(warm_model_path())
    raise ConfigError(f"unknown model {value!r}: the embedded models are {URI_PREFIX}{TINY_MODEL_NAME} "
                     f"(random weights) and {URI_PREFIX}{WARM_MODEL_NAME} (warmed up on the sample sets)")
