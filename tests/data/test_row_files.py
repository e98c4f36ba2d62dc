"""One parser for local data files: what `check` reads is what training reads, for any bytes a file can hold.

Before, training read files with `datasets`' JSON loader and `check` with Python's `json`: Arrow
turned mixed-type columns into JSON text (`"yes"` became `'"yes"'`, every prompt gained quotes
when one row's prompt was a list) while `check` said "Clean". The fuzz test writes files of random
rows in random encodings, line endings, blank lines and broken lines, and asserts for every file
that the training loader and `check` both stop with the same message, or both read the same
examples with the texts as written.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from kto_plugin.data.feedback_examples import examples_from_file
from kto_plugin.data.formats import FORMATS
from kto_plugin.data.loading import EMPTY_RESPONSE, render_located, rendered_rows
from kto_plugin.data.located_examples import DataRowError, plugin_format_converter
from kto_plugin.data.row_files import DataFileError, open_row_file, open_row_files
from kto_plugin.data.sources import load_entry_rows
from kto_plugin.errors import DataError

TEXTS = ["Where is my parcel?", "退款多久到账？", "=1+1", "line\nbreak", "🙂", "  ", "000123", "TRUE", "a\u2028b"]
LABELS = [True, False, "yes", "no", 1, 0, "TRUE"]


def random_row(rng: random.Random) -> dict:
    row = {"query": rng.choice(TEXTS), "response": rng.choice(TEXTS), "label": rng.choice(LABELS)}
    roll = rng.random()
    if roll < 0.01:
        row["label"] = rng.choice(["maybe", None, 2])
    elif roll < 0.05:
        row["query"] = [rng.choice(TEXTS)]  # a list where text belongs
    elif roll < 0.1:
        row["response"] = rng.choice([1.5, float("nan"), {"content": "x"}])
    elif roll < 0.13:
        row["qeury"] = row.pop("query")  # a misspelt field
    return row


def random_line(rng: random.Random, row: dict) -> str:
    """The row as one line, sometimes in a way only one JSON parser or another accepts."""
    text = json.dumps(row, ensure_ascii=rng.random() < 0.3)
    roll = rng.random()
    if roll < 0.005:
        return text[:-1] + ', "label": true}'  # a field given twice
    if roll < 0.01:
        return text.replace('"query": "', '"query": "\\ud800', 1)  # half a surrogate pair
    if roll < 0.015:
        return text[: len(text) // 2]  # cut
    if roll < 0.02:
        return "[1, 2]"  # not an object
    return text


def write_random_file(path, rng: random.Random, rows: int) -> None:
    lines = [random_line(rng, random_row(rng)) for _ in range(rows)]
    for _ in range(rng.randint(0, 3)):
        lines.insert(rng.randint(0, len(lines)), rng.choice(["", "   ", "\t"]))
    newline = rng.choice(["\n", "\r\n"])
    text = newline.join(lines) + (newline if rng.random() < 0.7 else "")
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.15:
        data = b"\xef\xbb\xbf" + data  # a byte-order mark, as Windows editors write
    if rng.random() < 0.03:
        data = text.encode("utf-16")
    if rng.random() < 0.03:
        data = data[:7] + b"\xff" + data[8:]  # one byte that is not UTF-8
    path.write_bytes(data)


def training_outcome(path, tokenizer):
    """What the training loader does with the file: its rendered rows, or the message it stops with."""
    fmt = FORMATS["query_response"]
    converter = plugin_format_converter(fmt, fmt.field_settings(None))
    try:
        (row_file,) = load_entry_rows({"path": str(path), "type": "kto_plugin.query_response"}, cfg=None)
        removed = Counter()
        rendered = []
        for start, batch in row_file.batches(7):
            rows = rendered_rows(batch, start, converter, tokenizer, row_file.where, removed)
            rendered += list(zip(rows.prompt, rows.completion, rows.label, rows.where))
        return "rows", rendered, removed
    except DataRowError as err:
        return "row error", str(err), None
    except DataError as err:
        return "file error", str(err), None


def check_outcome(path, tokenizer):
    """What `check` reads: the same rows rendered, invalid rows as the training loader's first error."""
    try:
        _, _, examples, unusable = examples_from_file(path, "query_response", progress=False)
    except DataError as err:
        return "file error", str(err), None
    invalid = [row for row in unusable if row.kind == "invalid"]
    if invalid:
        return "row error", f"{invalid[0].where}: {invalid[0].reason}", None
    kept = [example for example in examples if example.completion.strip()]
    rendered = [(*render_located(example, tokenizer), example.label, example.where) for example in kept]
    removed = Counter({EMPTY_RESPONSE: len(examples) - len(kept)} if len(examples) > len(kept) else {})
    removed.update(row.reason for row in unusable if row.kind == "removed")
    return "rows", rendered, removed


def line_of(message: str) -> int:
    return int(re.search(r" line (\d+)", message).group(1))


