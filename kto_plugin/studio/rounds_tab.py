"""The Rounds tab: an `axolotl kto iterate` run's rounds, the round waiting for labels, and the next round started
from the page.

Every two seconds it reads the run folder (`iterate_runs`): a table of the rounds, a plot (points) of
the share of desirable answers per round (held-out answers a judge scored, and each round's
own answers as labelled), which round waits for your labels and how many are left. *Label this
round* opens the waiting round's answers in the Label tab; *Continue round K* / *Start round K*
runs `axolotl kto iterate CONFIG --resume` as a child process, its log shown here.
"""

from __future__ import annotations

from kto_plugin.errors import BusyError, ConfigError
from kto_plugin.studio.iterate_runs import LOG_NAME, read_run
from kto_plugin.studio.label_tab import shown
from kto_plugin.studio.page_messages import shows_errors

REFRESH_SECONDS = 2.0
LOG_LINES = 12
NO_RUN = ("No run shown. Name the folder of an `axolotl kto iterate` run (the one it printed; by default the config's "
          "output_dir/iterate) and press Show.")


def empty_frame(columns: dict):
    """No rows, typed columns ({name: type})."""
    import pandas as pd

    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})


def build_rounds_tab(studio, tabs, label_outputs):
    """The tab's components and handlers; `label_outputs` are the Label tab's (answers path, labels path, then what
    `label_tab.shown` fills). Returns the handler that fills the run folder when a page opens, and its output."""
    import gradio as gr

    with gr.Row():
        folder = gr.Textbox(label="Run folder of `axolotl kto iterate` (rounds.json, round-K/)", scale=4,
                            elem_id="rounds-folder")
        show = gr.Button("Show", scale=1, elem_id="rounds-show")
    summary = gr.Markdown(NO_RUN, elem_id="rounds-summary")
    with gr.Row():
        label = gr.Button("Label this round", elem_id="rounds-label")
        advance = gr.Button("Continue the run", variant="primary", elem_id="rounds-advance")
        stop = gr.Button("Stop", variant="stop", elem_id="rounds-stop")
    state = gr.Markdown(elem_id="rounds-state")
    # points, not lines: a person's run has one point after its first round, which a line would not draw
    plot = gr.ScatterPlot(x="round", y="share", color="series", title="Share of desirable answers per round",
                          height=300, y_lim=[0, 1], x_axis_format="d", elem_id="rounds-plot")
    table = gr.Dataframe(label="Rounds", interactive=False, wrap=True, elem_id="rounds-table")
    log = gr.Textbox(label=f"Log of the run started here (last {LOG_LINES} lines, all in RUN/{LOG_NAME})",
                     lines=LOG_LINES, max_lines=LOG_LINES, autoscroll=True, elem_id="rounds-log")
    timer = gr.Timer(REFRESH_SECONDS)

    def view(typed: str):
        return read_run(studio.folders.resolve(typed, must_exist=True))

    shown_stamp = gr.State(None)  # what this page's plot and table show, so a tick redraws them only on a change

    @shows_errors(7, status_at=0)
    def refresh(typed, stamp):
        process = studio.iterate
        # before a run is started here, the line keeps what a press said (a refusal stays readable)
        state_line = gr.skip() if process.process is None else f"`axolotl kto iterate`: **{process.status()}**"
        if not (typed or "").strip():
            return (NO_RUN, empty_frame({"round": int, "share": float, "series": str}), empty_frame({"round": int}),
                    gr.update(value="Continue the run"), state_line, process.log_tail(LOG_LINES), None)
        run = view(typed)
        new_stamp = run.stamp()
        if new_stamp == stamp:
            plot_value, table_value = gr.skip(), gr.skip()
        else:
            last_round = max([0, *(entry["round"] for entry in run.record["rounds"])])
            plot_value = gr.ScatterPlot(value=run.score_frame(), x_lim=[-0.25, last_round + 0.25])
            table_value = run.table()
        return (run.summary(running=process.running()), plot_value, table_value,
                gr.update(value=run.next_step().button), state_line,
                process.log_tail(LOG_LINES), new_stamp)

    @shows_errors(1 + 1 + len(label_outputs), status_at=0)
    def on_label(typed):
        run = view(typed)
        if run.waiting is None:
            raise ConfigError("no round waits for labels: " + ("the run's judge labels its answers itself"
                                                              if not run.human else "press Continue to go on"))
        queue = studio.label_queue(run.waiting["answers"], run.waiting["labels"])
        return (run.summary(), gr.Tabs(selected="label"), run.waiting["answers"], run.waiting["labels"],
                *shown(queue, f"Labelling round {run.waiting['round']} of the run in {run.folder}."))

    @shows_errors(1, status_at=0)
    def on_advance(typed):
        run = view(typed)
        step = run.next_step()
        if step.blocked:
            raise ConfigError(step.blocked)
        if studio.train.running():
            raise BusyError("a training run from the Train tab is going: stop it, or wait for it to finish")
        return studio.iterate.start_command(step.args, run.folder / LOG_NAME)

    outputs = [summary, plot, table, advance, state, log, shown_stamp]
    show.click(refresh, [folder, gr.State(None)], outputs)  # Show always redraws
    folder.submit(refresh, [folder, gr.State(None)], outputs)
    label.click(on_label, folder, [summary, tabs, *label_outputs])
    advance.click(on_advance, folder, state)
    stop.click(lambda: studio.iterate.stop(), None, state)
    timer.tick(refresh, [folder, shown_stamp], outputs, show_progress="hidden")

    def on_page_open():
        return studio.run_folder_default()

    return on_page_open, folder
