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

from kto_plugin.data.row_checks import DataCheckReport

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
    from kto_plugin.data.check_tables import finding_tables, lengths_table, problems_table, sources_table

    def as_html(table) -> str:
        return _table(table.columns, table.rows, numeric=set(table.numeric))

    weights = report.auto_weights
    weights_text = (
        f"<code>kto_auto_weights: true</code> would pick desirable weight {weights['desirable_weight']:.3g} and "
        f"undesirable weight {weights['undesirable_weight']:.3g}." if weights else ""
    )
    mix = report.prompts
    prompt_mix = ", ".join(f"{html.escape(str(key))}: {value}" for key, value in mix.items()) if mix else ""
    plots = length_histograms_svg(report) if report.examples else ""
    sections = [f"<details open><summary>{html.escape(table.title)}</summary>{as_html(table)}</details>"
                for table in finding_tables(report, max_rows_per_kind)]
    verdict_class = "problems" if report.hurts_training() else "clean"
    template = Template(files("kto_plugin.data").joinpath("check_report.html").read_text(encoding="utf-8"))
    return template.substitute(
        title=html.escape(", ".join(report.inputs)), inputs=html.escape(", ".join(report.inputs)),
        tokenizer=html.escape(report.tokenizer), sequence_len=report.sequence_len,
        verdict=html.escape(report.verdict()), verdict_class=verdict_class, rows_table=as_html(sources_table(report)),
        weights=weights_text, prompt_mix=prompt_mix, lengths_table=as_html(lengths_table(report)), plots=plots,
        problems_table=as_html(problems_table(report)), problem_rows="\n".join(sections),
    )
