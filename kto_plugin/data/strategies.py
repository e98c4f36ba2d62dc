"""`type: kto_plugin.<format>` as Axolotl dataset strategies.

On `axolotl train` the plugin's `load_datasets` hook reads these types itself (with row
counts and file/line errors). Commands that bypass plugin dataset loading, such as
`axolotl evaluate`, resolve the type through Axolotl's strategy loader, which imports
`kto_plugin` and calls `kto_plugin.<format>(cfg, dataset_idx=...)`: these functions.
A config that uses these types without listing the plugin (`rl: kto` and a `type:`, but no
`plugins:`) stops here and says to add it. Where Axolotl cannot hand the transform row indices (0.21, see `kto_plugin.versions`), a
bad row is named by its content instead of its number.
"""

from __future__ import annotations

import json
from collections import Counter

from kto_plugin.data.formats import FORMATS
from kto_plugin.errors import ConfigError, print_user_errors_plainly
from kto_plugin.log import get_logger
from kto_plugin.versions import axolotl_passes_row_indices

LOG = get_logger(__name__)
PLUGIN_NAME = "kto_plugin.KTOPlugin"


def _row_preview(row: dict, width: int = 80) -> str:
    """The row itself, cut short: where Axolotl gives no row numbers, this is what finds it in the file."""
    text = json.dumps(row, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _axolotl_strategy(format_name: str):
    fmt = FORMATS[format_name]

    def strategy(cfg, dataset_idx: int = 0, **kwargs):
        from kto_plugin.data.loading import rendered_rows
        from kto_plugin.data.located_examples import plugin_format_converter
        from kto_plugin.data.sources import entry_with_fields

        if PLUGIN_NAME not in (cfg.get("plugins") or []):
            # Raised from the transform: Axolotl's strategy loader turns an error here into a warning and a
            # "Failed to load dataset transform function" that does not say why.
            print_user_errors_plainly()

            def refuse(*args, **kwargs):
                raise ConfigError(
                    f"`type: kto_plugin.{format_name}` is a kto-plugin format, but the config does not list the "
                    "plugin, so Axolotl's built-in KTO would train without it (its loss, checks and speed). "
                    f"Add to the config:\nplugins:\n  - {PLUGIN_NAME}"
                )

            return refuse, {"batched": True}
        entry = entry_with_fields(cfg, "datasets", dataset_idx, cfg["datasets"][dataset_idx])
        converter = plugin_format_converter(fmt, fmt.field_settings(entry))

        def transform(batch, indices=None, tokenizer=None):
            removed = Counter()
            size = len(next(iter(batch.values()))) if batch else 0
            rows = [{column: values[position] for column, values in batch.items()} for position in range(size)]

            def locate(position: int) -> str:
                return f"{entry.get('path')} " + (
                    f"row {indices[position] + 1}" if indices is not None else f"row {_row_preview(rows[position])}"
                )

            rendered = rendered_rows(rows, 0, converter, tokenizer, locate, removed, source=str(entry.get("path")))
            out = {"prompt": rendered.prompt, "completion": rendered.completion, "label": rendered.label}
            if removed:
                LOG.warning(f"kto_plugin.{format_name}: removed rows from {entry.get('path')}: {dict(removed)}")
            return out

        return transform, {"batched": True, "with_indices": axolotl_passes_row_indices(), "remove_columns": "__all__"}

    strategy.__name__ = format_name
    strategy.__doc__ = f"Axolotl dataset strategy for `type: kto_plugin.{format_name}`."
    return strategy


query_response = _axolotl_strategy("query_response")
messages = _axolotl_strategy("messages")
prompt_completion = _axolotl_strategy("prompt_completion")
paired = _axolotl_strategy("paired")
