"""`type: kto_plugin.<format>` as Axolotl dataset strategies.

On `axolotl train` the plugin's `load_datasets` hook reads these types itself (with row
counts and file/line errors). Commands that bypass plugin dataset loading, such as
`axolotl evaluate`, resolve the type through Axolotl's strategy loader, which imports
`kto_plugin` and calls `kto_plugin.<format>(cfg, dataset_idx=...)`: these functions.
"""

from __future__ import annotations

from collections import Counter

from kto_plugin.data.formats import FORMATS
from kto_plugin.log import get_logger

LOG = get_logger(__name__)


def _axolotl_strategy(format_name: str):
    fmt = FORMATS[format_name]

    def strategy(cfg, dataset_idx: int = 0, **kwargs):
        from kto_plugin.data.loading import render_row
        from kto_plugin.data.sources import entry_with_fields

        entry = entry_with_fields(cfg, "datasets", dataset_idx, cfg["datasets"][dataset_idx])
        fields = fmt.field_settings(entry)

        def transform(batch, indices, tokenizer):
            out = {"prompt": [], "completion": [], "label": []}
            removed = Counter()
            for position, index in enumerate(indices):
                row = {column: values[position] for column, values in batch.items()}
                where = f"{entry.get('path')} row {index + 1}"
                for prompt, completion, label in render_row(fmt, row, fields, tokenizer, where, removed):
                    out["prompt"].append(prompt)
                    out["completion"].append(completion)
                    out["label"].append(label)
            if removed:
                LOG.warning(f"kto_plugin.{format_name}: removed rows from {entry.get('path')}: {dict(removed)}")
            return out

        return transform, {"batched": True, "with_indices": True, "remove_columns": "__all__"}

    strategy.__name__ = format_name
    strategy.__doc__ = f"Axolotl dataset strategy for `type: kto_plugin.{format_name}`."
    return strategy


query_response = _axolotl_strategy("query_response")
messages = _axolotl_strategy("messages")
prompt_completion = _axolotl_strategy("prompt_completion")
paired = _axolotl_strategy("paired")
