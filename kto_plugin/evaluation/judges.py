"""Judges: who labels a model's answers when `axolotl kto iterate` runs rounds without a person.

A judge is named by one string (`--judge`, or `judge:` under `kto_iterate:`):

- `human`: a person labels the answers in the studio's Label tab (no scores here);
- `MODULE:FUNCTION` or `path/to/file.py:FUNCTION`: a Python function `(prompt, answer) -> bool | float`,
  called once per answer (the prompt is the user's text, without the system message);
- `reward-model:FOLDER`: a local sequence-classification model; its score is the logit of a one-label head,
  or logit 1 minus logit 0 of a two-label head, on the conversation rendered with its tokenizer's chat
  template (`prompt` then `answer` on their own lines where it has none);
- `chat-model:FOLDER`: a local chat model asked a yes/no rubric (`JUDGE_RUBRIC`) about the answer; its score
  is log p("yes") - log p("no") for the first token of its reply.

Scores become labels by `labels_from_scores`: a function that returns booleans gives its labels as they are;
any other score is desirable when it is above the threshold: a number, or the `mean` or `median` of the
round's scores (HALOs' binarisation of reward-model scores).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kto_plugin.errors import ConfigError

JUDGE_RUBRIC = ("Here is a question and an answer to it.\n\nQuestion: {prompt}\n\nAnswer: {answer}\n\n"
                "Is the answer correct, helpful and polite? Reply with yes or no.")
MODEL_JUDGES = ("reward-model", "chat-model")
THRESHOLD_STATISTICS = ("mean", "median")


@dataclass(frozen=True)
class JudgeSpec:
    kind: str  # human | function | reward-model | chat-model
    target: str = ""  # MODULE:FUNCTION or a model folder

    @property
    def name(self) -> str:
        return "human" if self.kind == "human" else (self.target if self.kind == "function" else f"{self.kind}:{self.target}")


def parse_judge(text: str) -> JudgeSpec:
    """The judge a `--judge` string names; a `ConfigError` says which forms exist."""
    text = (text or "").strip()
    forms = ("`human`, `MODULE:FUNCTION` (or `path/to/file.py:FUNCTION`), `reward-model:FOLDER` or "
             "`chat-model:FOLDER`")
    if text == "human":
        return JudgeSpec("human")
    kind, _, target = text.partition(":")
    if not target.strip() or not kind.strip():
        raise ConfigError(f"judge {text!r}: use {forms}")
    if kind in MODEL_JUDGES:
        folder = Path(target).expanduser()
        if not (folder / "config.json").exists():
            raise ConfigError(f"judge {text!r}: {folder} is not a local model folder (no config.json); the "
                              f"{kind} judge loads a model saved with save_pretrained")
        return JudgeSpec(kind, str(folder))
    return JudgeSpec("function", text)


def _import_function(target: str) -> Callable:
    module_name, _, function_name = target.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser().resolve()
            if not path.exists():
                raise ConfigError(f"judge {target!r}: {path} does not exist")
            spec = importlib.util.spec_from_file_location(f"kto_judge_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"judge {target!r}: cannot import {module_name} ({err}); name an importable module "
                          "or a .py file") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"judge {target!r}: {module_name} has no function {function_name}")
    return function


class FunctionJudge:
    """A Python function `(prompt, answer) -> bool | float`, called once per answer."""

    def __init__(self, target: str):
        self.function = _import_function(target)
        self.name = target

    def scores(self, prompts: list[str], answers: list[str], progress: str | None = "Judging") -> list[float | bool]:
        from tqdm.auto import tqdm

        found = []
        for prompt, answer in tqdm(list(zip(prompts, answers)), desc=progress, leave=False, disable=progress is None):
            value = self.function(prompt, answer)
            if isinstance(value, bool):
                found.append(value)
            elif isinstance(value, (int, float)) and math.isfinite(value):
                found.append(float(value))
            else:
                raise ConfigError(f"judge {self.name} returned {value!r} for the answer {answer[:60]!r}: it must "
                                  "return True/False or a finite number")
        return found


class _ModelJudge:
    batch_size = 8

    def __init__(self, spec: JudgeSpec):
        from transformers import AutoTokenizer

        self.name = spec.name
        self.folder = spec.target
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _texts(self, prompts: list[str], answers: list[str]) -> list[str]:
        raise NotImplementedError

    def _batch_scores(self, encoded) -> list[float]:
        raise NotImplementedError

    def scores(self, prompts: list[str], answers: list[str], progress: str | None = "Judging") -> list[float]:
        import torch
        from tqdm.auto import tqdm

        texts = self._texts(prompts, answers)
        found = []
        with torch.no_grad():
            for start in tqdm(range(0, len(texts), self.batch_size), desc=progress, leave=False,
                              disable=progress is None):
                encoded = self.tokenizer(texts[start:start + self.batch_size], return_tensors="pt", padding=True,
                                         add_special_tokens=False)
                found.extend(self._batch_scores(encoded))
        return found


class RewardModelJudge(_ModelJudge):
    """A local sequence-classification model's score of each (prompt, answer)."""

    def __init__(self, spec: JudgeSpec):
        from transformers import AutoModelForSequenceClassification

        super().__init__(spec)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.folder).eval()
        # the head reads the last token that is not the config's pad token: pad with exactly that one
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        else:
            self.tokenizer.pad_token = self.tokenizer.convert_ids_to_tokens(self.model.config.pad_token_id)
        if self.model.config.num_labels not in (1, 2):
            raise ConfigError(f"judge {self.name}: a reward model has 1 or 2 labels; this one has "
                              f"{self.model.config.num_labels}")

    def _texts(self, prompts, answers):
        if getattr(self.tokenizer, "chat_template", None):
            return [self.tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                                        {"role": "assistant", "content": answer}], tokenize=False)
                    for prompt, answer in zip(prompts, answers)]
        return [f"{prompt}\n{answer}" for prompt, answer in zip(prompts, answers)]

    def _batch_scores(self, encoded) -> list[float]:
        logits = self.model(**encoded).logits.float()
        values = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
        return values.tolist()


