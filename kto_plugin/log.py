"""Loggers whose INFO lines Axolotl shows.

Axolotl's log filter passes INFO only for loggers named `axolotl*` (others need WARNING),
so the plugin logs under `axolotl.kto_plugin.*`.
"""

from __future__ import annotations

import logging


def get_logger(module_name: str) -> logging.Logger:
    return logging.getLogger(f"axolotl.{module_name}")
