"""Where the plugin keeps what it makes: $KTO_PLUGIN_CACHE, else $XDG_CACHE_HOME/kto_plugin."""

from __future__ import annotations

import os
from pathlib import Path

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
