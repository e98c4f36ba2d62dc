"""kto-plugin: KTO preference alignment for Axolotl.

Use it from an Axolotl config:

    plugins:
      - kto_plugin.KTOPlugin
    rl: kto
    datasets:
      - path: data/feedback.jsonl
        type: kto_plugin.query_response
"""

from kto_plugin.args import KTOPluginArgs
from kto_plugin.data.formats import FORMATS
from kto_plugin.data.strategies import messages, paired, prompt_completion, query_response
from kto_plugin.plugin import KTOPlugin

__all__ = [
    "FORMATS",
    "KTOPlugin",
    "KTOPluginArgs",
    "messages",
    "paired",
    "prompt_completion",
    "query_response",
]
