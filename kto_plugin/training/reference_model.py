"""No second model loaded for a KTO full fine-tune's reference: Axolotl's copy is never used.

For every full fine-tune of an RL method (no adapter) Axolotl loads the base model a second
time as the reference (`axolotl/train.py: setup_reference_model`), but its trainer builder
hands that copy only to DPO and IPO (`core/builders/rl.py`): the KTO trainer never receives
it. TRL's KTO trainer then finds its reference itself: with the reference cache on
(`kto_ref_cache: auto`) the pass before training runs on the not yet trained policy and no
reference is kept; with it off, TRL loads its own copy. Axolotl's copy only cost a whole
model load and, until the trainer was built, a model's memory on every GPU (three copies
with the cache off). `skip_unused_reference_model` makes that load return nothing for
`rl: kto`, and says so.
"""

from __future__ import annotations

from kto_plugin.log import get_logger
from kto_plugin.training.training_args import reference_cache_on, rl_is_kto

LOG = get_logger(__name__)


def skip_unused_reference_model(cfg) -> bool:
    """For `rl: kto`, Axolotl's reference model load returns None (logged); True if patched."""
    if not rl_is_kto(cfg.get("rl")):
        return False
    from axolotl import train

    load_reference = getattr(train, "setup_reference_model", None)
    if load_reference is None or getattr(load_reference, "kto_plugin_skips", False):
        return load_reference is not None

    def setup_reference_model(cfg, *args, **kwargs):
        if not rl_is_kto(cfg.rl):  # the patch is process-wide; another method's run loads as before
            return load_reference(cfg, *args, **kwargs)
        if not cfg.adapter:
            LOG.info("KTO: Axolotl's separate reference model is not loaded (its KTO trainer never receives it); "
                     + ("the reference pass runs on the model before its first step" if reference_cache_on(cfg)
                        else "TRL loads its own reference copy"))
        return None

    setup_reference_model.kto_plugin_skips = True
    train.setup_reference_model = setup_reference_model
    return True
