"""What `axolotl kto check` finds in feedback examples, and the report it prints, saves as JSON and draws.

Findings, each tied to a file and line:

| kind                  | what                                                           | hurts training |
|-----------------------|----------------------------------------------------------------|----------------|
| unusable              | bad label, missing field, no assistant answer                 | yes (the run stops) |
| conflicting_labels    | the same prompt and response (normalised) with both labels     | yes |
| exact_duplicate       | an example repeated as written, same label                     | yes |
| normalised_duplicate  | repeated up to case and whitespace, same label                 | yes |
| low_information       | "ok", "好的", empty, too short (`low_information`)             | yes |
| completion_truncated  | over `sequence_len`, and truncation would cut the response     | yes |
| prompt_truncated      | over `sequence_len`; truncation cuts only the prompt's start   | no  |
| one_class             | every example has the same label                               | yes |

Truncation follows `lengths`: the prompt keeps max(S - c, min(p, S // 4)) tokens of its end,
the response the rest of the window, so with p prompt and c response tokens and
p + c > S the response loses max(0, c - (S - prompt_budget)) tokens.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from tqdm.auto import tqdm

from kto_plugin.data.feedback_examples import (
    exact_key,
    normalised_key,
    normalised_prompt_key,
    prompt_preview,
)
from kto_plugin.data.lengths import token_counts
from kto_plugin.data.located_examples import LocatedExample, UnusableRow
from kto_plugin.data.low_information import LowInformationRules
from kto_plugin.data.rendering import render_example

# kind -> (title, hurts training, what `clean` does with it)
FINDING_KINDS = {
    "unusable": ("unusable rows (bad label, missing field, no answer)", True, "to the review file"),
    "conflicting_labels": ("same prompt and response with both labels", True, "to the review file"),
    "exact_duplicate": ("exact duplicates", True, "removed (first kept)"),
    "normalised_duplicate": ("duplicates up to case and whitespace", True, "removed (first kept)"),
    "low_information": ("low-information responses", True, "removed"),
    "completion_truncated": ("over sequence_len: the response would be cut", True, "kept: raise sequence_len"),
    "prompt_truncated": ("over sequence_len: only the prompt's start would be cut", False, "kept"),
    "one_class": ("every example has the same label", True, "-"),
}
LABEL_NAMES = {True: "desirable", False: "undesirable"}


@dataclass
class Finding:
    kind: str
    where: str
    source: str
    row_index: int
    label: str
    prompt: str
    response: str
    detail: str


@dataclass
class DataCheckReport:
    inputs: list[str]
    tokenizer: str
    sequence_len: int
    rows_read: int
    examples: int = 0
    desirable: int = 0
    per_source: dict = field(default_factory=dict)  # source -> {"desirable": n, "undesirable": n, "unusable": n}
    lengths: dict = field(default_factory=dict)  # "prompt"/"completion"/"total" -> label name -> [tokens]
    prompts: dict = field(default_factory=dict)  # how labels mix per prompt
    findings: list[Finding] = field(default_factory=list)
    auto_weights: dict | None = None  # what kto_auto_weights would pick (filled by the CLI)

    @property
    def undesirable(self) -> int:
        return self.examples - self.desirable

    def counts(self) -> Counter:
        return Counter(finding.kind for finding in self.findings)

    def hurts_training(self) -> bool:
        return any(FINDING_KINDS[kind][1] for kind in self.counts())

    def length_summary(self) -> dict:
        """field -> label name -> {min, median, p90, p99, max}; "all" pools both labels."""
        summary = {}
        for name, by_label in self.lengths.items():
            summary[name] = {}
            pooled = [value for values in by_label.values() for value in values]
            for label, values in [*by_label.items(), ("all", pooled)]:
                summary[name][label] = describe(values)
        return summary

    def source_rows(self) -> list[list]:
        """[source, desirable, undesirable, unusable] per source, then the "all" row."""
        rows = [[source, c["desirable"], c["undesirable"], c["unusable"]] for source, c in self.per_source.items()]
        return rows + [["all", self.desirable, self.undesirable, self.counts().get("unusable", 0)]]

    def length_rows(self) -> list[list]:
        """["prompt (desirable)", count, min, median, p90, p99, max] for every field and label with examples."""
        return [[f"{name} ({label})", *(stats[key] for key in ("count", "min", "median", "p90", "p99", "max"))]
                for name, by_label in self.length_summary().items()
                for label, stats in by_label.items() if stats.get("count")]

    def findings_by_kind(self) -> dict[str, list[Finding]]:
        """The findings grouped by kind, in FINDING_KINDS order, kinds with none left out."""
        grouped: dict[str, list[Finding]] = {kind: [] for kind in FINDING_KINDS}
        for finding in self.findings:
            grouped[finding.kind].append(finding)
        return {kind: found for kind, found in grouped.items() if found}

    def verdict(self) -> str:
        if not self.hurts_training():
            return "Clean: nothing found that would hurt training."
        return "Problems found that would hurt training: " + ", ".join(
            f"{FINDING_KINDS[kind][0]} ({count})" for kind, count in self.counts().items() if FINDING_KINDS[kind][1])

    def to_json(self) -> dict:
        counts = self.counts()
        return {
            "inputs": self.inputs,
            "tokenizer": self.tokenizer,
            "sequence_len": self.sequence_len,
            "rows_read": self.rows_read,
            "examples": self.examples,
            "desirable": self.desirable,
            "undesirable": self.undesirable,
            "per_source": self.per_source,
            "token_lengths": self.length_summary(),
            "prompts": self.prompts,
            "auto_weights": self.auto_weights,
            "problem_counts": {kind: counts.get(kind, 0) for kind in FINDING_KINDS},
            "hurts_training": self.hurts_training(),
            "findings": [asdict(finding) for finding in self.findings],
        }


def describe(values: list[int]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def quantile(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"count": len(ordered), "min": ordered[0], "median": int(statistics.median(ordered)),
            "p90": quantile(0.9), "p99": quantile(0.99), "max": ordered[-1]}


def measure_lengths(examples: list[LocatedExample], tokenizer, progress: bool = True) -> tuple[list[int], list[int]]:
    """Prompt and response token counts of each example, rendered with the tokenizer's chat template."""
    prompts, completions = [], []
    rendered_prompts: dict[str, str] = {}
    for example in tqdm(examples, desc="Rendering", leave=False, disable=not progress):
        if isinstance(example.prompt, str):
            prompts.append(example.prompt)
            completions.append(example.completion)
            continue
        prompt, completion = render_example(tokenizer, example.prompt, example.completion)
        prompts.append(rendered_prompts.setdefault(prompt, prompt))  # one string object per distinct prompt
        completions.append(completion)
    return token_counts(tokenizer, prompts), token_counts(tokenizer, completions)


