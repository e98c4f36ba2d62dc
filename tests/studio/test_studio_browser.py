"""The studio in a real browser: Playwright drives Debian's headless chromium through each tab.

The page is the real Gradio app of `axolotl kto studio`, served from this process on a free
port; the Train tab starts a real `axolotl train` on the embedded tiny model. Each tab's
screenshot is saved (KTO_PLUGIN_SCREENSHOTS=docs/studio makes the docs' studio page's).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import serve
from helpers import write_jsonl

ANSWERS = [
    {"query": f"Question {index}: can I return my order?", "response": f"Answer {index}: yes, within 30 days."}
    for index in range(1, 13)
]
FIELD = "(document.querySelector('{} textarea') || {{}}).value"  # null-safe: the page may not be drawn yet


def config(folder: Path, tiny_model: Path, **overrides) -> Path:
    settings = {
        "plugins": ["kto_plugin.KTOPlugin"], "rl": "kto", "base_model": str(tiny_model),
        "datasets": [{"path": "kto_plugin://kto-sample-refunds/train", "type": "kto_plugin.query_response"}],
        "sequence_len": 256, "micro_batch_size": 4, "num_epochs": 1, "max_steps": 4, "logging_steps": 1,
        "learning_rate": 1e-3, "optimizer": "adamw_torch", "adapter": "lora", "lora_r": 4, "lora_alpha": 8,
        "lora_target_linear": True, "bf16": False, "fp16": False, "tf32": False, "save_strategy": "no",
        "output_dir": str(folder / "out"), "dataset_prepared_path": str(folder / "out" / "prepared"), "seed": 7,
    }
    settings.update(overrides)
    path = folder / "kto.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def save_random_adapter(tiny_model: Path, output_dir: Path) -> None:
    """A trained run's output without training: a LoRA adapter with random (non-zero) weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, 0.5)
    model.save_pretrained(str(output_dir))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model):
    # Outside the temporary folder and the current directory, where Gradio serves files from: a report handed to
    # the page from the data's own folder was refused there, and tmp_path hid it.
    folder = Path(tempfile.mkdtemp(prefix="kto-studio-test-", dir=Path.home()))
    write_jsonl(folder / "answers.jsonl", ANSWERS)
    save_random_adapter(tiny_model, folder / "out")
    served = serve(config(folder, tiny_model), [folder], answers="answers.jsonl", labels="labels.jsonl")
    yield folder, served
    served.app.close()
    served.studio.train.stop()
    shutil.rmtree(folder, ignore_errors=True)


def text_includes(selector: str, text: str) -> str:
    """A null-safe page predicate: the element's text contains `text`."""
    return f"(document.querySelector({json.dumps(selector)}) || {{innerText: ''}}).innerText.includes({json.dumps(text)})"


def wait_for_prompt(page, prompt: str) -> None:
    page.wait_for_function(f"{FIELD.format('#label-prompt')} === {json.dumps(prompt)}")


def wait_for_answer(page, answer: str) -> None:
    """For a queue whose next item has the same prompt: only the answer shows that the page moved on."""
    page.wait_for_function(f"{FIELD.format('#label-answer')} === {json.dumps(answer)}")


