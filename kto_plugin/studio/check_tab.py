"""The Check tab: `axolotl kto check` on the labelled file, another data file, or the config's data.

The same report as the command (`data.data_check.run_check`): rows per label and
source, token lengths with histograms, duplicates, conflicting labels, low-information
answers and the class weights `kto_auto_weights` would pick; the HTML page of
`check --html` is written beside the checked file, and a copy handed to the page for download
from a temporary folder: Gradio serves files only from there and the current directory, and
refused (red "Error" badges) a report beside data anywhere else.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from kto_plugin.studio.page_messages import shows_errors

TARGETS = ("the labelled file", "a data file", "the config's datasets")
FINDING_ROWS_SHOWN = 200


def download_copy(path: Path) -> str:
    """A copy of `path` in a temporary folder of its own, the one place Gradio serves any file from."""
    folder = Path(tempfile.mkdtemp(prefix="kto_plugin-download-"))
    return str(shutil.copy2(path, folder / path.name))


def report_tables(report) -> dict:
    """The report's tables as (header, rows) for the page: the same `check_tables` the command prints."""
    from kto_plugin.data.check_tables import (
        FINDING_COLUMNS,
        finding_tables,
        lengths_table,
        problems_table,
        sources_table,
    )

    findings = []
    for table in finding_tables(report):
        problem = table.title.rsplit(":", 1)[0]
        findings.extend([problem, *row[:3], row[3][:120], row[4]] for row in table.rows)
    pairs = {"rows": sources_table(report), "lengths": lengths_table(report), "problems": problems_table(report)}
    return {
        **{name: (table.columns, table.rows) for name, table in pairs.items()},
        "findings": (["problem", *FINDING_COLUMNS], findings[:FINDING_ROWS_SHOWN]),
    }


def verdict_text(report, checked: str) -> str:
    from kto_plugin.data.check_tables import CLEAN_ADVICE, weights_sentence

    lines = [f"### {report.verdict()}",
             f"Checked {checked}: {report.rows_read} rows read, {report.examples} examples; token lengths with "
             f"{report.tokenizer}, against sequence_len {report.sequence_len}."]
    if weights_sentence(report):
        lines.append(weights_sentence(report) + ".")
    if report.hurts_training():
        lines.append(CLEAN_ADVICE)
    return "\n\n".join(lines)


def build_check_tab(studio, labels_path):
    """The tab's components, wired; `labels_path` is the Label tab's labelled-file box."""
    import gradio as gr
    import pandas as pd

    with gr.Row():
        target = gr.Radio(list(TARGETS), value=TARGETS[0], label="Check", elem_id="check-target")
        data_path = gr.Textbox(label="Data file (for 'a data file')", elem_id="check-path")
        run = gr.Button("Check", variant="primary", elem_id="check-run")
    verdict = gr.Markdown(elem_id="check-verdict")
    with gr.Row():
        rows = gr.Dataframe(label="Rows per source and label", interactive=False)
        problems = gr.Dataframe(label="Problems", interactive=False)
    lengths = gr.Dataframe(label="Token lengths", interactive=False)
    histograms = gr.Plot(label="Token lengths per label", elem_id="check-histograms")
    findings = gr.Dataframe(label=f"Problem rows (first {FINDING_ROWS_SHOWN}; the HTML report has them all)",
                            interactive=False, wrap=True)
    report_file = gr.File(label="HTML report", interactive=False, elem_id="check-report-file")
    outputs = [verdict, rows, problems, lengths, histograms, findings, report_file]

    @shows_errors(len(outputs), status_at=0)
    def on_check(which, typed_path, labels_typed, progress=gr.Progress(track_tqdm=True)):
        from kto_plugin.data.check_html import length_histograms_figure, render_check_html
        from kto_plugin.data.data_check import run_check
        from kto_plugin.data.feedback_files import write_text_atomically
        from kto_plugin.data.low_information import LowInformationRules

        if which == TARGETS[2]:
            inputs = (studio.models.config_path(),)
            beside = studio.models.declared_output_dir() / "check.html"
        else:
            typed = (labels_typed or studio.labels_default) if which == TARGETS[0] else typed_path
            inputs = (studio.folders.resolve(typed, must_exist=True),)
            beside = inputs[0].with_name(inputs[0].stem + ".check.html")
        report = run_check(inputs, None, None, None, LowInformationRules(), progress=True)
        tables = report_tables(report)
        write_text_atomically(render_check_html(report), beside)
        frames = {name: pd.DataFrame(rows_, columns=header) for name, (header, rows_) in tables.items()}
        return (verdict_text(report, ", ".join(map(str, inputs))), frames["rows"], frames["problems"],
                frames["lengths"], length_histograms_figure(report), frames["findings"], download_copy(beside))

    run.click(on_check, [target, data_path, labels_path], outputs)