def test_training_and_check_read_every_file_the_same_way(tmp_path, tiny_model):
    """Fuzz, 60 random files: both stop, naming the file, or both read the same examples, texts as written."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    outcomes = Counter()
    for seed in range(60):
        rng = random.Random(seed)
        path = tmp_path / f"seed-{seed}" / "feedback.jsonl"
        path.parent.mkdir()
        write_random_file(path, rng, rows=rng.choice([1, 5, 30]))
        trained, checked = training_outcome(path, tokenizer), check_outcome(path, tokenizer)
        if trained[0] == "row error" and checked[0] == "file error":
            # training reads as it goes: it stops at a bad row before it reaches the broken line `check` stops at
            assert line_of(trained[1]) < line_of(checked[1]), seed
        else:
            assert trained == checked, seed
        kind, detail, _ = trained
        outcomes[kind] += 1
        if kind != "rows":
            assert str(path) in detail, seed  # every stop names the file (and the line, for a row)
        else:  # texts as written: each rendered completion starts with its row's response, unchanged
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8-sig").split("\n") if line.strip()]
            responses = {row["response"] for row in rows}
            assert all(any(completion.startswith(response) for response in responses)
                       for _, completion, _, _ in detail), seed
    assert outcomes["rows"] >= 5 and outcomes["row error"] >= 5 and outcomes["file error"] >= 3, outcomes


@pytest.mark.parametrize("first, second, problem", [
    ('{"query": "a", "response": "b", "label": true}', '{"query": "c", "response": "d", "label": "yes"}', None),
    ('{"query": "a", "response": "b", "label": true}', '{"query": ["c"], "response": "d", "label": false}', "line 2"),
    ('{"query": "a", "response": "b", "label": true, "label": false}', '{"query": "c", "response": "d", "label": 0}',
     "line 1: field 'label' appears twice"),
    ('{"query": "a\\ud800", "response": "b", "label": true}', '{"query": "c", "response": "d", "label": 0}',
     "line 1: text"),
])
def test_rows_json_parsers_disagree_on(tmp_path, tiny_model, first, second, problem):
    """Arrow read the first pair as labels 'true' and '"yes"', and the second as prompts '"a"' and '["c"]'."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    path = tmp_path / "rows.jsonl"
    path.write_text(first + "\n" + second + "\n", encoding="utf-8")
    kind, detail, _ = training_outcome(path, tokenizer)
    assert (kind, detail) == check_outcome(path, tokenizer)[:2]
    if problem is None:
        assert kind == "rows" and [label for _, _, label, _ in detail] == [True, True]
        assert detail[0][0].endswith("a<|im_end|>\n<|im_start|>assistant\n")
    else:
        assert kind != "rows" and f"{path} {problem}" in detail


@pytest.mark.parametrize("content, message", [
    (b"", "has no rows (it is empty)"),
    (b"\n  \n\t\n", "has no rows (only blank lines)"),
    ('{"query": "a", "response": "b", "label": true}\n'.encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
    (b'{"query": "caf\xe9", "response": "b", "label": true}\n', "line 1: not UTF-8 text"),
])
def test_files_check_and_training_cannot_read_are_named_with_the_fix(tmp_path, tiny_model, content, message):
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as caught:
        open_row_file(path).rows()
    assert f"{path}" in str(caught.value) and message in str(caught.value)


def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"query": "a", "response": "b", "label": true}\r\n\r\n{"query": "c", "response": "d", "label": 0}\r\n')
    row_file = open_row_file(path)
    assert row_file.rows() == [{"query": "a", "response": "b", "label": True}, {"query": "c", "response": "d", "label": 0}]
    assert [row_file.where(0), row_file.where(1)] == [f"{path} line 1", f"{path} line 3"]


def test_csv_cells_are_read_as_the_text_they_hold(tmp_path):
    path = tmp_path / "feedback.csv"
    path.write_text("query,response,label,ticket\nWhere?,000123,TRUE,007\nWhy?,,no,NA\n", encoding="utf-8")
    assert open_row_file(path).rows() == [
        {"query": "Where?", "response": "000123", "label": "TRUE", "ticket": "007"},
        {"query": "Why?", "response": "", "label": "no", "ticket": "NA"},
    ]


def test_a_folder_of_data_files_is_each_file_in_name_order(tmp_path):
    folder = tmp_path / "feedback"
    (folder / "later").mkdir(parents=True)
    (folder / "b.jsonl").write_text('{"query": "b", "response": "x", "label": 1}\n', encoding="utf-8")
    (folder / "a.jsonl").write_text('\n{"query": "a", "response": "x", "label": 0}\n', encoding="utf-8")
    (folder / "later" / "c.csv").write_text("query,response,label\nc,x,yes\n", encoding="utf-8")
    (folder / ".hidden.jsonl").write_text("not json\n", encoding="utf-8")
    (folder / "notes.txt").write_text("ignored\n", encoding="utf-8")
    files = open_row_files(folder)
    assert [row_file.path.name for row_file in files] == ["a.jsonl", "b.jsonl", "c.csv"]
    assert files[0].where(0) == f"{folder / 'a.jsonl'} line 2"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="no data files in it"):
        open_row_files(tmp_path / "empty")


def test_a_large_file_is_read_a_batch_at_a_time(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(20_000):
            handle.write(json.dumps({"query": f"q{i}", "response": "r", "label": i % 2 == 0}) + "\n")
    row_file = open_row_file(path)
    assert len(row_file) == 20_000
    starts = [(start, len(batch)) for start, batch in row_file.batches(4096)]
    assert starts[:2] == [(0, 4096), (4096, 4096)] and sum(size for _, size in starts) == 20_000

