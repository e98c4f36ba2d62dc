"""`axolotl kto check` and `axolotl kto clean` on small files, malformed ones included.

The commands run in-process through click (the `kto` group Axolotl's CLI mounts), with
the real tokenizers, datasets readers and matplotlib; one test runs the real `axolotl`
command line, and one interrupts a real `clean` process with SIGINT.
"""

from __future__ import annotations

import hashlib
import json
import signal

import pytest
from click.testing import CliRunner
from helpers import REPO_ROOT, interrupt_python_when, run_axolotl, write_jsonl

from kto_plugin.cli import kto
from kto_plugin.data.feedback_files import read_feedback_file, write_feedback_rows
from kto_plugin.data.low_information import LowInformationRules

GOOD = [
    {"query": "How do I reset my password?", "response": "Open Settings > Security and choose Reset.", "label": True, "ticket": 1},
    {"query": "How do I reset my password?", "response": "Figure it out yourself.", "label": False, "ticket": 2},
    {"query": "怎么修改地址？", "response": "请在“账户 > 地址”里修改，保存后生效。", "label": True, "ticket": 3},
    {"query": "怎么修改地址？", "response": "不清楚，你自己看吧，别再来问了。", "label": False, "ticket": 4},
]


def messy_rows() -> list[dict]:
    """GOOD plus one of each problem `clean` acts on, each row tagged with what it is."""
    return GOOD + [
        {"query": "How do I reset my password?", "response": "Open Settings > Security and choose Reset.", "label": True, "ticket": 5},  # exact duplicate of 1
        {"query": "how do I reset my   password?", "response": "open settings > security and choose reset.", "label": True, "ticket": 6},  # normalised duplicate
        {"query": "Can I pay by invoice?", "response": "好的", "label": True, "ticket": 7},  # low information
        {"query": "Can I pay by invoice?", "response": "OK!", "label": False, "ticket": 8},  # low information
        {"query": "Where is my parcel?", "response": "It left the warehouse today.", "label": True, "ticket": 9},  # conflict with 10
        {"query": "Where is my parcel?", "response": "It left the warehouse today.", "label": False, "ticket": 10},
        {"query": "Is shipping free?", "response": "Above 50 euros, yes.", "label": "maybe", "ticket": 11},  # bad label
    ]


def invoke(*args: str):
    return CliRunner().invoke(kto, list(args), catch_exceptions=False)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- check


def test_check_clean_data_exits_0_and_counts_labels(tmp_path, plugin_cache):
    data = write_jsonl(tmp_path / "good.jsonl", GOOD)
    report_path = tmp_path / "report.json"
    result = invoke("check", str(data), "--json", str(report_path))
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert (report["rows_read"], report["desirable"], report["undesirable"]) == (4, 2, 2)
    assert report["prompts"]["both labels"] == 2
    assert not report["hurts_training"] and "Clean" in result.output
    assert report["auto_weights"] == {"desirable_weight": pytest.approx(7 / 6), "undesirable_weight": 1.0}


def test_answers_that_look_like_markup_are_printed_as_written(tmp_path, plugin_cache):
    """Rich reads `[...]` as markup: an answer `[/bold]` crashed `check` (exit 1, "problems found"), and
    `[query, response]` vanished from a reason. Every cell and message is shown as written."""
    data = write_jsonl(tmp_path / "markup.jsonl", [
        {"query": "Hi [bold]", "response": "[/bold] closing tag first", "label": True},
        {"query": "Hi [bold]", "response": "[/bold] closing tag first", "label": False},
        {"query": "History?", "response": "x", "label": True, "history": ["HiYo"]},
    ])
    result = invoke("check", str(data), "--rows", "5")
    assert result.exit_code == 1, result.output  # problems: a conflict and an unusable row, not a crash
    assert "[/bold]" in result.output and "Hi [bold]" in result.output  # the table wraps lines, not tags
    assert "[query, response]" in result.output


