"""The Compare tab: blind A/B answers of the base and the trained model, rated 1-5 in the page, then unblinded.

The sheet is the one `axolotl kto compare` writes (`sheet.csv`, `key.json`), in
`OUTPUT_DIR/compare` unless another folder is named; each rating is saved into it at once.
Which model wrote A is hidden and drawn per prompt. Score unblinds the sheet with the
same numbers as `axolotl kto score`: mean rating per model with a 95% interval, and the
trained model's win rate.
"""

from __future__ import annotations

from pathlib import Path

from kto_plugin.errors import ConfigError, MissingFileError
from kto_plugin.studio.page_messages import shows_errors

RATINGS = ["1", "2", "3", "4", "5"]


def score_table(summary):
    import pandas as pd

    rows = []
    for model in ("base", "tuned"):
        stats = summary.model(model)
        low, high = stats["ci95"]
        rows.append([model if model == "base" else "trained", round(stats["mean"], 2),
                     f"[{low:.2f}, {high:.2f}]", stats["n"]])
    return pd.DataFrame(rows, columns=["model", "mean rating", "95% interval", "n"])


def build_compare_tab(studio):
    import gradio as gr

    from kto_plugin.evaluation.generation import GenerationSettings
    from kto_plugin.evaluation.side_by_side import from_spreadsheet
    from kto_plugin.studio.blind_compare import make_sheet, read_sheet, save_rating, score_rated_sheet

    with gr.Row():
        prompts_text = gr.Textbox(label="Prompts, one per line", lines=4, elem_id="compare-prompts", scale=3)
        with gr.Column(scale=2):
            prompts_file = gr.Textbox(label="...or a text file of prompts", elem_id="compare-prompts-file")
            folder = gr.Textbox(label="Sheet folder (empty: OUTPUT_DIR/compare)", elem_id="compare-folder")
    with gr.Row():
        temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0: greedy)",
                                elem_id="compare-temperature")
        max_new_tokens = gr.Number(value=96, precision=0, minimum=1, label="Max new tokens")
        min_new_tokens = gr.Number(value=0, precision=0, minimum=0, label="Min new tokens",
                                   elem_id="compare-min-new-tokens")
        make = gr.Button("Answer with both models (blind)", variant="primary", elem_id="compare-make")
        reopen = gr.Button("Open the sheet in the folder", elem_id="compare-open")
    position = gr.Markdown(elem_id="compare-position")
    prompt = gr.Textbox(label="Prompt", interactive=False, lines=2, elem_id="compare-prompt")
    with gr.Row():
        with gr.Column():
            answer_a = gr.Textbox(label="Answer A", interactive=False, lines=5, elem_id="compare-answer-a")
            rating_a = gr.Radio(RATINGS, label="Rating of A (1 bad - 5 excellent)", elem_id="compare-rating-a")
        with gr.Column():
            answer_b = gr.Textbox(label="Answer B", interactive=False, lines=5, elem_id="compare-answer-b")
            rating_b = gr.Radio(RATINGS, label="Rating of B (1 bad - 5 excellent)", elem_id="compare-rating-b")
    with gr.Row():
        previous = gr.Button("Previous", elem_id="compare-previous")
        save = gr.Button("Save ratings and next", variant="primary", elem_id="compare-save")
        score = gr.Button("Score (unblind)", elem_id="compare-score")
    status = gr.Markdown(elem_id="compare-status")
    scores = gr.Dataframe(label="Unblinded", interactive=False, elem_id="compare-scores")
    sheet_state = gr.State(None)  # {"sheet": path, "index": int}
    shown_outputs = [position, prompt, answer_a, answer_b, rating_a, rating_b, status, sheet_state]

    def sheet_folder(typed: str) -> Path:
        if typed and typed.strip():
            return studio.folders.resolve(typed)
        return studio.folders.resolve(studio.models.declared_output_dir() / "compare")

    def show(sheet: Path, index: int, message: str):
        rows = read_sheet(sheet)
        index = max(0, min(index, len(rows) - 1))
        row = rows[index]
        rated = sum(1 for r in rows if r["rating_a"] and r["rating_b"])
        return (f"Prompt **{index + 1}** of {len(rows)} · rated {rated} · sheet `{sheet}`", from_spreadsheet(row["prompt"]),
                from_spreadsheet(row["answer_a"]), from_spreadsheet(row["answer_b"]), row["rating_a"] or None, row["rating_b"] or None, message,
                {"sheet": str(sheet), "index": index})

    @shows_errors(len(shown_outputs), status_at=6)
    def on_make(typed_prompts, prompts_path, typed_folder, temp, max_new, min_new,
                progress=gr.Progress(track_tqdm=True)):
        prompts = studio.prompts(typed_prompts, prompts_path)
        target = sheet_folder(typed_folder)
        settings = GenerationSettings(max_new_tokens=int(max_new), min_new_tokens=int(min_new), temperature=float(temp),
                                      seed=0)
        sheet = make_sheet(studio.models, prompts, settings, target)
        return show(sheet, 0, f"{len(prompts)} prompts answered by both models; rate A and B, 1 to 5.")

    @shows_errors(len(shown_outputs), status_at=6)
    def on_reopen(typed_folder):
        sheet = sheet_folder(typed_folder) / "sheet.csv"
        if not sheet.exists():
            raise MissingFileError(f"no sheet in {sheet.parent}: answer some prompts first")
        rows = read_sheet(sheet)
        first_unrated = next((i for i, row in enumerate(rows) if not (row["rating_a"] and row["rating_b"])), 0)
        return show(sheet, first_unrated, "Sheet opened.")

    def moving(step: int, saving: bool):
        @shows_errors(len(shown_outputs), status_at=6)
        def on_move(state, a, b):
            if not state:
                raise ConfigError("no sheet yet: answer some prompts with both models first")
            sheet = Path(state["sheet"])
            message = ""
            if saving:
                if a is None or b is None:
                    raise ConfigError("rate both answers, 1 (bad) to 5 (excellent), then save")
                row_id = read_sheet(sheet)[state["index"]]["id"]
                save_rating(sheet, row_id, int(a), int(b))
                message = f"Saved prompt {state['index'] + 1}: A {a}, B {b}."
            return show(sheet, state["index"] + step, message)

        on_move.__name__ = "on_save" if saving else "on_previous"
        return on_move

    @shows_errors(2, status_at=0)
    def on_score(state):
        if not state:
            raise ConfigError("no sheet yet: answer some prompts with both models first")
        summary = score_rated_sheet(Path(state["sheet"]))
        text = (f"Trained model wins **{summary.tuned_wins}**, ties {summary.ties}, base wins "
                f"{summary.base_wins}: win rate **{summary.tuned_win_rate:.2f}** over {summary.prompts} "
                f"prompts (written to {Path(state['sheet']).with_name('score.json')})")
        return text, score_table(summary)

    make.click(on_make, [prompts_text, prompts_file, folder, temperature, max_new_tokens, min_new_tokens],
               shown_outputs)
    reopen.click(on_reopen, [folder], shown_outputs)
    save.click(moving(1, True), [sheet_state, rating_a, rating_b], shown_outputs)
    previous.click(moving(-1, False), [sheet_state, rating_a, rating_b], shown_outputs)
    score.click(on_score, [sheet_state], [status, scores])
