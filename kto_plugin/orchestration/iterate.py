"""`axolotl kto iterate`: rounds of sample -> label -> check -> train -> score, each round trained on its own model's answers.

Round 1 starts from the config's `base_model`; round K+1 from round K's result (an adapter
merged into its base), which is also its KTO reference, as in the KTO authors' online rounds.
Before round 1 the starting model answers the held-out prompts (`round-0/`), so every round's
score has a baseline; a number-returning judge's held-out threshold is fixed there.

The run folder and what a resume keeps are described in `iterate_folder`; the steps in
`iterate_steps`. With `judge: human` the run stops after sampling each round and says how to
open the round's answers in the studio; `--resume` continues once every answer has a label
(or a skip).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from kto_plugin.embedded.warm_model import WARM_MODEL_URI
from kto_plugin.errors import ConfigError
from kto_plugin.orchestration import iterate_steps as steps
from kto_plugin.orchestration.iterate_folder import (STEPS, RunFolder, check_resumable, new_record, round_entry)
from kto_plugin.orchestration.iterate_settings import DEFAULT_RUN_FOLDER_NAME, IterateSettings
from kto_plugin.orchestration.prompt_pool import PoolPrompt, prompts_of_round, read_prompt_pool, split_held_out


@dataclass
class IterateOutcome:
    folder: Path
    record: dict
    waiting_for: dict | None = None  # {"round", "answers", "labels", "undecided"} when a person must label first
    messages: list[str] = field(default_factory=list)


def run_folder_of(config: dict, settings: IterateSettings) -> Path:
    return Path(settings.output_dir or Path(config.get("output_dir") or "./outputs") / DEFAULT_RUN_FOLDER_NAME)


def run_settings(config_path: Path, given: dict, resume: bool = False) -> IterateSettings:
    """The settings of a run: the config's `kto_iterate:` under `given` (the command's options); on a resume, the
    run's own recorded settings under both, so a run started with options (`--prompts`, `--judge`) resumes with
    `--resume` alone. A bad value raises pydantic's ValidationError naming its key."""
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    from_config = config.get("kto_iterate") or {}
    settings = IterateSettings(**{**from_config, **given})
    if resume:
        folder = RunFolder(run_folder_of(config, settings))
        if folder.exists():
            recorded = folder.read().get("settings") or {}
            settings = IterateSettings(**{**recorded, **from_config, **given, "output_dir": settings.output_dir})
    return settings


def read_config(config_path: Path) -> dict:
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    if str(config.get("rl", "")).lower() != "kto" or "kto_plugin.KTOPlugin" not in (config.get("plugins") or []):
        raise ConfigError(f"{config_path}: `axolotl kto iterate` trains the plugin's KTO: the config needs "
                          "`plugins: [kto_plugin.KTOPlugin]` and `rl: kto`")
    if not config.get("base_model"):
        raise ConfigError(f"{config_path} has no base_model: add the model round 1 starts from")
    return config


def _prompt_split(settings: IterateSettings) -> tuple[list[PoolPrompt], list[PoolPrompt]]:
    pool = read_prompt_pool(settings.prompts)
    if settings.held_out_prompts:
        held_out = read_prompt_pool(settings.held_out_prompts)
        overlap = set(pool) & set(held_out)
        return [prompt for prompt in pool if prompt not in overlap], held_out
    return split_held_out(pool, settings.held_out_share, settings.seed)


def _prompts(path: Path) -> list[PoolPrompt]:
    return [PoolPrompt(row["query"], row.get("system")) for row in steps.read_jsonl(path)]


def _quietly(function, *args):
    """`function(*args)` without Axolotl's dump of the whole config (its loader logs it, "config:\n{...}", and sets
    its loggers' levels itself): each round's `train.log` has it."""
    import logging

    logger = logging.getLogger("axolotl.cli.config")

    def not_the_dump(record) -> bool:
        return not str(record.msg).startswith("config:")

    logger.addFilter(not_the_dump)
    try:
        return function(*args)
    finally:
        logger.removeFilter(not_the_dump)


