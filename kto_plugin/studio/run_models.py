"""The config of the studio's run and its models: Axolotl's loader, with errors a person can act on.

The models (base, and the trained adapter or model in `output_dir`) are loaded once and
kept until the config or the trained weights change on disk, so generating answers a second
time does not load them again.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import yaml

TRAINED_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin")


def check_config_yaml(path: Path) -> dict:
    """The config's keys, read as YAML; ValueError naming what to change when it has no model."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path} cannot be read as YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not an Axolotl config (a YAML mapping of keys)")
    if not raw.get("base_model"):
        raise ValueError(f"{path} has no base_model: add `base_model: <model folder or kto_plugin://tiny-model>`")
    return raw


def load_run_config(path: Path):
    """The config as `axolotl train` reads it; ValueError naming what to change when it cannot be used."""
    from axolotl.cli.config import load_cfg

    check_config_yaml(path)
    try:
        return load_cfg(str(path))
    except Exception as err:  # noqa: BLE001 - Axolotl's validation raises many kinds; the page shows the message
        raise ValueError(f"Axolotl could not load {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def _trained_stamp(output_dir: Path) -> float | None:
    stamps = [(output_dir / name).stat().st_mtime for name in TRAINED_FILES if (output_dir / name).exists()]
    return max(stamps) if stamps else None


class RunModels:
    """Base and trained models of one config, loaded on first use."""

    def __init__(self, config: Path | None):
        self.config = Path(config) if config else None
        self._lock = threading.Lock()
        self._cfg = None
        self._cfg_stamp = None
        self._cfg_error: ValueError | None = None
        self._raw: tuple[float, dict] | None = None  # (config's mtime, its keys as YAML)
        self._loaded: dict = {}

    def config_path(self) -> Path:
        if self.config is None:
            raise ValueError("no config: start the studio with one, `axolotl kto studio CONFIG`")
        if not self.config.exists():
            raise FileNotFoundError(f"the config {self.config} does not exist")
        return self.config

    def cfg(self):
        stamp = self.config_path().stat().st_mtime
        if stamp != self._cfg_stamp:  # first use, or the config changed on disk: load it (again)
            self._cfg, self._cfg_error, self._loaded = None, None, {}
            try:
                self._cfg = load_run_config(self.config)
            except ValueError as err:
                self._cfg_error = err
            self._cfg_stamp = stamp
        if self._cfg_error is not None:
            raise self._cfg_error
        return self._cfg

    def output_dir(self) -> Path:
        return Path(self.cfg().output_dir).resolve()

    def declared_output_dir(self) -> Path:
        """The config's output_dir as written (Axolotl's default `./model-out` if absent), without loading the
        config through Axolotl, which may first have to make its model (the warm model takes minutes)."""
        stamp = self.config_path().stat().st_mtime
        if self._raw is None or self._raw[0] != stamp:  # read again only when the file changes
            self._raw = (stamp, check_config_yaml(self.config))
        return Path(self._raw[1].get("output_dir") or "./model-out").resolve()

    def require_trained(self) -> Path:
        output_dir = self.output_dir()
        if _trained_stamp(output_dir) is None:
            raise FileNotFoundError(
                f"no trained model in {output_dir} (no adapter or model weights): train first (the Train tab), "
                "or generate with the base model"
            )
        return output_dir

    @contextmanager
    def model(self, which: str):
        """`with models.model("base" | "trained") as (model, tokenizer):`; one generation at a time."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from kto_plugin.evaluation.side_by_side import load_base_and_tuned

        with self._lock:
            cfg = self.cfg()
            if which == "trained":
                stamp = _trained_stamp(self.require_trained())
                if self._loaded.get("stamp") != stamp:
                    self._loaded = {"stamp": stamp, "pair": load_base_and_tuned(cfg)}
                pair = self._loaded["pair"]
                yield pair.tuned, pair.tokenizer
            elif "pair" in self._loaded:
                with self._loaded["pair"].base() as base:
                    yield base, self._loaded["pair"].tokenizer
            else:
                if "base" not in self._loaded:
                    self._loaded["base"] = (AutoModelForCausalLM.from_pretrained(str(cfg.base_model)),
                                            AutoTokenizer.from_pretrained(str(cfg.base_model)))
                yield self._loaded["base"]


def generate_for_prompts(models: RunModels, which: str, prompts: list[str], answers_per_prompt: int, settings,
                         progress=None) -> list[tuple[str, str]]:
    """`answers_per_prompt` answers to each prompt (sampling seeds 0, 1, ... so they differ)."""
    from dataclasses import replace

    from kto_plugin.evaluation.side_by_side import generate_reply

    pairs = []
    with models.model(which) as (model, tokenizer):
        model.eval()
        jobs = [(prompt, seed) for prompt in prompts for seed in range(answers_per_prompt)]
        for index, (prompt, seed) in enumerate(jobs):
            if progress is not None:
                progress((index, len(jobs)), desc=f"answer {index + 1} of {len(jobs)}")
            reply = generate_reply(model, tokenizer, [{"role": "user", "content": prompt}],
                                   replace(settings, seed=(settings.seed or 0) + seed))
            pairs.append((prompt, reply))
    return pairs
