"""Shared fixtures: an offline environment, a private plugin cache, the embedded tiny model, a fresh plugin registry.

Plain helper functions (configs, `axolotl train` in a subprocess) are in `helpers.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "AXOLOTL_DO_NOT_TRACK", "DO_NOT_TRACK"):
    os.environ.setdefault(_name, "1")


@pytest.fixture(scope="session")
def plugin_cache(tmp_path_factory) -> Path:
    """A private cache for kto_plugin://tiny-model, also seen by `axolotl` subprocesses."""
    cache = tmp_path_factory.mktemp("kto_plugin_cache")
    os.environ["KTO_PLUGIN_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_model(plugin_cache) -> Path:
    from kto_plugin.embedded.cache import tiny_model_dir
    from kto_plugin.embedded.tiny_model import ensure_tiny_model

    return ensure_tiny_model(tiny_model_dir())


@pytest.fixture(autouse=True)
def fresh_plugin_manager():
    """Axolotl's plugin registry is a process-wide singleton: start each test empty."""
    from axolotl.integrations.base import PluginManager

    PluginManager._instance = None
    yield
    PluginManager._instance = None
