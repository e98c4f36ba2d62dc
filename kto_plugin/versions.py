"""What differs between the supported Axolotl / TRL versions, in one place; and this plugin's own version.

Supported stacks: Axolotl 0.19 (TRL 1.9, Python 3.11), 0.20 (TRL 1.13) and 0.21 (TRL 1.14,
Python 3.12). Each difference is found by looking for the feature, not by comparing version
numbers, so a release that back-ports or drops one is still handled. Any module may import
this one; it imports nothing of the plugin.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SOURCE_SUFFIX = "+source"


@cache
def plugin_version() -> str:
    """This plugin's version: the installed distribution's, or, run from a source checkout that pip never installed
    (`PYTHONPATH=.`, as on a machine with no package index), the checkout's `pyproject.toml` version with
    `+source` (the prepared-data cache keys on it; the two never share a folder)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kto-plugin")
    except PackageNotFoundError:
        pass
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == "kto-plugin" and project.get("version"):
            return project["version"] + SOURCE_SUFFIX
    return "0" + SOURCE_SUFFIX


@cache
def axolotl_passes_row_indices() -> bool:
    """Whether a dataset type's transform may be mapped `with_indices`.

    Axolotl 0.21 wraps the transform (`_with_source_columns` in `axolotl/utils/data/rl.py`)
    in a function that takes one positional argument, so a transform that asks for the row
    indices fails with "wrapped() takes 1 positional argument but 2 were given".
    """
    from axolotl.utils.data import rl

    return not hasattr(rl, "_with_source_columns")


@cache
def axolotl_seeds_adapter_init() -> bool:
    """Whether Axolotl seeds torch with `seed:` before it builds the adapter (0.21 does; 0.19 and 0.20 do not)."""
    from axolotl.loaders import adapter

    return hasattr(adapter, "set_seed")


@cache
def trl_kto_fast_path() -> str:
    """What `use_liger_kernel` selects in TRL's KTO trainer, in words for a log line.

    TRL 1.9 computes the loss with Liger's fused KTO loss (kept in `trainer.liger_loss`, which
    drops the class weights); TRL 1.13+ computes completion log-probs in chunks instead.
    """
    from trl import KTOTrainer

    if hasattr(KTOTrainer, "_get_per_token_logps_and_entropies"):
        return "TRL's chunked log-prob path"
    return "the Liger fused KTO loss"


def set_trl_beta(trainer, beta: float) -> None:
    """Set beta where TRL reads it: `trainer.beta`, and on TRL 1.9's Liger path also `trainer.liger_loss.beta`."""
    trainer.beta = beta
    liger_loss = getattr(trainer, "liger_loss", None)
    if liger_loss is not None:
        liger_loss.beta = beta