def test_label_five_with_clicks_and_keys_reload_and_label_two_more(workspace, page, screenshots):
    from kto_plugin.data.feedback_examples import examples_from_file

    folder, served = workspace
    page.goto(served.url)
    wait_for_prompt(page, ANSWERS[0]["query"])
    decisions = [("click", "accept"), ("click", "reject"), ("key", "a"), ("key", "r"), ("click", "accept")]
    for index, (how, what) in enumerate(decisions):
        if how == "click":
            page.click(f"#label-{what}")
        else:
            page.locator("#label-counts").click()  # focus out of the text boxes: shortcuts do not fire while typing
            page.keyboard.press(what)
        wait_for_prompt(page, ANSWERS[index + 1]["query"])
    page.reload()
    wait_for_prompt(page, ANSWERS[5]["query"])  # resumes at the first undecided answer
    page.locator("#label-counts").click()
    page.keyboard.press("r")
    wait_for_prompt(page, ANSWERS[6]["query"])
    page.click("#label-accept")
    wait_for_prompt(page, ANSWERS[7]["query"])
    page.wait_for_function(text_includes("#label-counts", "left to label 5"))
    assert page.inner_text("#label-counts").startswith("accepted 4 · rejected 3 · skipped 0")
    page.screenshot(path=str(screenshots / "label.png"), full_page=True)

    lines = (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    expected_labels = [True, False, True, False, True, False, True]
    assert rows == [{"query": answer["query"], "response": answer["response"], "label": label}
                    for answer, label in zip(ANSWERS, expected_labels)]
    _, fmt, examples, unusable = examples_from_file(folder / "labels.jsonl", None, progress=False)
    assert fmt.name == "query_response" and len(examples) == 7 and not unusable


def test_an_edited_answer_goes_in_as_accepted_beside_the_rejected_original_and_a_skip_beside_the_file(workspace, page):
    folder, served = workspace
    page.goto(served.url)
    wait_for_prompt(page, ANSWERS[7]["query"])
    page.fill("#label-answer textarea", "Yes: bring it back within 30 days with the receipt.")
    page.click("#label-accept")
    wait_for_prompt(page, ANSWERS[8]["query"])
    rows = [json.loads(line) for line in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[-2:] == [
        {"query": ANSWERS[7]["query"], "response": ANSWERS[7]["response"], "label": False},
        {"query": ANSWERS[7]["query"], "response": "Yes: bring it back within 30 days with the receipt.", "label": True},
    ]
    page.click("#label-skip")  # a skip is noted beside the labelled file, not in it
    wait_for_prompt(page, ANSWERS[9]["query"])
    assert "skipped: noted in labels.skipped.jsonl" in page.inner_text("#label-status")
    assert len((folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()) == 9
    assert json.loads((folder / "labels.skipped.jsonl").read_text(encoding="utf-8")) == {
        "query": ANSWERS[8]["query"], "response": ANSWERS[8]["response"]}


def test_check_tab_reports_the_labelled_file(workspace, page, screenshots):
    folder, served = workspace
    page.goto(served.url)
    page.get_by_role("tab", name="Check").click()
    page.click("#check-run")
    page.wait_for_selector("#check-verdict h3")
    assert "9 rows read, 9 examples" in page.inner_text("#check-verdict")
    page.wait_for_selector("#check-histograms img")
    assert (folder / "labels.check.html").exists()
    link = page.wait_for_selector("#check-report-file a[href*='labels.check.html']")  # served, not refused
    with urllib.request.urlopen(urllib.parse.urljoin(served.url, link.get_attribute("href"))) as response:
        assert response.read().decode("utf-8") == (folder / "labels.check.html").read_text(encoding="utf-8")
    assert "Error" not in page.inner_text("body")
    page.screenshot(path=str(screenshots / "check.png"), full_page=True)


def test_compare_tab_rated_and_scored_like_axolotl_kto_score(workspace, page, screenshots):
    from click.testing import CliRunner

    from kto_plugin.cli import kto

    folder, served = workspace
    page.goto(served.url)
    page.get_by_role("tab", name="Compare").click()
    page.fill("#compare-prompts textarea", "Can I return my kettle?\nWhere is my refund?\nHello")
    # the untrained tiny model's greedy answer is blank space: sample (same seed for both models), at least 4 tokens
    page.fill("#compare-temperature input[type=number]", "0.7")
    page.fill("#compare-min-new-tokens input", "4")
    page.click("#compare-make")
    page.wait_for_function(text_includes("#compare-position", "of 3"), timeout=180_000)
    ratings = [(5, 2), (4, 4), (1, 3)]
    for index, (a, b) in enumerate(ratings):
        assert page.input_value("#compare-answer-a textarea") and page.input_value("#compare-answer-b textarea")
        page.locator("#compare-rating-a label").nth(a - 1).click()
        page.locator("#compare-rating-b label").nth(b - 1).click()
        page.click("#compare-save")
        page.wait_for_function(text_includes("#compare-position", f"rated {index + 1}"))
    page.click("#compare-score")
    page.wait_for_function(text_includes("#compare-status", "win rate"))
    page.screenshot(path=str(screenshots / "compare.png"), full_page=True)

    sheet = folder / "out" / "compare" / "sheet.csv"
    page_score = json.loads(sheet.with_name("score.json").read_text(encoding="utf-8"))
    key = json.loads(sheet.with_name("key.json").read_text(encoding="utf-8"))["sides"]
    result = CliRunner().invoke(kto, ["score", str(sheet), "--key", str(sheet.with_name("key.json"))])
    assert result.exit_code == 0, result.output
    assert json.loads(sheet.with_name("score.json").read_text(encoding="utf-8")) == page_score
    tuned = [a if key[str(i + 1)]["A"] == "tuned" else b for i, (a, b) in enumerate(ratings)]
    base = [b if key[str(i + 1)]["A"] == "tuned" else a for i, (a, b) in enumerate(ratings)]
    assert page_score["tuned"]["mean"] == pytest.approx(sum(tuned) / 3)
    assert page_score["base"]["mean"] == pytest.approx(sum(base) / 3)
    assert f"win rate {page_score['tuned_win_rate']:.2f}" in page.inner_text("#compare-status")


def test_train_tab_runs_axolotl_train_and_plots_its_metrics(axolotl, workspace, page, screenshots):
    folder, served = workspace
    page.goto(served.url)
    page.get_by_role("tab", name="Train").click()
    page.click("#train-start")
    page.wait_for_function("/finished|failed|stopped/.test((document.querySelector('#train-state') || {innerText: ''}).innerText)",
                           timeout=600_000)
    assert "finished (exit 0)" in page.inner_text("#train-state"), served.studio.train.log_tail()
    records = [json.loads(line) for line in (folder / "out" / "kto_metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if "loss" in record] == [1, 2, 3, 4]
    # the plot draws one line through the four logged losses
    page.wait_for_function("(() => { const p = document.querySelector('#train-plot-loss svg .mark-line path');"
                           " return p && p.getAttribute('d').split(/[ML]/).filter(Boolean).length === 4; })()")
    # the accepted answers' NLL per token: two lines (policy, reference) through the four steps
    page.wait_for_function("(() => document.querySelectorAll('#train-plot-accepted svg .mark-line path').length === 2)()")
    assert "Training completed" in page.input_value("#train-log textarea")
    page.screenshot(path=str(screenshots / "train.png"), full_page=True)


def test_answers_generated_by_the_trained_model_are_queued_for_labelling(workspace, page):
    from kto_plugin.studio.label_queue import read_unlabelled

    folder, served = workspace
    page.goto(served.url)
    wait_for_prompt(page, ANSWERS[9]["query"])
    page.get_by_text("...or generate answers with the config's model").click()
    page.fill("#label-prompts textarea", "Can I return a kettle?\nWhere is my refund?")
    page.get_by_role("radio", name="trained").check()
    page.fill("#label-min-new-tokens input", "4")
    page.click("#label-generate")
    wait_for_prompt(page, "Can I return a kettle?")
    generated = read_unlabelled(folder / "labels.answers.jsonl")
    assert [item.prompt for item in generated] == ["Can I return a kettle?"] * 2 + ["Where is my refund?"] * 2
    assert all(item.response for item in generated) and generated[0].response != generated[1].response
    assert page.input_value("#label-answers-path textarea").endswith("labels.answers.jsonl")
    assert page.input_value("#label-answer textarea") == generated[0].response
    page.click("#label-reject")
    wait_for_answer(page, generated[1].response)  # the second answer to the same prompt
    rows = [json.loads(line) for line in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[-1] == {"query": "Can I return a kettle?", "response": generated[0].response, "label": False}
