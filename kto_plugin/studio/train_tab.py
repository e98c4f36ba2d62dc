"""The Train tab: `axolotl train CONFIG` started and stopped from the page, its log and metrics live.

Every two seconds the page shows the run's state, the tail of its log, and plots of the
loss, the rewards (desirable, undesirable, margin), the KL estimate, the accepted answers' NLL per
token against the reference's, on the training rows and the eval split (likelihood displacement shows as a policy
line rising above its reference) and beta from
`OUTPUT_DIR/kto_metrics.jsonl`.
"""

from __future__ import annotations

from kto_plugin.errors import BusyError
from kto_plugin.studio.page_messages import shows_errors
from kto_plugin.studio.train_process import PLOTTED, metric_frames

PLOT_TITLES = {"loss": "Loss", "rewards": "Rewards (desirable, undesirable, margin)", "kl": "Reference point z0",
               "accepted": "Accepted answers: NLL per token (policy above reference: displacement; held-out: eval split)", "beta": "Beta"}
REFRESH_SECONDS = 2.0
LOG_LINES = 16  # as many as the box shows, so its last line is the log's last


def build_train_tab(studio):
    import gradio as gr

    config_line = gr.Markdown(elem_id="train-config")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
        stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
    state = gr.Markdown(elem_id="train-state")
    with gr.Row():
        plots = {name: gr.LinePlot(x="step", y="value", color="series", title=PLOT_TITLES[name], height=260,
                                   elem_id=f"train-plot-{name}")
                 for name in list(PLOTTED)[:2]}
    with gr.Row():
        plots.update({name: gr.LinePlot(x="step", y="value", color="series", title=PLOT_TITLES[name], height=260,
                                        elem_id=f"train-plot-{name}")
                      for name in list(PLOTTED)[2:]})
    log = gr.Textbox(label=f"Log (last {LOG_LINES} lines, all in OUTPUT_DIR/studio-train.log)", lines=LOG_LINES,
                     max_lines=LOG_LINES, autoscroll=True, elem_id="train-log")
    timer = gr.Timer(REFRESH_SECONDS)
    outputs = [state, log, *plots.values()]

    def describe_config():
        try:
            return (f"`axolotl train {studio.models.config_path()}`; output_dir "
                    f"`{studio.models.declared_output_dir()}`")
        except (ValueError, FileNotFoundError) as err:
            return f"**Error:** {err}"

    def refresh():
        from kto_plugin.training.metrics_log import METRICS_FILE, read_metrics

        run = studio.train
        records = []
        folder = run.output_dir
        if folder is None:  # nothing started from this studio yet: the config's last run, if any
            try:
                folder = studio.models.declared_output_dir()
            except (ValueError, FileNotFoundError):
                folder = None
        if folder is not None and (folder / METRICS_FILE).exists():
            records = read_metrics(folder)
        frames = metric_frames(records)
        return (f"**{run.status()}**", run.log_tail(LOG_LINES), *(frames[name] for name in plots))

    @shows_errors(1, status_at=0)
    def on_start():
        # no base_model, or no YAML, is said here; what else Axolotl refuses, the run's log says
        if studio.iterate.running():
            raise BusyError("an `axolotl kto iterate` round from the Rounds tab is going: stop it, or wait for it")
        return studio.train.start(studio.models.config_path(), studio.models.declared_output_dir())

    start.click(on_start, None, state)
    stop.click(lambda: studio.train.stop(), None, state)
    timer.tick(refresh, None, outputs, show_progress="hidden")
    return describe_config, config_line