def test_check_finds_every_problem_with_its_line(tmp_path, plugin_cache):
    data = write_jsonl(tmp_path / "messy.jsonl", messy_rows())
    report_path = tmp_path / "report.json"
    result = invoke("check", str(data), "--json", str(report_path))
    assert result.exit_code == 1, result.output
    report = json.loads(report_path.read_text(encoding="utf-8"))
    counts = report["problem_counts"]
    assert counts["exact_duplicate"] == 1 and counts["normalised_duplicate"] == 1
    assert counts["low_information"] == 2 and counts["conflicting_labels"] == 2 and counts["unusable"] == 1
    where = {finding["kind"]: finding["where"] for finding in report["findings"]}
    assert where["exact_duplicate"] == f"{data} line 5"
    assert where["unusable"] == f"{data} line 11"
    duplicate = next(f for f in report["findings"] if f["kind"] == "exact_duplicate")
    assert duplicate["detail"] == f"same as {data} line 1"
    assert "invalid label 'maybe'" in next(f["detail"] for f in report["findings"] if f["kind"] == "unusable")


def test_check_length_report_matches_what_truncation_does(tmp_path, plugin_cache):
    """The cut `check` predicts for an over-long row is what the training loader's truncation does."""
    from kto_plugin.data.data_check import check_tokenizer
    from kto_plugin.data.lengths import count_tokens, truncate_to_fit
    from kto_plugin.data.rendering import render_example

    long_prompt = "Please explain the refund policy in detail. " * 12
    long_answer = "Refunds are issued within fourteen days of the return arriving. " * 10
    rows = [{"query": "Short?", "response": "A short answer.", "label": True},
            {"query": long_prompt, "response": "Fine.", "label": False},
            {"query": "Explain refunds.", "response": long_answer, "label": True}]
    data = write_jsonl(tmp_path / "long.jsonl", rows)
    report_path = tmp_path / "report.json"
    result = invoke("check", str(data), "--sequence-len", "64", "--json", str(report_path))
    assert result.exit_code == 1
    findings = {f["where"]: f for f in json.loads(report_path.read_text(encoding="utf-8"))["findings"]
                if f["kind"].endswith("truncated")}
    assert findings[f"{data} line 2"]["kind"] == "prompt_truncated"
    assert findings[f"{data} line 3"]["kind"] == "completion_truncated"
    tokenizer, _ = check_tokenizer(None)
    prompt, completion = render_example(tokenizer, [{"role": "user", "content": "Explain refunds."}], long_answer)
    _, kept_completion = truncate_to_fit(tokenizer, prompt, completion, 64)
    predicted_cut = int(findings[f"{data} line 3"]["detail"].split("the last ")[1].split()[0])
    actual_cut = count_tokens(tokenizer, completion) - count_tokens(tokenizer, kept_completion)
    assert abs(predicted_cut - actual_cut) <= 2


@pytest.mark.parametrize("content, message", [
    ('{"query": "a", "response": "b", "label": true}\n{"query": "broken\n', "line 2: not valid JSON"),
    ("", "has no rows"),
    ('["not", "objects"]', "each element must be a JSON object"),
])
def test_check_unreadable_file_exits_2_and_says_where(tmp_path, plugin_cache, content, message):
    data = tmp_path / ("bad.json" if content.startswith("[") else "bad.jsonl")
    data.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(kto, ["check", str(data)])
    assert result.exit_code == 2
    assert message in result.output and str(data) in result.output


def test_check_a_folder_without_data_files_exits_2(tmp_path, plugin_cache):
    result = CliRunner().invoke(kto, ["check", str(tmp_path)])
    assert result.exit_code == 2 and "no data files in it" in result.output


