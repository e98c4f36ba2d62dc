"""What `axolotl kto clean` keeps, removes and sets aside, decided per input row.

A row is decided by its examples' findings (`row_checks`), in this order:

1. review: a row that cannot be used (bad label, missing field) or whose prompt and
   response also appear with the other label: written to the review file, unchanged, for
   a person to decide; never silently lost;
2. removed: a low-information response ("ok", "好的", `--min-chars`, `--pattern`);
3. removed: a duplicate (exact, or up to case and whitespace) of an earlier row with the
   same label; the first occurrence is kept. A paired row is a duplicate only when both
   its examples are;
4. kept: everything else, written unchanged in the input's format and field names.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from kto_plugin.data.located_examples import LocatedExample, UnusableRow
from kto_plugin.data.low_information import LowInformationRules
from kto_plugin.data.row_checks import FINDING_KINDS, Finding, content_findings

REVIEW_KINDS = ("unusable", "conflicting_labels")
DUPLICATE_KINDS = ("exact_duplicate", "normalised_duplicate")


@dataclass
class RowDecision:
    row_index: int
    where: str
    action: str  # "review" | "removed"
    kind: str
    detail: str


@dataclass
class CleanPlan:
    rows_read: int
    keep: list[int] = field(default_factory=list)
    decisions: list[RowDecision] = field(default_factory=list)

    def indices(self, action: str) -> list[int]:
        return [decision.row_index for decision in self.decisions if decision.action == action]

    def counts(self, action: str) -> Counter:
        return Counter(decision.kind for decision in self.decisions if decision.action == action)


def plan_clean(rows_read: int, examples: list[LocatedExample], unusable: list[UnusableRow],
               rules: LowInformationRules | None = None, keep_normalised_duplicates: bool = False) -> CleanPlan:
    """Decide every row of one file: keep, remove (with the reason) or set aside for review."""
    findings = content_findings(examples, unusable, rules or LowInformationRules())
    by_row: dict[int, list[Finding]] = defaultdict(list)
    for finding in findings:
        if keep_normalised_duplicates and finding.kind == "normalised_duplicate":
            continue
        by_row[finding.row_index].append(finding)
    examples_per_row = Counter(example.row_index for example in examples)
    plan = CleanPlan(rows_read)
    for index in range(rows_read):
        row_findings = by_row.get(index, [])
        decision = _decide(index, row_findings, examples_per_row[index])
        if decision is None:
            plan.keep.append(index)
        else:
            plan.decisions.append(decision)
    return plan


def _decide(index: int, row_findings: list[Finding], examples_in_row: int) -> RowDecision | None:
    def first(kinds):
        return next((finding for kind in kinds for finding in row_findings if finding.kind == kind), None)

    finding = first(REVIEW_KINDS)
    if finding:
        return RowDecision(index, finding.where, "review", finding.kind, finding.detail)
    finding = first(["low_information"])
    if finding:
        return RowDecision(index, finding.where, "removed", finding.kind, finding.detail)
    duplicates = [finding for finding in row_findings if finding.kind in DUPLICATE_KINDS]
    if duplicates and len(duplicates) >= examples_in_row:
        return RowDecision(index, duplicates[0].where, "removed", duplicates[0].kind, duplicates[0].detail)
    return None


def clean_report(plan: CleanPlan, rows: list[dict], paths: dict[str, str]) -> dict:
    """The JSON report: counts by reason and every removed or set-aside row with its location."""
    return {
        **paths,
        "rows_read": plan.rows_read,
        "kept": len(plan.keep),
        "removed": dict(plan.counts("removed")),
        "review": dict(plan.counts("review")),
        "reasons": {kind: FINDING_KINDS[kind][0] for kind in FINDING_KINDS},
        "rows": [
            {"where": decision.where, "action": decision.action, "kind": decision.kind,
             "detail": decision.detail, "row": rows[decision.row_index]}
            for decision in plan.decisions
        ],
    }
