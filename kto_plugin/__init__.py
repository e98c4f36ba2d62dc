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
from kto_plugin.formats import FORMATS
from kto_plugin.plugin import KTOPlugin
from kto_plugin.strategies import messages, paired, prompt_completion, query_response

__all__ = [
    "FORMATS",
    "KTOPlugin",
    "KTOPluginArgs",
    "messages",
    "paired",
    "prompt_completion",
    "query_response",
]
