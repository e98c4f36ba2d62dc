"""A finished training run: what `axolotl train CONFIG` left in `output_dir`, found by one rule.

A run holds either a LoRA adapter (`adapter_config.json` beside `adapter_model.safetensors`
or `.bin`), evaluated as base model + adapter without merging, or full weights
(`config.json` beside `model*.safetensors` or `pytorch_model*.bin`, sharded ones too),
evaluated as they are. Anything else is `NoTrainedModelError`, whose message names the
folder and says to train first. lm-eval (`harness`), `before-after`, the held-out probe,
`compare`, `chat` and the studio all find and load runs through `TrainedRun`.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kto_plugin.errors import ConfigError, MissingFileError

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
FULL_WEIGHTS = ("model*.safetensors", "pytorch_model*.bin")


class NoTrainedModelError(MissingFileError):
    """`output_dir` holds no adapter and no model weights."""


def resolve_base_model(base_model: str | Path) -> str:
    """A model folder or hub name as it is; a `kto_plugin://` name as the cached folder (made if missing)."""
    from kto_plugin.embedded.uris import is_plugin_uri, resolve_model_uri

    return resolve_model_uri(base_model) if is_plugin_uri(base_model) else str(base_model)


def trained_files(output_dir: Path) -> list[Path]:
    """The weight files that make `output_dir` a finished run (empty when it is none)."""
    if (output_dir / "adapter_config.json").exists():
        found = [output_dir / name for name in ADAPTER_WEIGHTS if (output_dir / name).exists()]
        if found:
            return found
    if (output_dir / "config.json").exists():
        return sorted(path for pattern in FULL_WEIGHTS for path in output_dir.glob(pattern))
    return []


def attach_adapter(model, adapter_dir: Path, base_model: str):
    """`PeftModel` of `model` with the adapter in `adapter_dir`; says clearly when they do not fit."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter_dir))
    except (RuntimeError, ValueError, KeyError) as err:
        recorded = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
        raise ConfigError(
            f"the adapter in {adapter_dir} does not match the base model {base_model} "
            f"(the adapter was trained on {recorded}): {str(err).splitlines()[0]}"
        ) from None


@dataclass(frozen=True)
class ModelPair:
    """A run's trained model, and its base model: `with pair.base() as model:`."""

    tokenizer: Any
    tuned: Any
    base_model: Any  # the base model itself for full weights; None when the tuned model is base + adapter

    @contextmanager
    def base(self):
        if self.base_model is not None:
            yield self.base_model
            return
        with self.tuned.disable_adapter():
            yield self.tuned


@dataclass(frozen=True)
class TrainedRun:
    """The trained model in `output_dir`, on top of `base_model`."""

    base_model: str  # resolved: a folder or a hub name
    output_dir: Path
    kind: Literal["adapter", "full"]
    tokenizer_source: str

    @classmethod
    def find(cls, base_model: str | Path, output_dir: str | Path, tokenizer: str | Path | None = None) -> TrainedRun:
        """The run in `output_dir`; `NoTrainedModelError` when it holds no adapter and no weights."""
        output_dir = Path(output_dir)
        files = trained_files(output_dir)
        if not files:
            raise NoTrainedModelError(
                f"{output_dir} holds no trained model (no adapter_config.json with adapter weights, no config.json "
                "with model weights): run `axolotl train CONFIG` first, or train first in the studio's Train tab"
            )
        base = resolve_base_model(base_model)
        kind = "adapter" if files[0].name.startswith("adapter_model") else "full"
        return cls(base, output_dir, kind, str(tokenizer or base))

    @classmethod
    def from_config(cls, cfg, config_dir: Path | None = None) -> TrainedRun:
        """The run of a config (Axolotl's loaded cfg or the YAML's dict). A relative `output_dir` that does
        not exist from the current folder is taken from `config_dir`, where the config lies."""
        if not cfg.get("base_model"):
            raise ConfigError("the config has no base_model: add `base_model: <model folder or kto_plugin://tiny-model>`")
        output_dir = Path(cfg.get("output_dir") or "./outputs")
        if config_dir is not None and not output_dir.is_absolute() and not output_dir.exists():
            output_dir = Path(config_dir) / output_dir
        return cls.find(cfg["base_model"], output_dir, cfg.get("tokenizer_config"))

    def stamp(self) -> float:
        """When the weights were last written: a changed stamp means the run was trained again."""
        return max(path.stat().st_mtime for path in trained_files(self.output_dir))

    def lm_eval_args(self) -> dict:
        """lm-eval's `model_args` for the trained model (`pretrained`, and `peft` for an adapter)."""
        if self.kind == "adapter":
            return {"pretrained": self.base_model, "peft": str(self.output_dir)}
        return {"pretrained": str(self.output_dir)}

    def load_tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.tokenizer_source)

    def load_tuned(self):
        """The trained model: base + adapter (not merged), or the full weights."""
        from transformers import AutoModelForCausalLM

        if self.kind == "full":
            return AutoModelForCausalLM.from_pretrained(str(self.output_dir))
        return attach_adapter(AutoModelForCausalLM.from_pretrained(self.base_model), self.output_dir, self.base_model)

    def load_base(self):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.base_model)

    def load_pair(self) -> ModelPair:
        """Both models, loading the base weights once for an adapter run (the adapter is switched off for `base()`)."""
        if self.kind == "adapter":
            return ModelPair(self.load_tokenizer(), self.load_tuned(), None)
        return ModelPair(self.load_tokenizer(), self.load_tuned(), self.load_base())

    def check_adapter_matches(self) -> None:
        """Load the adapter onto the base model once, so a mismatch is one clear error before lm-eval loads both."""
        if self.kind == "adapter":
            self.load_tuned()


def load_model(base_model: str | Path, adapter_dir: str | Path | None = None):
    """A base model (a folder or a `kto_plugin://` name), with the LoRA adapter in `adapter_dir` when it holds one."""
    from transformers import AutoModelForCausalLM

    base = resolve_base_model(base_model)
    model = AutoModelForCausalLM.from_pretrained(base)
    if adapter_dir is not None and (Path(adapter_dir) / "adapter_config.json").exists():
        model = attach_adapter(model, Path(adapter_dir), base)
    return model