def _finding(kind: str, example: LocatedExample, detail: str) -> Finding:
    return Finding(kind, example.where, example.source, example.row_index, LABEL_NAMES[example.label],
                   prompt_preview(example), " ".join(example.completion.split())[:120], detail)


def _label_findings(examples: list[LocatedExample]) -> list[Finding]:
    """Conflicting labels first, then duplicates among the rest (the first occurrence is kept)."""
    findings: list[Finding] = []
    groups: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        groups[normalised_key(example)].append(i)
    conflicted: set[int] = set()
    for members in groups.values():
        if len(members) > 1 and len({examples[i].label for i in members}) == 2:
            conflicted.update(members)
            for i in members:
                other = next(examples[j] for j in members if examples[j].label != examples[i].label)
                findings.append(_finding("conflicting_labels", examples[i],
                                         f"labelled {LABEL_NAMES[other.label]} at {other.where}"))
    seen_exact: dict[tuple, str] = {}
    seen_normalised: dict[tuple, str] = {}
    for i, example in enumerate(examples):
        if i in conflicted:
            continue
        exact = (exact_key(example), example.label)
        normalised = (normalised_key(example), example.label)
        if exact in seen_exact:
            findings.append(_finding("exact_duplicate", example, f"same as {seen_exact[exact]}"))
        elif normalised in seen_normalised:
            findings.append(_finding("normalised_duplicate", example, f"same as {seen_normalised[normalised]} up to case and spaces"))
        else:
            seen_exact[exact] = example.where
            seen_normalised.setdefault(normalised, example.where)
    return findings


