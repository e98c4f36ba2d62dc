"""The `check --html` page: one self-contained file (inline SVG histograms, no scripts, no links out).

The page shows the verdict, rows per source and label, the class weights `kto_auto_weights`
would pick, token-length tables and histograms per label (matplotlib), and every problem
row with its file and line (up to `max_rows_per_kind` per kind; the JSON output has all).
"""

from __future__ import annotations

import html
import io
from importlib.resources import files
from string import Template

from kto_plugin.data.row_checks import FINDING_KINDS, DataCheckReport

LABEL_COLOURS = {"desirable": "#2da44e", "undesirable": "#cf222e"}


def _table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            css = "num" if i in numeric else "text"
            cells.append(f'<td class="{css}">{html.escape(str(cell))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def length_histograms_figure(report: DataCheckReport):
    """Prompt, response and total token lengths, desirable and undesirable overlaid (a matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [("prompt", "prompt tokens"), ("completion", "response tokens"), ("total", "prompt + response tokens")]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for axis, (name, title) in zip(axes, names):
        by_label = report.lengths.get(name, {})
        pooled = [value for values in by_label.values() for value in values]
        bins = min(40, max(5, len(set(pooled)))) if pooled else 10
        for label, values in by_label.items():
            if values:
                axis.hist(values, bins=bins, range=(min(pooled), max(pooled)), alpha=0.6,
                          color=LABEL_COLOURS[label], label=f"{label} ({len(values)})")
        if name == "total" and pooled and report.sequence_len <= 1.5 * max(pooled):
            axis.axvline(report.sequence_len, color="#57606a", linestyle="--", linewidth=1)
            axis.annotate(f"sequence_len {report.sequence_len}", (report.sequence_len, 0.95),
                          xycoords=("data", "axes fraction"), ha="right", fontsize=8, color="#57606a")
        elif name == "total" and pooled:
            title = f"prompt + response (all <= sequence_len {report.sequence_len})" if max(pooled) <= report.sequence_len else title
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("tokens")
        axis.set_ylabel("examples")
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def length_histograms_svg(report: DataCheckReport) -> str:
    """The histograms of `length_histograms_figure` as inline SVG."""
    import matplotlib
    import matplotlib.pyplot as plt

    figure = length_histograms_figure(report)
    buffer = io.StringIO()
    # no date and a fixed salt for the SVG's element ids: the same data gives the same page
    with matplotlib.rc_context({"svg.hashsalt": "kto-plugin-check"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def render_check_html(report: DataCheckReport, max_rows_per_kind: int = 500) -> str:
    counts = report.counts()
    rows_table = _table(["source", "desirable", "undesirable", "unusable"], report.source_rows(), numeric={1, 2, 3})
    weights = report.auto_weights
    weights_text = (
        f"<code>kto_auto_weights: true</code> would pick desirable weight {weights['desirable_weight']:.3g} and "
        f"undesirable weight {weights['undesirable_weight']:.3g}." if weights else ""
    )
    mix = report.prompts
    prompt_mix = ", ".join(f"{html.escape(str(key))}: {value}" for key, value in mix.items()) if mix else ""
    lengths_table = _table(["tokens", "examples", "min", "median", "p90", "p99", "max"], report.length_rows(),
                           numeric={1, 2, 3, 4, 5, 6})
    plots = length_histograms_svg(report) if report.examples else ""
    problems_table = _table(
        ["problem", "rows", "hurts training", "clean"],
        [[title, counts.get(kind, 0), "yes" if hurts else "no", action]
         for kind, (title, hurts, action) in FINDING_KINDS.items()],
        numeric={1},
    )
    sections = []
    for kind, found in report.findings_by_kind().items():
        title = FINDING_KINDS[kind][0]
        shown = found[:max_rows_per_kind]
        more = f" (first {len(shown)} of {len(found)}; --json lists all)" if len(found) > len(shown) else ""
        table = _table(["where", "label", "prompt", "response", "why"],
                       [[f.where, f.label, f.prompt, f.response, f.detail] for f in shown])
        sections.append(f"<details open><summary>{html.escape(title)}: {len(found)}{more}</summary>{table}</details>")
    verdict_class = "problems" if report.hurts_training() else "clean"
    template = Template(files("kto_plugin.data").joinpath("check_report.html").read_text(encoding="utf-8"))
    return template.substitute(
        title=html.escape(", ".join(report.inputs)), inputs=html.escape(", ".join(report.inputs)),
        tokenizer=html.escape(report.tokenizer), sequence_len=report.sequence_len,
        verdict=html.escape(report.verdict()), verdict_class=verdict_class, rows_table=rows_table,
        weights=weights_text, prompt_mix=prompt_mix, lengths_table=lengths_table, plots=plots,
        problems_table=problems_table, problem_rows="\n".join(sections),
    )
