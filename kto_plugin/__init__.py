"""kto-plugin: KTO preference alignment for Axolotl.

Use it from an Axolotl config:

    plugins:
      - kto_plugin.KTOPlugin
    rl: kto
    datasets:
      - path: data/feedback.jsonl
        type: kto_plugin.query_response
"""

from __future__ import annotations

import importlib

# What `kto_plugin.NAME` gives, imported on first use: `import kto_plugin.embedded.cache` (or the CLI's
# lighter commands) then loads no Axolotl and no torch.
_EXPORTS = {
    "FORMATS": "kto_plugin.data.formats",
    "KTOPlugin": "kto_plugin.plugin",
    "KTOPluginArgs": "kto_plugin.args",
    "messages": "kto_plugin.data.strategies",
    "paired": "kto_plugin.data.strategies",
    "prompt_completion": "kto_plugin.data.strategies",
    "query_response": "kto_plugin.data.strategies",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kto_plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
