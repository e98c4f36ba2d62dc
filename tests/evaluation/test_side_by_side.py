"""Blind side-by-side: compare writes a sheet and a key, score unblinds filled ratings."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml
from click.testing import CliRunner
from helpers import base_config

from kto_plugin.cli import kto
from kto_plugin.evaluation.side_by_side import RatingSheetError, mean_with_interval, read_ratings

PROMPTS = ["退款要多久？", "How do I reset my password?", "Write a two-line poem.", "我想取消会员订阅。",
           "Do you ship to Canada?", "What is an API?"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    tmp_path = tmp_path_factory.mktemp("compare")
    adapter = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                             LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter.save_pretrained(tmp_path / "out")
    config = base_config(tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
                         adapter="lora", lora_r=4, lora_target_modules=["q_proj", "v_proj"])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n\n", encoding="utf-8")
    sheets = []
    for name in ("first", "second"):
        result = CliRunner().invoke(kto, ["compare", str(tmp_path / "config.yaml"), "--prompts",
                                          str(tmp_path / "prompts.txt"), "--output", str(tmp_path / name),
                                          "--seed", "3", "--max-new-tokens", "6", "--min-new-tokens", "6"])
        assert result.exit_code == 0, result.output
        sheets.append(tmp_path / name)
    return sheets


def read_sheet(folder):
    with (folder / "sheet.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_gives_the_same_sheet_and_key(compared):
    first, second = compared
    assert (first / "sheet.csv").read_text() == (second / "sheet.csv").read_text()
    assert (first / "key.json").read_text() == (second / "key.json").read_text()
    rows = read_sheet(first)
    assert [row["prompt"] for row in rows] == PROMPTS
    sides = json.loads((first / "key.json").read_text())["sides"]
    assert {side["A"] for side in sides.values()} == {"base", "tuned"}  # the order changes per prompt
    html = (first / "sheet.html").read_text(encoding="utf-8")
    assert "退款要多久？" in html and "<script" not in html and "answer A" in html


def fill(folder, ratings_for):
    """Fill the sheet as a rater who gives `ratings_for[model]` to each model's answer."""
    sides = json.loads((folder / "key.json").read_text())["sides"]
    rows = read_sheet(folder)
    for row in rows:
        side = sides[row["id"]]
        row["rating_a"], row["rating_b"] = ratings_for(side["A"], row), ratings_for(side["B"], row)
    with (folder / "sheet.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_score_round_trip_unblinds_the_ratings(compared):
    first, _ = compared
    fill(first, lambda model, row: 5 if model == "tuned" else (2 if int(row["id"]) % 2 else 3))
    result = CliRunner().invoke(kto, ["score", str(first / "sheet.csv"), "--key", str(first / "key.json")],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    summary = json.loads((first / "score.json").read_text())
    assert summary["tuned"]["mean"] == 5 and summary["base"]["mean"] == 2.5
    assert summary["tuned_wins"] == 6 and summary["tuned_win_rate"] == 1.0
    assert "tuned win rate 1.00" in result.output


def test_missing_and_out_of_range_ratings_name_the_rows(compared):
    _, second = compared
    fill(second, lambda model, row: {"1": "", "4": "7"}.get(row["id"], 3) if model == "base" else 4)
    with pytest.raises(RatingSheetError) as err:
        read_ratings(second / "sheet.csv", second / "key.json")
    message = str(err.value)
    assert "(id 1)" in message and "missing" in message
    assert "(id 4)" in message and "'7', expected 1-5" in message
    assert "(id 2)" not in message


def test_interval_is_students_t():
    mean, low, high = mean_with_interval([1, 2, 3, 4, 5])
    assert mean == 3 and math.isclose(high - mean, 2.776445 * math.sqrt(2.5) / math.sqrt(5), rel_tol=1e-5)
    assert math.isclose(mean - low, high - mean)


def test_chat_streams_replies_keeps_turns_and_resets(compared):
    config = compared[0].parent / "config.yaml"
    result = CliRunner().invoke(kto, ["chat", str(config), "--temperature", "0", "--max-new-tokens", "5",
                                      "--min-new-tokens", "5"], input="hi\n\n/reset\n你好\n/quit\nnot read\n")
    assert result.exit_code == 0, result.output
    assert "you> hi" in result.output and "you> 你好" in result.output and "not read" not in result.output
    assert result.output.count("model> ") == 2
    assert "(conversation cleared)" in result.output


def test_base_answers_come_from_the_base_model_with_the_adapter_off(compared, tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kto_plugin.evaluation.generation import GenerationSettings, generate_answers, user_prompts

    first, _ = compared
    sides = json.loads((first / "key.json").read_text())["sides"]
    rows = read_sheet(first)
    by_model = {"base": [], "tuned": []}
    for row in rows:
        for letter in ("A", "B"):
            by_model[sides[row["id"]][letter]].append(row[f"answer_{letter.lower()}"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    expected = generate_answers(AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer,
                                user_prompts(tokenizer, PROMPTS), GenerationSettings(max_new_tokens=6, min_new_tokens=6, seed=3))
    assert by_model["base"] == expected
    assert by_model["tuned"] != expected


def test_a_rated_sheet_is_never_overwritten(compared, tmp_path):
    """`compare` again over a rated sheet refuses before loading a model; --force keeps the rated one beside."""
    import shutil

    first, _ = compared
    folder = tmp_path / "rated"
    shutil.copytree(first, folder)
    fill(folder, lambda model, row: 4)
    rated = (folder / "sheet.csv").read_text(encoding="utf-8")
    config, prompts = first.parent / "config.yaml", first.parent / "prompts.txt"
    args = ["compare", str(config), "--prompts", str(prompts), "--output", str(folder), "--max-new-tokens", "2"]
    refused = CliRunner().invoke(kto, args)
    assert refused.exit_code == 1 and "already holds ratings for 6 prompts" in refused.output and "--force" in refused.output
    assert (folder / "sheet.csv").read_text(encoding="utf-8") == rated
    replaced = CliRunner().invoke(kto, [*args, "--force"])
    assert replaced.exit_code == 0, replaced.output
    assert (folder / "sheet.rated-1.csv").read_text(encoding="utf-8") == rated and (folder / "key.rated-1.json").exists()
    assert all(row["rating_a"] == "" for row in read_sheet(folder))


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example", "Click for details")', "+1", "-2", "@SUM(A1)",
                                  "'=quoted", "''=twice", "plain", "", "\tTab"])
def test_spreadsheet_cells_never_start_a_formula_and_read_back_exactly(tmp_path, text):
    from kto_plugin.evaluation.side_by_side import FORMULA_STARTS, from_spreadsheet, write_sheet

    paths = write_sheet(tmp_path, [text], [text], [text], 0, {"base": "b", "tuned": "t"})
    (row,) = read_sheet(tmp_path)
    for column in ("prompt", "answer_a", "answer_b"):
        assert not row[column].startswith(FORMULA_STARTS)
        assert from_spreadsheet(row[column]) == text
    import html

    assert html.escape(text) in paths["html"].read_text(encoding="utf-8")  # the HTML sheet shows the text as written


def hand_edit(rng, data: bytes) -> bytes:
    """One thing a person or a spreadsheet does to a sheet: a rating, a note, a renamed header, another encoding..."""
    text = data.decode("utf-16") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else data.decode("utf-8", "replace")
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    edits = [
        lambda: text.replace(",,\r\n", ",4,\r\n", 1) if ",,\r\n" in text else text.replace(",,\n", ",4,\n", 1),
        lambda: text.replace("rating_a,rating_b", "Rating A,Rating B", 1),  # ratings under renamed headers
        lambda: text.replace("rating_b", "rating_b,notes", 1),  # a notes column, no ratings
        lambda: "\ufeff" + text,  # saved as UTF-8 with a byte-order mark
        lambda: text.replace("\r\n", "\n"),
        lambda: "\n".join([lines[0], *reversed(lines[1:])]),  # rows sorted
        lambda: text[: len(text) // 2],  # cut short
        lambda: text + "\n",
    ]
    edited = edits[rng.randrange(len(edits))]()
    if rng.random() < 0.15:
        return edited.encode("utf-16")  # Excel's "Unicode text"
    return edited.encode("utf-8")


@pytest.mark.parametrize("seed", range(3))
def test_no_rating_or_note_is_lost_whatever_was_done_to_the_sheet(tmp_path, seed):
    """Property: after any hand edit (and any number of writes, with or without replace), every version of the
    sheet a person touched still exists byte for byte: as sheet.csv (refused) or as a sheet.rated-N.csv."""
    import random

    from kto_plugin.errors import ConfigError
    from kto_plugin.evaluation.side_by_side import write_sheet

    rng = random.Random(seed)
    touched: list[bytes] = []
    edited = False
    prompts = ["Where is my parcel?", "=1+1", "退款多久到账？"]
    for round_ in range(25):
        write = lambda replace: write_sheet(tmp_path, prompts, ["a1", "a2", "a3"], ["b1", "b2", "b3"],  # noqa: E731
                                            round_, {"base": "b", "tuned": "t"}, replace_ratings=replace)
        sheet = tmp_path / "sheet.csv"
        if not sheet.exists():
            write(False)
        if rng.random() < 0.6:  # a person edits the sheet (again: a later edit replaces their own earlier one)
            data = hand_edit(rng, sheet.read_bytes())
            if data != sheet.read_bytes():
                sheet.write_bytes(data)
                edited = True
        before = sheet.read_bytes()
        replace = rng.random() < 0.5
        try:
            write(replace)
            if edited:
                touched.append(before)  # what the person left when the writer ran
            edited = False
        except ConfigError as err:
            assert edited and not replace
            assert "holds ratings" in str(err) or "was changed since it was written" in str(err)
            assert sheet.read_bytes() == before  # refused: untouched
        kept = {path.read_bytes() for path in tmp_path.glob("sheet*.csv")}
        assert all(version in kept for version in touched), round_
    assert touched and len(list(tmp_path.glob("sheet.rated-*.csv"))) >= 1
    assert not list(tmp_path.glob(".*partial*"))
