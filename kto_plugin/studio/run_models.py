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

from kto_plugin.errors import ConfigError, MissingFileError
from kto_plugin.evaluation.trained_run import TrainedRun


def check_config_yaml(path: Path) -> dict:
    """The config's keys, read as YAML; ValueError naming what to change when it has no model."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path} cannot be read as YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} is not an Axolotl config (a YAML mapping of keys)")
    if not raw.get("base_model"):
        raise ConfigError(f"{path} has no base_model: add `base_model: <model folder or kto_plugin://tiny-model>`")
    return raw


def load_run_config(path: Path):
    """The config as `axolotl train` reads it; ValueError naming what to change when it cannot be used."""
    from axolotl.cli.config import load_cfg

    check_config_yaml(path)
    try:
        return load_cfg(str(path))
    except Exception as err:  # noqa: BLE001 - Axolotl's validation raises many kinds; the page shows the message
        raise ConfigError(f"Axolotl could not load {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


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
            raise ConfigError("no config: start the studio with one, `axolotl kto studio CONFIG`")
        if not self.config.exists():
            raise MissingFileError(f"the config {self.config} does not exist")
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

    def declared_keys(self) -> dict:
        """The config's keys as written, without loading the config through Axolotl, which may first have to make
        its model (the warm model takes minutes)."""
        stamp = self.config_path().stat().st_mtime
        if self._raw is None or self._raw[0] != stamp:  # read again only when the file changes
            self._raw = (stamp, check_config_yaml(self.config))
        return self._raw[1]

    def declared_output_dir(self) -> Path:
        """The config's output_dir as written (Axolotl's default `./model-out` if absent)."""
        return Path(self.declared_keys().get("output_dir") or "./model-out").resolve()

    def trained_run(self) -> TrainedRun:
        """The finished run in `output_dir`; `NoTrainedModelError` says to train first."""
        cfg = self.cfg()
        return TrainedRun.find(cfg.base_model, self.output_dir(), cfg.tokenizer_config)

    def require_trained(self) -> Path:
        return self.trained_run().output_dir

    @contextmanager
    def model(self, which: str):
        """`with models.model("base" | "trained") as (model, tokenizer):`; one generation at a time."""
        with self._lock:
            cfg = self.cfg()
            if which == "trained":
                run = self.trained_run()
                stamp = run.stamp()
                if self._loaded.get("stamp") != stamp:
                    self._loaded = {"stamp": stamp, "pair": run.load_pair()}
                pair = self._loaded["pair"]
                yield pair.tuned, pair.tokenizer
            elif "pair" in self._loaded:
                with self._loaded["pair"].base() as base:
                    yield base, self._loaded["pair"].tokenizer
            else:
                if "base" not in self._loaded:
                    from transformers import AutoModelForCausalLM, AutoTokenizer

                    self._loaded["base"] = (AutoModelForCausalLM.from_pretrained(str(cfg.base_model)),
                                            AutoTokenizer.from_pretrained(str(cfg.tokenizer_config or cfg.base_model)))
                yield self._loaded["base"]


def generate_for_prompts(models: RunModels, which: str, prompts: list[str], answers_per_prompt: int, settings,
                         progress=None) -> list[tuple[str, str]]:
    """`answers_per_prompt` answers to each prompt (sampled in one seeded call, so they differ when temperature > 0)."""
    from dataclasses import replace

    from kto_plugin.evaluation.generation import generate_answers, user_prompts

    pairs = []
    with models.model(which) as (model, tokenizer):
        rendered = user_prompts(tokenizer, prompts)
        for index, (prompt, text) in enumerate(zip(prompts, rendered)):
            if progress is not None:
                progress((index, len(prompts)), desc=f"prompt {index + 1} of {len(prompts)}")
            answers = generate_answers(model, tokenizer, [text],
                                       replace(settings, seed=settings.seed + index, answers_per_prompt=answers_per_prompt))
            pairs.extend((prompt, answer) for answer in answers)
    return pairs
