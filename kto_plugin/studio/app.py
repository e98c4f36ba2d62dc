"""The studio's page: five tabs (Label, Check, Train, Compare, Rounds) over one config and the folders it may use."""

from __future__ import annotations

import threading
from importlib.resources import files
from pathlib import Path

from kto_plugin.errors import ConfigError
from kto_plugin.studio.folders import AllowedFolders
from kto_plugin.data.label_log import LabelLog, require_labels_file
from kto_plugin.studio.label_queue import LabelQueue, read_unlabelled
from kto_plugin.studio.run_models import RunModels, generate_for_prompts
from kto_plugin.studio.train_process import AxolotlProcess, TrainProcess

INTRO = """# KTO studio
Label answers (accept or reject) into a KTO file, check it, train on it, compare the base and trained
models blind, and run rounds of `axolotl kto iterate`. Files are read and written only in: {folders}."""


class Studio:
    """What the page works on: the config, its models and training run, the folders, the label queues."""

    def __init__(self, config: Path | None, folders: AllowedFolders, answers: str = "", labels: str = "labels.jsonl",
                 run: Path | None = None):
        self.run = Path(run).resolve() if run else None  # an `axolotl kto iterate` run folder (--run)
        self.base_folders = folders.allow(self.run) if self.run else folders
        self.models = RunModels(config)
        self.train = TrainProcess()
        self.iterate = AxolotlProcess()
        self.labels_default = labels
        self._last = (answers, labels)
        self._queues: dict = {}
        self._logs: dict = {}
        self._lock = threading.Lock()

    @property
    def folders(self) -> AllowedFolders:
        """The named folders, and the config's output_dir (named in the config) once the config loads."""
        try:
            return self.base_folders.allow(self.models.declared_output_dir())
        except (ValueError, FileNotFoundError):
            return self.base_folders

    def label_defaults(self) -> tuple[str, str]:
        """The files the Label tab opens on: the last ones loaded (or --answers), else the round of the run that waits
        for labels."""
        if not self._last[0]:
            run = self.run_folder_default()
            if run:
                from kto_plugin.errors import is_user_error
                from kto_plugin.studio.iterate_runs import read_run

                try:
                    waiting = read_run(Path(run)).waiting
                except Exception as err:  # noqa: BLE001 - a run folder the page cannot read: the Rounds tab says why
                    if not is_user_error(err):
                        raise
                    waiting = None
                if waiting and waiting["undecided"]:
                    return waiting["answers"], waiting["labels"]
        return self._last

    def run_folder_default(self) -> str:
        """--run, else the config's iterate run folder (`kto_iterate.output_dir`, or output_dir/iterate) if it holds
        a run; "" when neither does."""
        if self.run:
            return str(self.run)
        try:
            from kto_plugin.orchestration.iterate import run_folder_of
            from kto_plugin.orchestration.iterate_folder import RunFolder
            from kto_plugin.orchestration.iterate_settings import IterateSettings

            config = self.models.declared_keys()
            folder = RunFolder(run_folder_of(config, IterateSettings(**(config.get("kto_iterate") or {}))))
        except Exception:  # noqa: BLE001 - no config, or one without a usable kto_iterate: no run to show
            return ""
        return str(folder.path.resolve()) if folder.exists() else ""

    def label_queue(self, answers_typed: str, labels_typed: str) -> LabelQueue:
        """The queue of one answers file into one labelled file, shared by every open page."""
        folders = self.folders
        if not (answers_typed or "").strip():
            raise ConfigError("name a file of answers to label (or generate answers with the model)")
        answers = folders.resolve(answers_typed, must_exist=True)
        labels = folders.resolve(labels_typed or self.labels_default)
        if labels.suffix != ".jsonl":
            raise ConfigError(f"the labelled file is JSON Lines: name it with .jsonl, not {labels.name}")
        if labels == answers:
            raise ConfigError("the answers to label and the labelled file must be two files")
        stat = answers.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            known = self._queues.get((answers, labels))
            if known is None or known[0] != version:
                if labels not in self._logs:  # one log per labelled file, read once, then kept current
                    require_labels_file(labels)
                    self._logs[labels] = LabelLog(labels)
                known = (version, LabelQueue(answers, read_unlabelled(answers), self._logs[labels]))
                self._queues[(answers, labels)] = known
            self._last = (answers_typed, labels_typed)
        return known[1]

    def prompts(self, typed: str, path_typed: str) -> list[str]:
        """The prompts of a text file in the folders (one per line) if one is named, else those typed in."""
        from kto_plugin.evaluation.generation import read_prompts

        if path_typed and path_typed.strip():
            return read_prompts(self.folders.resolve(path_typed, must_exist=True))
        prompts = [line.strip() for line in (typed or "").splitlines() if line.strip()]
        if not prompts:
            raise ConfigError("no prompts: type some, one per line, or name a text file of prompts")
        return prompts

    def generate(self, which: str, prompts: list[str], per_prompt: int, settings, progress=None):
        return generate_for_prompts(self.models, which, prompts, per_prompt, settings, progress)


def shortcuts_head() -> str:
    """The Label tab's keyboard shortcuts, as a <script> for the page's head."""
    return "<script>\n" + files("kto_plugin.studio").joinpath("shortcuts.js").read_text(encoding="utf-8") + "</script>"


def build_app(studio: Studio):
    import gradio as gr

    from kto_plugin.studio.check_tab import build_check_tab
    from kto_plugin.studio.compare_tab import build_compare_tab
    from kto_plugin.studio.label_tab import build_label_tab
    from kto_plugin.studio.rounds_tab import build_rounds_tab
    from kto_plugin.studio.train_tab import build_train_tab

    with gr.Blocks(title="KTO studio", analytics_enabled=False) as app:  # nothing sent out of the machine
        gr.Markdown(INTRO.format(folders=studio.base_folders.describe()))
        with gr.Tabs() as tabs:
            with gr.Tab("Label", id="label", elem_id="tab-label"):
                on_page_open, open_outputs = build_label_tab(studio)
            with gr.Tab("Check", id="check", elem_id="tab-check"):
                build_check_tab(studio, labels_path=open_outputs[1])
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                describe_config, config_line = build_train_tab(studio)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare"):
                build_compare_tab(studio)
            with gr.Tab("Rounds", id="rounds", elem_id="tab-rounds"):
                open_run, run_folder = build_rounds_tab(studio, tabs, open_outputs)
        app.load(on_page_open, None, open_outputs)
        app.load(open_run, None, run_folder)
        app.load(describe_config, None, config_line)
    return app
