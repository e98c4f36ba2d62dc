"""An Axolotl plugin the bench adds to the runs without kto-plugin (built-in KTO, SFT) when they run on CPU ranks.

Axolotl's multi-process paths assume a GPU (`kto_plugin/distributed/cpu_ranks.py` lists how);
the plugin's own runs get its fixes from `kto_plugin.KTOPlugin`. This applies the same fixes,
and nothing else, so that the built-in KTO and SFT runs of a `--processes 2 --deepspeed ...`
bench start on the same gloo ranks as the plugin's.
"""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin

from kto_plugin.distributed.cpu_ranks import (
    answer_gpu_peer_check_without_gpu,
    let_deepspeed_ranks_join_on_cpu,
    let_fsdp_ranks_run_on_cpu,
    place_ranks_on_cpu,
    start_gloo_backend_if_needed,
    training_args_for_cpu_ranks,
)

PLUGIN = f"{__name__}.CPURanksPlugin"


class CPURanksPlugin(BasePlugin):
    def register(self, cfg: dict):
        answer_gpu_peer_check_without_gpu()
        start_gloo_backend_if_needed(cfg)
        let_deepspeed_ranks_join_on_cpu(cfg)
        let_fsdp_ranks_run_on_cpu(cfg)

    def get_training_args(self, cfg):
        return training_args_for_cpu_ranks(cfg)

    def load_datasets(self, cfg, preprocess: bool = False):
        place_ranks_on_cpu(cfg)  # the first hook after Axolotl's normalize_config, before the model loader
        return None  # Axolotl loads the data itself