class _Models:
    """The one sampler held in memory at a time, a Transformers model or a vLLM engine (`kto_iterate.sampler`),
    freed before `axolotl train` runs."""

    def __init__(self, sampler: str = "transformers"):
        self.sampler = sampler
        self.name, self.model = None, None

    def get(self, name: str):
        from kto_plugin.evaluation.trained_run import load_model
        from kto_plugin.evaluation.vllm_sampling import VLLMSampler

        if self.name != name:
            self.free()
            self.name, self.model = name, VLLMSampler(name) if self.sampler == "vllm" else load_model(name)
        return self.model

    def free(self):
        if hasattr(self.model, "free"):
            self.model.free()
        self.name, self.model = None, None
        gc.collect()


def run_iterate(config_path: Path, settings: IterateSettings, resume: bool = False,
                progress: Callable[[str], None] = print) -> IterateOutcome:
    """Run (or resume) the rounds; returns the run's record, or where it waits for a person's labels."""
    from kto_plugin.data.data_check import read_check_config
    from kto_plugin.evaluation.judges import load_judge, parse_judge, threshold_value
    from kto_plugin.evaluation.trained_run import resolve_base_model
    from kto_plugin.evaluation.vllm_sampling import choose_sampler

    if not settings.prompts or not settings.judge:
        raise ConfigError("`axolotl kto iterate` needs prompts and a judge: --prompts FILE --judge JUDGE, or "
                          "`kto_iterate: {prompts: ..., judge: ...}` in the config")
    config = read_config(config_path)
    if config["base_model"] == WARM_MODEL_URI:  # made on first use, as `axolotl train` makes it
        from kto_plugin.embedded.warm_model import is_current, warm_model_dir
        from kto_plugin.orchestration.warm_up import ensure_warm_model

        if not is_current(warm_model_dir()):
            progress(f"making the embedded warm model in {warm_model_dir()} first: one `axolotl train`, once "
                     "(5-7 minutes on 2 cores)")
        ensure_warm_model()
    folder = RunFolder(run_folder_of(config, settings))
    spec = parse_judge(settings.judge)
    fixed = settings.model_dump(exclude={"rounds", "output_dir"})
    if folder.exists() and not resume:
        raise ConfigError(f"{folder.path} already holds an iterate run ({folder.record_path}): pass --resume to "
                          "continue it, or name another run folder with --output")
    if resume and not folder.exists():
        raise ConfigError(f"--resume: {folder.path} holds no iterate run to continue ({folder.record_path} is missing)")
    if folder.exists():
        record = folder.read()
        check_resumable(record, fixed, spec.name)
        progress(f"resuming the run in {folder.path}")
    else:
        train, held_out = _prompt_split(settings)
        if not train or not held_out:
            raise ConfigError("the prompt pool leaves no training prompts once the held-out prompts are taken out")
        folder.path.mkdir(parents=True, exist_ok=True)
        steps.write_jsonl([prompt.to_json() for prompt in train], folder.path / "prompts-train.jsonl")
        steps.write_jsonl([prompt.to_json() for prompt in held_out], folder.path / "prompts-held-out.jsonl")
        record = new_record(Path(config_path).resolve(), fixed, resolve_base_model(config["base_model"]), spec.name)
        folder.write(record)
        progress(f"iterate run in {folder.path}: {len(train)} training prompts, {len(held_out)} held out, "
                 f"judge {spec.name}")
    record["settings"]["rounds"] = settings.rounds
    train, held_out = _prompts(folder.path / "prompts-train.jsonl"), _prompts(folder.path / "prompts-held-out.jsonl")
    _, tokenizer, _, _ = _quietly(read_check_config, Path(config_path))
    judge = None if spec.kind == "human" else load_judge(spec)
    sampler = choose_sampler(settings.sampler)
    models = _Models(sampler)
    if sampler == "vllm":
        progress("answers sampled with vLLM (kto_iterate.sampler)")
    held_out_seed = settings.seed * 1000

    if record["baseline"] is None:
        started = time.monotonic()
        progress(f"round 0: the starting model {record['start_model']} answers {len(held_out)} held-out prompts")
        rows = steps.sample_answers(models.get(record["start_model"]), tokenizer, held_out, settings, held_out_seed,
                                    "Held-out answers")
        scores = steps.judged(judge, rows)
        threshold = None if scores is None else threshold_value(scores, settings.label_threshold)
        summary = steps.held_out_summary(scores, threshold)
        steps.write_jsonl([{**row, **({} if scores is None else {"score": score})}
                           for row, score in zip(rows, scores or [None] * len(rows))],
                          folder.round_dir(0) / "held-out-answers.jsonl")
        record["held_out_threshold"] = threshold
        record["baseline"] = {**summary, "seconds": round(time.monotonic() - started, 1)}
        folder.write(record)

    for number in range(1, settings.rounds + 1):
        entry = round_entry(record, number)
        round_dir = folder.round_dir(number)
        round_dir.mkdir(parents=True, exist_ok=True)
        for step in STEPS:
            if step in entry["done"]:
                continue
            started = time.monotonic()
            if step == "sampled":
                prompts = prompts_of_round(train, settings.prompts_per_round, number, settings.seed)
                progress(f"round {number}: sampling {settings.answers_per_prompt} answers to each of {len(prompts)} "
                         f"prompts from {entry['model_in']}")
                rows = steps.sample_answers(models.get(entry["model_in"]), tokenizer, prompts, settings,
                                            settings.seed * 1000 + number, f"Round {number} answers")
                steps.write_jsonl(rows, round_dir / steps.ANSWERS)
                entry["counts"]["answers"] = len(rows)
            elif step == "labelled":
                rows = steps.read_jsonl(round_dir / steps.ANSWERS)
                if judge is None:
                    left = steps.undecided(rows, round_dir / steps.LABELS)
                    if left:
                        folder.write(record)
                        return IterateOutcome(folder.path, record, {
                            "round": number, "answers": str(round_dir / steps.ANSWERS),
                            "labels": str(round_dir / steps.LABELS), "undecided": left})
                    counts = steps.labelled_counts(round_dir / steps.LABELS)
                else:
                    progress(f"round {number}: judging {len(rows)} answers with {spec.name}")
                    scores = steps.judge_scores(judge, rows, round_dir / steps.JUDGE_SCORES)
                    counts = steps.write_labels(rows, scores, threshold_value(scores, settings.label_threshold),
                                                round_dir / steps.LABELS, number)
                entry["counts"]["labels"] = counts
            elif step == "checked":
                earlier = [folder.round_dir(k) / steps.LABELS for k in range(1, number)]  # their own labels only
                replayed = steps.replay_rows(earlier, settings.replay_share, settings.seed + number)
                labelled = steps.read_jsonl(round_dir / steps.LABELS)
                entry["counts"]["check"] = {**steps.check_labelled(replayed + labelled, round_dir),
                                            "replayed": len(replayed)}
                check = entry["counts"]["check"]
                progress(f"round {number}: {check['kept']} rows to train on ({check['desirable']} desirable, "
                         f"{check['undesirable']} undesirable; {len(replayed)} replayed from earlier rounds)")
            elif step == "trained":
                models.free()
                progress(f"round {number}: axolotl train (log: {round_dir / 'train.log'})")
                entry["model_out"] = steps.train_round(config, entry["model_in"], round_dir, tokenizer)
            elif step == "scored":
                rows = steps.sample_answers(models.get(entry["model_out"]), tokenizer, held_out, settings,
                                            held_out_seed, "Held-out answers")
                scores = steps.judged(judge, rows)
                steps.write_jsonl([{**row, **({} if scores is None else {"score": score})}
                                   for row, score in zip(rows, scores or [None] * len(rows))],
                                  round_dir / "held-out-answers.jsonl")
                entry["scores"] = steps.held_out_summary(scores, record["held_out_threshold"])
                if entry["scores"]["judged"]:
                    progress(f"round {number}: held-out answers judged desirable "
                             f"{record['baseline'].get('desirable_share', 0):.2f} (start) -> "
                             f"{entry['scores']['desirable_share']:.2f}")
            entry["seconds"][step] = round(time.monotonic() - started, 1)
            entry["done"].append(step)
            folder.write(record)
    models.free()
    return IterateOutcome(folder.path, record)
