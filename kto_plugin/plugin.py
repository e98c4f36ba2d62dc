"""The Axolotl plugin: hooks only; the work lives in the modules they call."""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin

from kto_plugin.log import get_logger
from kto_plugin.paths import is_plugin_uri, resolve_dataset_uri, resolve_model_uri

LOG = get_logger(__name__)


class KTOPlugin(BasePlugin):
    """KTO preference alignment for Axolotl: data formats, checks and sample data."""

    def get_input_args(self) -> str:
        return "kto_plugin.args.KTOPluginArgs"

    def register(self, cfg: dict):
        """Fill what a KTO run needs before Axolotl validates the raw config."""
        # TRL's KTOTrainer reads columns the model signature does not name.
        if cfg.get("remove_unused_columns") is None:
            cfg["remove_unused_columns"] = False
        for key in ("base_model", "tokenizer_config"):
            if is_plugin_uri(cfg.get(key)):
                cfg[key] = resolve_model_uri(cfg[key])
        # Axolotl's dataset schema drops keys it does not know, such as `field_query`:
        # keep each entry's `field_*` keys under `kto_dataset_fields` before validation.
        dataset_fields = {}
        for split_key in ("datasets", "test_datasets"):
            entries = [entry for entry in cfg.get(split_key) or [] if isinstance(entry, dict)]
            for entry in entries:
                if is_plugin_uri(entry.get("path")):
                    entry["path"] = resolve_dataset_uri(entry["path"])
            dataset_fields[split_key] = [
                {key: value for key, value in entry.items() if key.startswith("field_")}
                for entry in entries
            ]
        cfg["kto_dataset_fields"] = dataset_fields

    def add_callbacks_post_trainer(self, cfg, trainer):
        from kto_plugin.metrics_log import MetricsFileCallback

        return [MetricsFileCallback(cfg.output_dir)]

    def load_datasets(self, cfg, preprocess: bool = False):
        from kto_plugin.loading import load_kto_datasets

        return load_kto_datasets(cfg)
