"""Load every `datasets:` / `test_datasets:` entry of a KTO run into prompt/completion/label rows.

Runs before any model is loaded (from the plugin's `load_datasets` hook). Each entry is
read with Axolotl's own loader, turned into examples by its format (a plugin format or
one of Axolotl's KTO types), labels are checked, rows are fitted to `sequence_len`, and
one log line per split says what was kept, truncated and removed, by reason. Rows go through
that `ROW_BATCH` at a time and are written to an Arrow file as they come (`data/arrow_rows.py`):
a split never exists as Python lists, whatever its size.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from kto_plugin.data.arrow_rows import ArrowRowsWriter
from kto_plugin.data.class_balance import balance_plan, label_array
from kto_plugin.data.formats import format_of_type
from kto_plugin.data.lengths import describe_lengths, token_counts, truncate_to_fit
from kto_plugin.data.located_examples import (
    DataRowError,
    LocatedExample,
    RowLocator,
    UnusableRow,
    axolotl_type_converter,
    format_with_axolotl_type,
    located_examples,
    plugin_format_converter,
)
from kto_plugin.data.prepared import PreparedReport, load_or_prepare
from kto_plugin.data.rendering import render_example, require_chat_template
from kto_plugin.data.sources import entry_with_fields, load_entry_rows
from kto_plugin.errors import DataError
from kto_plugin.log import get_logger

LOG = get_logger(__name__)

TOO_LONG = "longer than sequence_len"
CUT_TO_NOTHING = "prompt or response cut to nothing by sequence_len"
EMPTY_RESPONSE = "empty response"


class NoTrainableRowsError(DataError):
    """Nothing is left to train on, with the reason."""


@dataclass
class SplitReport:
    """What loading one split did, for the one log line and for the errors."""

    split: str
    sources: list[str] = field(default_factory=list)
    rows_read: int = 0
    examples: int = 0
    desirable: int = 0
    truncated: int = 0
    removed: Counter = field(default_factory=Counter)
    over_long_lengths: list[int] = field(default_factory=list)

    @property
    def undesirable(self) -> int:
        return self.examples - self.desirable

    def line(self, sequence_len: int) -> str:
        removed = sum(self.removed.values())
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.removed.items()))
        return (
            f"KTO data ({self.split}): read {self.rows_read} rows from {', '.join(self.sources)}; "
            f"kept {self.examples} examples ({self.desirable} desirable, {self.undesirable} undesirable); "
            f"truncated {self.truncated} to fit sequence_len {sequence_len}; "
            f"removed {removed}" + (f" ({reasons})" if reasons else "")
        )


@dataclass
class Rows:
    prompt: list[str] = field(default_factory=list)
    completion: list[str] = field(default_factory=list)
    label: list[bool] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    def add(self, prompt: str, completion: str, label: bool, where: str) -> None:
        self.prompt.append(prompt)
        self.completion.append(completion)
        self.label.append(label)
        self.where.append(where)


ROW_BATCH = 2048  # rows read, rendered, fitted and written at a time


def row_batches(dataset, size: int):
    """(index of the first row, list of row dicts) for each batch of `size` rows of a `datasets.Dataset`."""
    for start in range(0, len(dataset), size):
        columns = dataset[start:start + size]
        names = list(columns)
        yield start, [dict(zip(names, values)) for values in zip(*(columns[name] for name in names))]


def render_located(example: LocatedExample, tokenizer) -> tuple[str, str]:
    """(prompt, completion) as the trainer reads them: chat messages through the template, a rendered prompt as it is."""
    if isinstance(example.prompt, str):
        return example.prompt, example.completion
    return render_example(tokenizer, example.prompt, example.completion)


def rendered_rows(batch: list[dict], start: int, converter, tokenizer, locate: RowLocator, removed: Counter,
                  source: str | None = None) -> Rows:
    """A batch of raw rows as rendered training rows; rows left out (by the format, or with an empty response)
    are counted in `removed` by reason, and an invalid row stops the run (`DataRowError`)."""
    rows = Rows()
    for item in located_examples(batch, converter, locate, source or locate.source, start, on_invalid="stop"):
        if isinstance(item, UnusableRow):
            removed[item.reason] += 1
        elif not item.completion.strip():
            removed[EMPTY_RESPONSE] += 1
        else:
            rows.add(*render_located(item, tokenizer), item.label, item.where)
    return rows


def fit_lengths(rows: Rows, tokenizer, sequence_len: int, strategy: str, report: SplitReport) -> Rows:
    """Apply `excess_length_strategy` (truncate by default, drop, raise) to the rows."""
    if not rows.prompt:
        return rows
    prompt_lengths = token_counts(tokenizer, rows.prompt)
    completion_lengths = token_counts(tokenizer, rows.completion)
    fitted = Rows()
    for i, (prompt, completion) in enumerate(zip(rows.prompt, rows.completion)):
        total = prompt_lengths[i] + completion_lengths[i]
        if total > sequence_len:
            report.over_long_lengths.append(total)
            if strategy == "raise":
                raise DataRowError(
                    f"{rows.where[i]}: {total} tokens is longer than sequence_len {sequence_len} "
                    "(excess_length_strategy: raise). Raise `sequence_len`, or set "
                    "`excess_length_strategy: truncate` to keep the completion and the end of the prompt."
                )
            if strategy == "drop":
                report.removed[TOO_LONG] += 1
                continue
            prompt, completion = truncate_to_fit(tokenizer, prompt, completion, sequence_len)
            if not prompt or not completion.strip():  # nothing left to condition on, or nothing to learn
                report.removed[CUT_TO_NOTHING] += 1
                continue
            report.truncated += 1
        fitted.add(prompt, completion, rows.label[i], rows.where[i])
    return fitted


def _entry_examples(cfg, tokenizer, entry: dict, index: int, strategy: str, report: SplitReport):
    """The fitted Rows of one `datasets:` entry (each file of a folder in turn), ROW_BATCH rows at a time."""
    fmt = format_of_type(entry.get("type"))
    if fmt is not None:
        try:
            converter = plugin_format_converter(fmt, fmt.field_settings(entry))
        except ValueError as err:
            raise DataError(f"{entry.get('path')}: {err}") from None
    for row_file in load_entry_rows(entry, cfg):
        locate = row_file.where
        report.sources.append(locate.source)
        report.rows_read += len(row_file)
        batches = row_file.batches(ROW_BATCH)
        if fmt is None:
            dataset = format_with_axolotl_type(row_file.dataset(), entry.get("type"), cfg, index, locate.source)
            converter = axolotl_type_converter(entry.get("type"))
            batches = row_batches(dataset, ROW_BATCH)
        with tqdm(total=len(row_file), desc=f"Reading {locate.source}", unit=" rows", leave=False) as progress:
            for start, batch in batches:
                rows = rendered_rows(batch, start, converter, tokenizer, locate, report.removed)
                yield fit_lengths(rows, tokenizer, cfg.sequence_len, strategy, report)
                progress.update(len(batch))


def load_split(cfg, tokenizer, entries: list, split: str, scratch: Path) -> tuple[Any, SplitReport]:
    """Read all entries of one split into a `datasets.Dataset` of prompt/completion/label.

    Rows are read, rendered, fitted and written to `scratch/SPLIT.arrow` a batch at a time
    (`data/arrow_rows.py`); the dataset returned is memory-mapped from that file.
    """
    strategy = (cfg.excess_length_strategy or "truncate").lower()
    report = SplitReport(split)
    split_key = "datasets" if split == "train" else "test_datasets"
    with ArrowRowsWriter(scratch / f"{split}.arrow") as writer:
        for index, entry in enumerate(entries):
            entry = entry_with_fields(cfg, split_key, index, entry)
            for rows in _entry_examples(cfg, tokenizer, entry, index, strategy, report):
                writer.write(rows.prompt, rows.completion, rows.label)
                report.examples += len(rows.label)
                report.desirable += sum(rows.label)
    LOG.info(report.line(cfg.sequence_len))
    _check_not_empty(report, cfg.sequence_len)
    return writer.dataset(), report


def _check_not_empty(report: SplitReport, sequence_len: int) -> None:
    if report.examples:
        return
    if report.over_long_lengths and report.removed[TOO_LONG] == sum(report.removed.values()):
        raise NoTrainableRowsError(
            f"all {report.removed[TOO_LONG]} examples in {', '.join(report.sources)} are longer than "
            f"sequence_len {sequence_len} (lengths: {describe_lengths(report.over_long_lengths)}), "
            "and `excess_length_strategy: drop` removed them all. Raise `sequence_len` to at least "
            "the p90 above, or remove `excess_length_strategy: drop` so over-long rows are truncated "
            "(keeping the completion and the end of the prompt)."
        )
    if report.removed[CUT_TO_NOTHING] and report.removed[CUT_TO_NOTHING] + report.removed[TOO_LONG] == sum(
            report.removed.values()):
        raise NoTrainableRowsError(
            f"sequence_len {sequence_len} is too short for any example in {', '.join(report.sources)}: truncated "
            f"to fit, each would keep no prompt or no response, nothing to learn from (prompt + response lengths: "
            f"{describe_lengths(report.over_long_lengths)}). Raise `sequence_len` to at least the median above "
            "(`axolotl kto check CONFIG` shows the lengths per label)."
        )
    reasons = ", ".join(f"{reason}: {count}" for reason, count in report.removed.items()) or "no rows"
    raise NoTrainableRowsError(
        f"no {report.split} examples left in {', '.join(report.sources)} ({reasons})"
    )


def warn_if_one_class(examples: int, desirable: int) -> None:
    if examples and desirable in (0, examples):
        kind = "desirable" if desirable else "undesirable"
        LOG.warning(
            f"all {examples} training examples are {kind}. KTO then trains on the {kind} "
            "term alone: it moves each example's reward against the KL reference point, with no "
            "contrast between good and bad answers, which behaves much like "
            + ("SFT with a brake" if desirable else "unlikelihood training with a brake")
            + ". Add examples with the other label for a real preference signal."
        )


def prepare_splits(cfg, tokenizer, scratch: Path) -> tuple[dict, PreparedReport]:
    """({"train": Dataset, "test": Dataset}, report) from the config's entries: read, checked, rendered, fitted, split.

    The rows are written to Arrow files in `scratch` as they are prepared (see `load_split`).
    """
    from axolotl.utils.data.shared import create_train_validation_split

    train_dataset, train_report = load_split(cfg, tokenizer, cfg.datasets, "train", scratch)
    lines = {"train": train_report.line(cfg.sequence_len)}
    if cfg.shuffle_merged_datasets is not False:
        train_dataset = train_dataset.shuffle(seed=cfg.seed or 42)
    splits = {"train": train_dataset}
    if cfg.test_datasets:
        splits["test"], test_report = load_split(cfg, tokenizer, cfg.test_datasets, "test", scratch)
        lines["test"] = test_report.line(cfg.sequence_len)
    elif cfg.val_set_size:
        splits["train"], splits["test"] = create_train_validation_split(train_dataset, cfg, cfg.val_set_size)
    return splits, PreparedReport(lines, train_report.examples, train_report.desirable)


def load_kto_datasets(cfg, preprocess: bool = False):
    """The plugin's replacement for Axolotl's `load_preference_datasets` on `rl: kto` runs.

    The prepared rows are saved under `dataset_prepared_path` and loaded by later runs with the
    same data and settings (`data/prepared.py`); `preprocess` (`axolotl preprocess`) always rebuilds them.
    """
    from axolotl.common.datasets import TrainDatasetMeta
    from axolotl.loaders import load_tokenizer


    tokenizer = load_tokenizer(cfg)
    require_chat_template(tokenizer, cfg.tokenizer_config or cfg.base_model)
    splits, report = load_or_prepare(cfg, tokenizer, lambda scratch: prepare_splits(cfg, tokenizer, scratch),
                                     rebuild=preprocess)
    warn_if_one_class(report.train_examples, report.train_desirable)
    train_dataset, eval_dataset = splits["train"], splits.get("test")
    # Axolotl trains for these steps (`max_steps`): count the rows an epoch reads where the trainer repeats a rare class
    n_desirable = int(label_array(train_dataset).sum())
    plan = balance_plan(n_desirable, len(train_dataset) - n_desirable, cfg.kto_auto_weights, cfg.kto_desirable_weight,
                        cfg.kto_undesirable_weight, cfg.kto_class_balance)
    epoch_rows = len(train_dataset) if plan is None else plan.epoch_rows
    total_num_steps = int(math.ceil(epoch_rows * cfg.num_epochs / cfg.batch_size))
    return TrainDatasetMeta(
        train_dataset=train_dataset, eval_dataset=eval_dataset, total_num_steps=total_num_steps
    )
