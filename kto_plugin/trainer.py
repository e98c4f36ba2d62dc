"""`trainer_cls: kto_plugin.trainer.KTOPluginTrainer`, the short public path (the class lives in `training/`)."""

from kto_plugin.training.trainer import KTOPluginTrainer

__all__ = ["KTOPluginTrainer"]
