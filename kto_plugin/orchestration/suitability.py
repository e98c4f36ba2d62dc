"""`axolotl kto try`: does KTO learn from this config's data? A short run on a sample, scored on held-out prompts.

1. Read the config's `datasets:` as training reads them (unusable rows are skipped and counted).
2. Take up to `per_label` accepted and `per_label` rejected examples (seeded).
3. Hold out whole prompts, about `held_out_share` of the examples, prompts that have both
   labels first (so that preference accuracy has pairs); the rest is the training set.
4. Score the config's model on the held-out examples (`held_out_probe`), train it briefly
   in-process with Axolotl's `train` and the plugin's trainer (the config's model, adapter,
   learning rate and batch settings; `epochs` epochs; no checkpoints, no evaluation), and
   score it again.
5. The verdict reads the reward accuracy (chance 0.5; `held_out_probe` defines it):
   >= 0.6 with a positive margin: KTO learns from this data; <= 0.5 or a negative margin:
   it does not (yet); in between: inconclusive. The thresholds are rules of thumb for a
   run of a few dozen steps, not a statistical test.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kto_plugin.errors import DataError
from kto_plugin.evaluation.held_out_probe import (
    HeldOutSet,
    probe,
    render_examples,
    reward_accuracy_and_margin,
)
from kto_plugin.evaluation.trained_run import load_model

LEARNS, DOES_NOT_LEARN = 0.6, 0.5


@dataclass
class TrySample:
    train: HeldOutSet  # the rendered training rows
    held_out: HeldOutSet


def pick_sample(examples, per_label: int = 50, held_out_share: float = 0.2, seed: int = 42) -> tuple[list, list]:
    """(training examples, held-out examples): whole prompts held out, prompts with both labels first."""
    from kto_plugin.data.feedback_examples import normalised_prompt_key

    rng = random.Random(seed)
    accepted = [example for example in examples if example.label]
    rejected = [example for example in examples if not example.label]
    chosen = rng.sample(accepted, min(per_label, len(accepted))) + rng.sample(rejected, min(per_label, len(rejected)))
    by_prompt: dict[str, list] = {}
    for example in chosen:
        by_prompt.setdefault(normalised_prompt_key(example), []).append(example)
    prompts = list(by_prompt)
    rng.shuffle(prompts)
    prompts.sort(key=lambda key: len({example.label for example in by_prompt[key]}) < 2)  # both labels first
    target = max(2, round(held_out_share * len(chosen)))
    held_out, train = [], []
    for key in prompts:
        (held_out if len(held_out) < target else train).extend(by_prompt[key])
    if not train:
        raise DataError(f"all {len(chosen)} sampled examples share too few prompts to hold some out: "
                         "the data needs at least two distinct prompts")
    return train, held_out


def render_sample(train, held_out, tokenizer, sequence_len: int) -> TrySample:
    """Render both sets with the chat template and fit them to `sequence_len` as training does."""
    return TrySample(render_examples(train, tokenizer, sequence_len), render_examples(held_out, tokenizer, sequence_len))


def brief_training_config(cfg, output_dir: Path, epochs: float):
    """The config, changed only to train briefly: no checkpoints, no evaluation, no trackers, its own folder."""
    cfg.output_dir = str(output_dir)
    cfg.num_epochs = epochs
    cfg.max_steps = None
    cfg.save_strategy = "no"
    cfg.save_steps = None
    cfg.saves_per_epoch = None
    cfg.eval_strategy = "no"
    cfg.eval_steps = None
    cfg.evals_per_epoch = None
    cfg.val_set_size = 0
    cfg.test_datasets = None
    cfg.do_bench_eval = False
    cfg.use_wandb = False
    cfg.use_mlflow = False
    cfg.hub_model_id = None
    return cfg


def train_briefly(cfg, sample: TrySample):
    """Axolotl's own `train` on the sample (the plugin's trainer runs it); returns the trained model."""
    import math

    from axolotl.common.datasets import TrainDatasetMeta
    from axolotl.train import train
    from datasets import Dataset

    dataset = Dataset.from_dict({"prompt": sample.train.prompts, "completion": sample.train.completions,
                                 "label": sample.train.labels})
    steps = int(math.ceil(len(dataset) * cfg.num_epochs / cfg.batch_size))
    model, _, _ = train(cfg=cfg, dataset_meta=TrainDatasetMeta(train_dataset=dataset, eval_dataset=None,
                                                                total_num_steps=steps))
    return model


@dataclass
class TryResult:
    """What `axolotl kto try` measured; `to_json()` is its `--json` file, `verdict()` its last line."""

    config: str
    rows_read: int
    unusable_rows: int
    train_examples: int
    train_accepted: int
    held_out_examples: int
    held_out_accepted: int
    held_out_pairs: int
    epochs: float
    output_dir: str
    before: dict  # preference_accuracy, rules (share of answers that keep each rule)
    after: dict
    reward_accuracy: float | None
    reward_margin: float | None
    answers: list[dict] = field(default_factory=list)  # {prompt, before, after}

    def verdict(self) -> tuple[str, str]:
        return verdict(self)

    def to_json(self) -> dict:
        kind, text = self.verdict()
        return {**asdict(self), "verdict": kind, "verdict_text": text}


def verdict(result: TryResult) -> tuple[str, str]:
    """("learns" | "inconclusive" | "does not learn", the sentence with the numbers behind it)."""
    accuracy, margin = result.reward_accuracy, result.reward_margin
    held = result.held_out_examples
    if accuracy is None:
        return "inconclusive", f"the {held} held-out examples have only one label, so nothing can be compared"
    numbers = (f"on {held} held-out examples whose prompts were never trained on, accepted answers gained "
               f"likelihood over rejected ones in {accuracy:.0%} of pairs (chance: 50%; reward margin {margin:+.3f})")
    before, after = result.before["preference_accuracy"], result.after["preference_accuracy"]
    if before is not None:
        numbers += f"; preference accuracy {before:.2f} -> {after:.2f} over {result.held_out_pairs} same-prompt pairs"
    if accuracy >= LEARNS and margin > 0:
        return "learns", f"KTO learns from this data: {numbers}."
    if accuracy <= DOES_NOT_LEARN or margin <= 0:
        return "does not learn", (f"KTO did not learn from this sample: {numbers}. Check the labels "
                                  "(`axolotl kto check`), or raise learning_rate or --epochs.")
    return "inconclusive", f"Inconclusive: {numbers}. Try --epochs 4 or a larger --per-label."


def run_try(config_path: Path, per_label: int = 50, held_out_share: float = 0.2, epochs: float = 2.0,
            output_dir: Path | None = None, max_new_tokens: int = 48, seed: int = 42) -> TryResult:
    import gc

    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_tokenizer

    from kto_plugin.data.feedback_examples import examples_from_config
    from kto_plugin.data.rendering import require_chat_template

    cfg = load_cfg(str(config_path))
    tokenizer = load_tokenizer(cfg)
    require_chat_template(tokenizer, cfg.tokenizer_config or cfg.base_model)
    _, rows_read, examples, unusable = examples_from_config(cfg)
    accepted = sum(example.label for example in examples)
    if not accepted or accepted == len(examples):
        raise DataError(f"{config_path}: the data needs both accepted and rejected rows; it has {accepted} accepted "
                         f"of {len(examples)} examples")
    train, held_out = pick_sample(examples, per_label, held_out_share, seed)
    sample = render_sample(train, held_out, tokenizer, cfg.sequence_len)
    base = load_model(cfg.base_model)
    before = probe(base, tokenizer, sample.held_out, max_new_tokens, desc="before")
    del base
    gc.collect()
    output_dir = output_dir or Path(f"{cfg.output_dir.rstrip('/')}-try")
    tuned = train_briefly(brief_training_config(cfg, output_dir, epochs), sample)
    after = probe(tuned, tokenizer, sample.held_out, max_new_tokens, desc="after")
    reward_accuracy, reward_margin = reward_accuracy_and_margin(before["logps"], after["logps"], sample.held_out.labels)
    return TryResult(
        config=str(config_path), rows_read=rows_read, unusable_rows=len(unusable),
        train_examples=len(sample.train.labels), train_accepted=sum(sample.train.labels),
        held_out_examples=len(sample.held_out.labels), held_out_accepted=sum(sample.held_out.labels),
        held_out_pairs=len(sample.held_out.pairs()), epochs=epochs, output_dir=str(output_dir),
        before={key: before[key] for key in ("preference_accuracy", "rules")},
        after={key: after[key] for key in ("preference_accuracy", "rules")},
        reward_accuracy=reward_accuracy, reward_margin=reward_margin,
        answers=[{"prompt": prompt, "before": b, "after": a}
                 for prompt, b, a in zip(sample.held_out.distinct_previews(), before["answers"], after["answers"])],
    )
