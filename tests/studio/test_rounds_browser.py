"""A person's round of `axolotl kto iterate` in the studio, in a real browser: the Rounds tab shows the round that
waits, the Label tab labels its answers, and Continue runs the real `axolotl kto iterate --resume` (a real
`axolotl train` of round 1 on the tiny model), which stops at round 2's answers, waiting in turn."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import serve
from helpers import base_config, with_lora
from test_studio_browser import text_includes, wait_for_prompt

PROMPTS = [f"Question {index}: where is parcel {index * 7}?" for index in range(4)]


def waiting_run(tmp_path: Path) -> tuple[Path, dict]:
    """What `axolotl kto iterate kto.yaml` with `judge: human` leaves: round 1 sampled, its answers waiting."""
    from kto_plugin.orchestration.iterate import run_iterate, run_settings

    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    config = with_lora(base_config(tmp_path, [{"path": "unused.jsonl", "type": "kto_plugin.query_response"}],
                                   max_steps=2, learning_rate=0.01))
    config["kto_iterate"] = {"prompts": str(tmp_path / "prompts.txt"), "judge": "human", "rounds": 1,
                             "held_out_share": 0.25, "answers_per_prompt": 2, "max_new_tokens": 6}
    path = tmp_path / "kto.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    outcome = run_iterate(path, run_settings(path, {}), progress=lambda line: None)
    return path, outcome.waiting_for


@pytest.mark.stack("py311")  # a real round of `axolotl train`; not about the Axolotl version
def test_a_person_labels_round_one_in_the_label_tab_and_continues_the_run_from_the_rounds_tab(
        axolotl, tmp_path, page, screenshots):
    from kto_plugin.orchestration.iterate_folder import STEPS, RunFolder
    from kto_plugin.orchestration.iterate_steps import read_jsonl
    from kto_plugin.studio.label_queue import read_unlabelled

    config, waiting = waiting_run(tmp_path)
    items = read_unlabelled(Path(waiting["answers"]))
    assert len(items) == waiting["undecided"] >= 4
    served = serve(config, [tmp_path])  # no --run: the config's output_dir/iterate holds the run
    try:
        page.goto(served.url)
        wait_for_prompt(page, items[0].prompt)  # the Label tab opens on the waiting round's answers
        page.get_by_role("tab", name="Rounds").click()
        page.wait_for_function(text_includes("#rounds-summary", f"Round 1 waits for your labels: {len(items)} of"))
        page.click("#rounds-advance")  # refused: nothing is labelled yet
        page.wait_for_function(text_includes("#rounds-state", f"has {len(items)} answers without a label"))
        page.click("#rounds-label")
        page.wait_for_function(text_includes("#label-status", "Labelling round 1"))
        verdicts = ["accept" if index % 2 == 0 else "reject" for index in range(len(items))]
        for index, verdict in enumerate(verdicts):
            page.click(f"#label-{verdict}")
            page.wait_for_function(text_includes("#label-counts", f"left to label {len(items) - index - 1} "))
        page.get_by_role("tab", name="Rounds").click()
        page.wait_for_function(text_includes("#rounds-summary", "Round 1 is labelled"))
        assert page.inner_text("#rounds-advance") == "Continue round 1"
        page.click("#rounds-advance")
        page.wait_for_function("/finished|failed|stopped/.test((document.querySelector('#rounds-state') || "
                               "{innerText: ''}).innerText)", timeout=600_000)
        assert "finished (exit 0)" in page.inner_text("#rounds-state"), served.studio.iterate.log_tail(40)
        page.wait_for_function(text_includes("#rounds-summary", "Round 2 waits for your labels"))
        # the plot: the share of round 1's own answers labelled desirable, one point so far
        page.wait_for_function("document.querySelectorAll('#rounds-plot svg .plot_marks path').length === 1")
        table = page.inner_text("#rounds-table")
        assert "scored" in table and f"{verdicts.count('accept')}/{verdicts.count('reject')}" in table
        page.screenshot(path=str(screenshots / "rounds.png"), full_page=True)
    finally:
        served.app.close()
        served.studio.iterate.stop()

    run = RunFolder(Path(waiting["answers"]).parent.parent)
    record = run.read()
    first, second = record["rounds"]
    assert first["done"] == list(STEPS) and second["done"] == ["sampled"]
    assert second["model_in"] == first["model_out"] and Path(first["model_out"]).name == "merged"
    labelled = read_jsonl(run.round_dir(1) / "labels.jsonl")
    assert [row["label"] for row in labelled] == [verdict == "accept" for verdict in verdicts]
    assert first["counts"]["labels"] == {"desirable": verdicts.count("accept"), "undesirable": verdicts.count("reject"),
                                         "skipped": 0}
    assert len(read_jsonl(run.round_dir(2) / "answers.jsonl")) == 3 * 2  # 3 training prompts x 2, from round 1's model