def test_check_a_folder_of_jsonl_files_as_training_reads_it(tmp_path, plugin_cache):
    """`train` accepts `path: a folder of .jsonl files`; `check` refused it. Now each file is read, rows named by file."""
    folder = tmp_path / "feedback"
    folder.mkdir()
    write_jsonl(folder / "week1.jsonl", GOOD[:2])
    write_jsonl(folder / "week2.jsonl", GOOD[2:] + [{"query": "Hi", "response": "Hello!", "label": "maybe"}])
    result = CliRunner().invoke(kto, ["check", str(folder), "--json", str(tmp_path / "report.json")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert result.exit_code == 1, result.output
    assert report["rows_read"] == 5 and report["inputs"] == [str(folder / "week1.jsonl"), str(folder / "week2.jsonl")]
    assert [f["where"] for f in report["findings"] if f["kind"] == "unusable"] == [f"{folder / 'week2.jsonl'} line 3"]


def test_check_and_clean_take_the_field_names_a_config_uses(tmp_path, plugin_cache):
    """The formats page's question / answer / ok file: `--field` as the entry's `field_*` keys."""
    rows = [{"question": row["query"], "answer": row["response"], "ok": row["label"]} for row in GOOD]
    data = write_jsonl(tmp_path / "support.jsonl", rows + rows[:1])
    fields = ["--field", "query=question", "--field", "response=answer", "--field", "label=ok"]
    result = CliRunner().invoke(kto, ["check", str(data), *fields, "--json", str(tmp_path / "report.json")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert result.exit_code == 1 and report["problem_counts"]["exact_duplicate"] == 1  # the repeated first row
    assert (report["desirable"], report["undesirable"]) == (3, 2)
    assert invoke("clean", str(data), "-o", str(tmp_path / "out.jsonl"), *fields).exit_code == 0
    assert [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()] == rows
    misspelt = CliRunner().invoke(kto, ["check", str(data), "--type", "query_response", "--field", "qeury=question"])
    assert misspelt.exit_code == 2 and "field_qeury" in misspelt.output and "field_query" in misspelt.output


def test_check_fields_that_match_no_format_exit_2_and_name_the_formats(tmp_path, plugin_cache):
    data = write_jsonl(tmp_path / "odd.jsonl", [{"question": "a", "answer": "b", "ok": True}])
    result = CliRunner().invoke(kto, ["check", str(data)])
    assert result.exit_code == 2
    assert "match no format" in result.output and "query_response" in result.output and "--type" in result.output


def test_check_missing_field_is_an_unusable_row(tmp_path, plugin_cache):
    data = write_jsonl(tmp_path / "missing.jsonl", GOOD + [{"query": "No answer here", "label": True}])
    report_path = tmp_path / "report.json"
    assert invoke("check", str(data), "--json", str(report_path)).exit_code == 1
    unusable = [f for f in json.loads(report_path.read_text())["findings"] if f["kind"] == "unusable"]
    assert [f["where"] for f in unusable] == [f"{data} line 5"]
    assert "missing field 'response'" in unusable[0]["detail"]


def test_check_reads_parquet_and_saved_datasets(tmp_path, plugin_cache):
    from datasets import Dataset

    Dataset.from_list(GOOD).to_parquet(str(tmp_path / "good.parquet"))
    Dataset.from_list(messy_rows()[:6]).save_to_disk(str(tmp_path / "saved"))
    report_path = tmp_path / "report.json"
    result = invoke("check", str(tmp_path / "good.parquet"), str(tmp_path / "saved"), "--json", str(report_path))
    report = json.loads(report_path.read_text())
    assert report["rows_read"] == 10 and result.exit_code == 1
    assert report["per_source"][str(tmp_path / "saved")]["desirable"] == 4
    # "saved" repeats GOOD (4 exact duplicates across files) and row 1 once more; row 6 differs in case only
    assert (report["problem_counts"]["exact_duplicate"], report["problem_counts"]["normalised_duplicate"]) == (5, 1)


def test_check_html_is_self_contained_and_lists_problem_rows(tmp_path, plugin_cache):
    data = write_jsonl(tmp_path / "messy.jsonl", messy_rows())
    page = tmp_path / "check.html"
    invoke("check", str(data), "--html", str(page))
    html = page.read_text(encoding="utf-8")
    assert "<svg" in html and "response tokens" in html
    assert f"{data} line 11" in html and "invalid label" in html
    for loads_something in ("<script", "<link", "src=", 'href="http', "url(http", "@import"):
        assert loads_something not in html
    invoke("check", str(data), "--html", str(tmp_path / "again.html"))
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == html  # the same data gives the same page


def test_check_a_config_reads_its_datasets_with_its_tokenizer(tmp_path, tiny_model):
    import yaml

    data = write_jsonl(tmp_path / "messy.jsonl", messy_rows())
    config = yaml.safe_load((REPO_ROOT / "yaml_examples" / "quickstart.yaml").read_text(encoding="utf-8"))
    config.update(datasets=[{"path": str(data), "type": "kto_plugin.query_response"}], base_model=str(tiny_model),
                  output_dir=str(tmp_path / "out"), dataset_prepared_path=str(tmp_path / "prepared"), sequence_len=40)
    config_path = tmp_path / "kto.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    report_path = tmp_path / "report.json"
    result = invoke("check", str(config_path), "--json", str(report_path))
    report = json.loads(report_path.read_text())
    assert result.exit_code == 1
    assert report["sequence_len"] == 40 and "from" in report["tokenizer"] and str(config_path) in report["tokenizer"]
    assert report["problem_counts"]["conflicting_labels"] == 2
    assert report["problem_counts"]["prompt_truncated"] + report["problem_counts"]["completion_truncated"] > 0


def test_real_axolotl_check_command(axolotl, tmp_path, plugin_cache):
    data = write_jsonl(tmp_path / "messy.jsonl", messy_rows())
    result = run_axolotl("kto", "check", str(data), "--json", str(tmp_path / "r.json"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "exact duplicates" in result.stdout and json.loads((tmp_path / "r.json").read_text())["examples"] == 10


# ---------------------------------------------------------------- low information


@pytest.mark.parametrize("response, low", [
    ("ok", True), ("OK!", True), ("Ok 👍", True), ("好的。", True), ("明白了", True), ("got it", True),
    ("   ", True), ("...", True), ("Okay, I reset it for you.", False), ("好的，已经为您退款。", False),
])
def test_low_information_defaults(response, low):
    assert (LowInformationRules().reason(response) is not None) is low


def test_low_information_user_rules():
    rules = LowInformationRules(min_chars=5, patterns=(r"see (the )?docs\.?",))
    assert rules.reason("Nope") is not None and rules.reason("Sure thing, done.") is None
    assert "--pattern" in rules.reason("See the docs.")
    assert rules.reason("See the docs for the refund form.") is None  # a pattern matches the whole response
    with pytest.raises(ValueError, match="--pattern"):
        LowInformationRules(patterns=("(",))


# ---------------------------------------------------------------- clean


def test_clean_keeps_format_and_fields_and_sets_conflicts_aside(tmp_path, plugin_cache):
    rows = messy_rows()
    data = write_jsonl(tmp_path / "messy.jsonl", rows)
    before = digest(data)
    out = tmp_path / "cleaned" / "feedback.jsonl"
    result = invoke("clean", str(data), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert digest(data) == before
    kept = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["ticket"] for row in kept] == [1, 2, 3, 4]
    assert kept == GOOD  # rows unchanged, extra fields included
    review = [json.loads(line) for line in (out.parent / "feedback.review.jsonl").read_text().splitlines()]
    assert sorted(row["ticket"] for row in review) == [9, 10, 11]
    report = json.loads((out.parent / "feedback.clean-report.json").read_text())
    assert report["removed"] == {"exact_duplicate": 1, "normalised_duplicate": 1, "low_information": 2}
    assert report["review"] == {"conflicting_labels": 2, "unusable": 1}
    assert report["kept"] + sum(report["removed"].values()) + sum(report["review"].values()) == len(rows)
    assert {entry["row"]["ticket"] for entry in report["rows"]} == {5, 6, 7, 8, 9, 10, 11}
    assert json.loads((out.parent / "feedback.clean-report.json").read_text())["rows"][0]["where"].startswith(str(data))


def test_clean_json_array_and_parquet_keep_their_format(tmp_path, plugin_cache):
    from datasets import Dataset

    array = tmp_path / "messy.json"
    array.write_text(json.dumps(messy_rows(), ensure_ascii=False, indent=1), encoding="utf-8")
    assert invoke("clean", str(array), "-o", str(tmp_path / "clean.json")).exit_code == 0
    assert [row["ticket"] for row in json.loads((tmp_path / "clean.json").read_text())] == [1, 2, 3, 4]
    Dataset.from_list([{**row, "label": str(row["label"])} for row in messy_rows()]).to_parquet(str(tmp_path / "messy.parquet"))
    assert invoke("clean", str(tmp_path / "messy.parquet"), "-o", str(tmp_path / "cleaned.parquet")).exit_code == 0
    assert read_feedback_file(tmp_path / "cleaned.parquet").rows[0] == {**GOOD[0], "label": "True"}


def test_clean_refuses_to_overwrite_without_force_and_never_its_input(tmp_path, plugin_cache):
    data = write_jsonl(tmp_path / "messy.jsonl", messy_rows())
    out = write_jsonl(tmp_path / "out.jsonl", [{"keep": "me"}])
    result = CliRunner().invoke(kto, ["clean", str(data), "-o", str(out)])
    assert result.exit_code != 0 and "--force" in result.output
    assert json.loads(out.read_text()) == {"keep": "me"}
    assert invoke("clean", str(data), "-o", str(out), "--force").exit_code == 0
    assert len(out.read_text().splitlines()) == 4
    for force in ([], ["--force"]):
        same = CliRunner().invoke(kto, ["clean", str(data), "-o", str(data), *force])
        assert same.exit_code != 0 and "never modifies its input" in same.output


def test_clean_user_patterns_and_min_chars(tmp_path, plugin_cache):
    rows = GOOD + [{"query": "Refund?", "response": "See the FAQ.", "label": False},
                   {"query": "Refund?", "response": "Nah", "label": False}]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out.jsonl"
    assert invoke("clean", str(data), "-o", str(out), "--pattern", r"see the faq\.?", "--min-chars", "4").exit_code == 0
    assert len(out.read_text().splitlines()) == 4


def test_paired_rows_are_duplicates_only_when_both_halves_are(tmp_path, plugin_cache):
    rows = [{"prompt": "Apologise.", "chosen": "Sorry for the delay.", "rejected": "Whatever."},
            {"prompt": "Apologise.", "chosen": "Sorry for the delay.", "rejected": "Not my problem."},
            {"prompt": "Apologise.", "chosen": "Sorry for the delay.", "rejected": "Whatever."}]
    data = write_jsonl(tmp_path / "paired.jsonl", rows)
    out = tmp_path / "out.jsonl"
    assert invoke("clean", str(data), "-o", str(out)).exit_code == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows[:2]


def test_an_interrupted_write_leaves_no_output_and_no_temporary(tmp_path):
    def rows_then_interrupt():
        yield {"a": 1}
        yield {"a": 2}
        raise KeyboardInterrupt

    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        write_feedback_rows(rows_then_interrupt(), "jsonl", out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.stack("py311")  # slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("when", [".big.clean-report.json.partial-", ".big.jsonl.partial-"], ids=["report", "output"])
def test_a_real_clean_interrupted_at_any_point_leaves_nothing_a_rerun_trips_on(tmp_path, plugin_cache, sig, when):
    """A `clean` process interrupted (SIGINT) or killed (SIGKILL) while it writes: no output exists half-written
    or without the others, and a plain re-run (no --force) succeeds and leaves no hidden temporary behind."""
    rows = [{"query": f"Question {i}?", "response": f"Answer number {i}, in a full sentence.", "label": i % 2 == 0}
            for i in range(150_000)]
    data = write_jsonl(tmp_path / "big.jsonl", rows)
    out = tmp_path / "out" / "big.jsonl"
    out.parent.mkdir()
    # SIGINT back to Python's handler: a shell starts background jobs with SIGINT ignored, and children inherit that
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); from kto_plugin.cli import kto; "
            f"sys.argv = ['kto', 'clean', {str(data)!r}, '-o', {str(out)!r}]; kto()")
    process = interrupt_python_when(code, lambda: any(path.name.startswith(when) for path in out.parent.iterdir()),
                                    sig, cwd=tmp_path)
    assert process.returncode != 0
    assert not [path.name for path in out.parent.iterdir() if not path.name.startswith(".")]  # no output at all
    small = write_jsonl(tmp_path / "small.jsonl", GOOD)
    assert invoke("clean", str(small), "-o", str(out)).exit_code == 0
    assert sorted(path.name for path in out.parent.iterdir()) == ["big.clean-report.json", "big.jsonl"]


def test_a_temporary_of_a_live_process_or_another_host_is_left_alone(tmp_path, plugin_cache):
    from kto_plugin.leftovers import owned_prefix

    out = tmp_path / "out.jsonl"
    live = tmp_path / (owned_prefix(".out.jsonl.partial-") + "abc")  # this process: running
    other_host = tmp_path / ".out.jsonl.partial-elsewhere-1-abc"
    live.write_text("mine")
    other_host.write_text("theirs")
    assert invoke("clean", str(write_jsonl(tmp_path / "data.jsonl", GOOD)), "-o", str(out)).exit_code == 0
    assert live.exists() and other_host.exists() and len(out.read_text().splitlines()) == 4


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", '{"query": "a", "response": "b", "label": true}\n{oops\n', "line 2: not valid JSON"),
    ("empty.jsonl", "", "has no rows"),
    ("odd.jsonl", '{"question": "a", "answer": "b"}\n', "match no format"),
])
def test_clean_unreadable_input_exits_2_and_writes_nothing(tmp_path, plugin_cache, name, content, message):
    data = tmp_path / name
    data.write_text(content, encoding="utf-8")
    out = tmp_path / "out" / "clean.jsonl"
    result = CliRunner().invoke(kto, ["clean", str(data), "-o", str(out)])
    assert result.exit_code == 2 and message in result.output
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_clean_a_folder_of_files_exits_2_and_asks_for_one_file(tmp_path, plugin_cache):
    (tmp_path / "folder").mkdir()
    write_jsonl(tmp_path / "folder" / "a.jsonl", GOOD)
    result = CliRunner().invoke(kto, ["clean", str(tmp_path / "folder"), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 2 and "is a folder of data files" in result.output and "pass one file" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_clean_a_csv_writes_its_cells_untouched_in_the_output_s_own_format(tmp_path, plugin_cache):
    """`000123` stayed `123` and `TRUE` became `True` (pandas guessed types); a `.jsonl` output got CSV."""
    data = tmp_path / "feedback.csv"
    data.write_text("query,response,label,ticket\n"
                    "Where is order 000123?,It ships today from our depot.,TRUE,000123\n"
                    "Where is order 000123?,It ships today from our depot.,TRUE,000124\n"
                    "Can I pay later?,Yes: choose Invoice at checkout.,no,\n", encoding="utf-8")
    assert invoke("clean", str(data), "-o", str(tmp_path / "out.csv")).exit_code == 0
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines() == [
        "query,response,label,ticket",
        "Where is order 000123?,It ships today from our depot.,TRUE,000123",
        "Can I pay later?,Yes: choose Invoice at checkout.,no,",
    ]
    assert invoke("clean", str(data), "-o", str(tmp_path / "cleaned.jsonl")).exit_code == 0
    assert [json.loads(line) for line in (tmp_path / "cleaned.jsonl").read_text().splitlines()] == [
        {"query": "Where is order 000123?", "response": "It ships today from our depot.", "label": "TRUE", "ticket": "000123"},
        {"query": "Can I pay later?", "response": "Yes: choose Invoice at checkout.", "label": "no", "ticket": ""},
    ]
    nested = write_jsonl(tmp_path / "nested.jsonl", [{**GOOD[0], "history": [["Hi", "Hello"]]}])
    result = CliRunner().invoke(kto, ["clean", str(nested), "-o", str(tmp_path / "nested.csv")])
    assert result.exit_code == 2 and "a CSV cell cannot hold field 'history'" in result.output
    assert not list(tmp_path.glob("nested.*csv*")) and not list(tmp_path.glob(".nested*"))
    unknown = CliRunner().invoke(kto, ["clean", str(data), "-o", str(tmp_path / "out.txt")])
    assert unknown.exit_code == 2 and "end it with .jsonl, .json, .parquet or .csv" in unknown.output
