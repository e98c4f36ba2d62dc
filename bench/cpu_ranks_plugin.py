"""An Axolotl plugin the bench adds to the runs without kto-plugin (built-in KTO, SFT) when they run on CPU ranks.

Axolotl's multi-process paths assume a GPU (`kto_plugin/distributed/cpu_ranks.py` lists how);
the plugin's own runs get its fixes from `kto_plugin.KTOPlugin`. This applies the same fixes,
and nothing else, so that the built-in KTO and SFT runs of a `--processes 2 --deepspeed ...`
bench start on the same gloo ranks as the plugin's.
"""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin

from kto_plugin.distributed.cpu_ranks import let_axolotl_ranks_run_on_cpu, place_ranks_on_cpu, training_args_for_cpu_ranks

PLUGIN = f"{__name__}.CPURanksPlugin"


class CPURanksPlugin(BasePlugin):
    def register(self, cfg: dict):
        let_axolotl_ranks_run_on_cpu(cfg)

    def get_training_args(self, cfg):
        return training_args_for_cpu_ranks(cfg)

    def load_datasets(self, cfg, preprocess: bool = False):
        place_ranks_on_cpu(cfg)  # the first hook after Axolotl's normalize_config, before the model loader
        return None  # Axolotl loads the data itself