def content_findings(examples: list[LocatedExample], unusable: list[UnusableRow],
                     rules: LowInformationRules) -> list[Finding]:
    """What the rows themselves say, no tokenizer needed: unusable rows, conflicting labels,
    duplicates and low-information responses (what `clean` acts on)."""
    findings = [Finding("unusable", row.where, row.source, row.row_index, "-", "", "", row.reason) for row in unusable]
    findings.extend(_label_findings(examples))
    for example in examples:
        reason = rules.reason(example.completion)
        if reason:
            findings.append(_finding("low_information", example, reason))
    return findings


def _length_findings(examples, prompt_tokens, completion_tokens, sequence_len) -> list[Finding]:
    findings = []
    for example, p, c in zip(examples, prompt_tokens, completion_tokens):
        if p + c <= sequence_len:
            continue
        prompt_budget = max(sequence_len - c, min(p, sequence_len // 4))
        completion_cut = max(0, c - (sequence_len - prompt_budget))
        prompt_cut = p - prompt_budget
        detail = (f"{p + c} tokens ({p} prompt + {c} response) > sequence_len {sequence_len}: "
                  f"truncation cuts {prompt_cut} prompt tokens")
        if completion_cut:
            findings.append(_finding("completion_truncated", example, f"{detail} and the last {completion_cut} of the response"))
        else:
            findings.append(_finding("prompt_truncated", example, detail))
    return findings


def _prompt_label_mix(examples: list[LocatedExample]) -> dict:
    labels_by_prompt: dict[str, set] = defaultdict(set)
    answers_by_prompt: Counter = Counter()
    for example in examples:
        key = normalised_prompt_key(example)
        labels_by_prompt[key].add(example.label)
        answers_by_prompt[key] += 1
    mix = Counter(
        "both labels" if len(labels) == 2 else ("only desirable" if True in labels else "only undesirable")
        for labels in labels_by_prompt.values()
    )
    repeated_one_class = sum(1 for key, labels in labels_by_prompt.items() if len(labels) == 1 and answers_by_prompt[key] > 1)
    return {"prompts": len(labels_by_prompt), **dict(mix), "one-class prompts with several answers": repeated_one_class}


def check_examples(inputs: list[str], tokenizer, tokenizer_name: str, sequence_len: int, rows_read: int,
                   examples: list[LocatedExample], unusable: list[UnusableRow],
                   rules: LowInformationRules | None = None, progress: bool = True) -> DataCheckReport:
    """Everything `check` reports about these examples."""
    rules = rules or LowInformationRules()
    report = DataCheckReport(inputs, tokenizer_name, sequence_len, rows_read)
    report.examples = len(examples)
    report.desirable = sum(example.label for example in examples)
    per_source: dict[str, Counter] = defaultdict(Counter)
    for example in examples:
        per_source[example.source][LABEL_NAMES[example.label]] += 1
    for row in unusable:
        per_source[row.source]["unusable"] += 1
    report.per_source = {source: {name: counts.get(name, 0) for name in ("desirable", "undesirable", "unusable")}
                         for source, counts in per_source.items()}
    report.findings.extend(content_findings(examples, unusable, rules))
    if not examples:
        return report
    prompt_tokens, completion_tokens = measure_lengths(examples, tokenizer, progress)
    report.findings.extend(_length_findings(examples, prompt_tokens, completion_tokens, sequence_len))
    report.lengths = {name: {"desirable": [], "undesirable": []} for name in ("prompt", "completion", "total")}
    for example, p, c in zip(examples, prompt_tokens, completion_tokens):
        label = LABEL_NAMES[example.label]
        report.lengths["prompt"][label].append(p)
        report.lengths["completion"][label].append(c)
        report.lengths["total"][label].append(p + c)
    report.prompts = _prompt_label_mix(examples)
    if report.desirable in (0, report.examples):
        only = "desirable" if report.desirable else "undesirable"
        report.findings.append(Finding("one_class", "all inputs", "", -1, only, "", "",
                                       f"all {report.examples} examples are {only}: KTO has no contrast to learn"))
    return report
