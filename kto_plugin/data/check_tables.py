"""The tables of a data check, once: the terminal (rich), the studio (Gradio) and the HTML page render these.

Each `ReportTable` has a title, its columns, its rows and which columns hold numbers; the
front ends only lay them out, so a header or a column never differs between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kto_plugin.data.class_balance import sampling_plan
from kto_plugin.data.row_checks import FINDING_KINDS, DataCheckReport


@dataclass(frozen=True)
class ReportTable:
    title: str
    columns: list[str]
    rows: list[list]
    numeric: frozenset[int] = field(default_factory=frozenset)  # right-aligned columns


def sources_table(report: DataCheckReport) -> ReportTable:
    return ReportTable(f"KTO data: {report.rows_read} rows read, {report.examples} examples",
                       ["source", "desirable", "undesirable", "unusable"], [list(row) for row in report.source_rows()],
                       frozenset({1, 2, 3}))


def lengths_table(report: DataCheckReport) -> ReportTable:
    return ReportTable(f"Token lengths ({report.tokenizer}); sequence_len {report.sequence_len}",
                       ["tokens", "examples", "min", "median", "p90", "p99", "max"],
                       [list(row) for row in report.length_rows()], frozenset(range(1, 7)))


def problems_table(report: DataCheckReport) -> ReportTable:
    counts = report.counts()
    return ReportTable("Problems", ["problem", "rows", "hurts training", "what clean does"],
                       [[title, counts.get(kind, 0), "yes" if hurts else "no", action]
                        for kind, (title, hurts, action) in FINDING_KINDS.items()], frozenset({1}))


FINDING_COLUMNS = ["where", "label", "prompt", "response", "why"]


def finding_tables(report: DataCheckReport, rows_per_kind: int | None = None) -> list[ReportTable]:
    """One table per kind of problem, its rows in file order (the first `rows_per_kind` of them when given)."""
    tables = []
    for kind, found in report.findings_by_kind().items():
        shown = found if rows_per_kind is None else found[:rows_per_kind]
        more = f" (first {len(shown)} of {len(found)})" if len(shown) < len(found) else ""
        tables.append(ReportTable(f"{FINDING_KINDS[kind][0]}: {len(found)}{more}", FINDING_COLUMNS,
                                  [[f.where, f.label, f.prompt, f.response, f.detail] for f in shown]))
    return tables


def weights_sentence(report: DataCheckReport) -> str | None:
    weights = report.auto_weights
    if not weights:
        return None
    sentence = (f"`kto_auto_weights: true` would pick desirable weight {weights['desirable_weight']:.3g}, "
                f"undesirable weight {weights['undesirable_weight']:.3g}")
    plan = sampling_plan(report.desirable, report.undesirable, weights["desirable_weight"],
                         weights["undesirable_weight"])
    if plan is None:
        return sentence
    return (f"{sentence}; that far apart, the trainer reads each of the {plan.rows} {plan.repeated} rows about "
            f"{plan.factor:.3g} times an epoch instead and weighs every row about alike (`kto_class_balance: auto`): "
            f"an epoch of {plan.epoch_rows:,} rows"
            + (f", with the SFT term on them {plan.factor:.3g} times `kto_sft_weight`" if plan.repeated == "desirable"
               else ""))


CLEAN_ADVICE = ("`axolotl kto clean DATA -o OUT` removes duplicates and low-information rows and sets "
                "conflicting labels aside.")