class ChatModelJudge(_ModelJudge):
    """A local chat model asked `JUDGE_RUBRIC`: log p("yes") - log p("no") of its reply's first token."""

    def __init__(self, spec: JudgeSpec, rubric: str = JUDGE_RUBRIC):
        from transformers import AutoModelForCausalLM

        super().__init__(spec)
        self.tokenizer.padding_side = "left"  # the next token is read at the last position of every row
        self.model = AutoModelForCausalLM.from_pretrained(self.folder).eval()
        self.rubric = rubric
        self.yes_no = [self._first_token(word) for word in ("yes", "no")]
        if self.yes_no[0] == self.yes_no[1]:
            raise ConfigError(f"judge {self.name}: its tokenizer starts 'yes' and 'no' with the same token")

    def _first_token(self, word: str) -> list[int]:
        """Every first token the model could start the word with (`yes`, `Yes`, ` yes`, ...)."""
        ids = set()
        for variant in (word, word.capitalize(), " " + word, " " + word.capitalize()):
            encoded = self.tokenizer(variant, add_special_tokens=False)["input_ids"]
            if encoded:
                ids.add(encoded[0])
        return sorted(ids)

    def _texts(self, prompts, answers):
        asks = [self.rubric.format(prompt=prompt, answer=answer) for prompt, answer in zip(prompts, answers)]
        if getattr(self.tokenizer, "chat_template", None):
            return [self.tokenizer.apply_chat_template([{"role": "user", "content": ask}], tokenize=False,
                                                       add_generation_prompt=True) for ask in asks]
        return [f"{ask}\n" for ask in asks]

    def _batch_scores(self, encoded) -> list[float]:
        import torch

        logps = torch.log_softmax(self.model(**encoded).logits[:, -1].float(), dim=-1)
        yes, no = (torch.logsumexp(logps[:, ids], dim=-1) for ids in self.yes_no)
        return (yes - no).tolist()


def load_judge(spec: JudgeSpec):
    """The judge that scores answers (`.scores(prompts, answers)`); `human` has none."""
    if spec.kind == "function":
        return FunctionJudge(spec.target)
    if spec.kind == "reward-model":
        return RewardModelJudge(spec)
    if spec.kind == "chat-model":
        return ChatModelJudge(spec)
    raise ConfigError(f"judge {spec.name}: a person labels these answers in the studio; no scores to compute")


def threshold_value(scores: list[float | bool], threshold: float | str) -> float | None:
    """The number a score must exceed to be desirable (None: the scores are booleans, taken as labels)."""
    if scores and all(isinstance(score, bool) for score in scores):
        return None
    if threshold == "mean":
        return statistics.fmean(float(score) for score in scores)
    if threshold == "median":
        return statistics.median(float(score) for score in scores)
    return float(threshold)


def labels_from_scores(scores: list[float | bool], threshold: float | None) -> list[bool]:
    """Each answer desirable or not: a boolean as it is; a number when above `threshold`."""
    return [score if isinstance(score, bool) else float(score) > threshold for score in scores]
