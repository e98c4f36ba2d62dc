"""The labelled file: rows in the plugin's format, resumable, no decision lost or written twice, even by two writers."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from helpers import write_jsonl

from kto_plugin.data.label_log import Decision, LabelLog
from kto_plugin.studio.label_queue import LabelQueue, append_answers, read_unlabelled


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_decisions_are_rows_the_plugin_trains_on(tmp_path):
    from kto_plugin.data.feedback_examples import examples_from_file

    log = LabelLog(tmp_path / "labels.jsonl")
    assert log.record(Decision("Where is my order?", "It ships tomorrow.", "accept"))
    assert log.record(Decision("Refund?", "No.", "reject"))
    assert log.record(Decision("Hi", "hello", "accept", edited="Hello! How can I help you today?"))
    assert log.record(Decision("Skip me", "maybe", "skip"))
    assert log.record(Decision("Same text", "Fine.", "accept", edited="  Fine. "))  # an unchanged edit is an accept
    assert rows(log.path) == [
        {"query": "Where is my order?", "response": "It ships tomorrow.", "label": True},
        {"query": "Refund?", "response": "No.", "label": False},
        {"query": "Hi", "response": "hello", "label": False},
        {"query": "Hi", "response": "Hello! How can I help you today?", "label": True},
        {"query": "Same text", "response": "Fine.", "label": True},
    ]
    assert rows(log.skipped_path) == [{"query": "Skip me", "response": "maybe"}]
    assert dict(log.counts) == {"accepted": 3, "rejected": 2, "skipped": 1}
    _, fmt, examples, unusable = examples_from_file(log.path, "query_response", progress=False)
    assert fmt.name == "query_response" and not unusable
    assert [example.label for example in examples] == [True, False, False, True, True]


def test_a_decided_item_is_not_written_again_and_a_reopened_log_resumes(tmp_path):
    first = LabelLog(tmp_path / "labels.jsonl")
    assert first.record(Decision("q1", "a1", "accept"))
    second = LabelLog(tmp_path / "labels.jsonl")  # a second tab, or the studio restarted
    assert dict(second.counts) == {"accepted": 1}
    assert not second.record(Decision("q1", "a1", "reject"))
    assert second.record(Decision("q2", "a2", "reject"))
    assert not first.record(Decision("q2", "a2", "accept"))  # first catches up with what second wrote
    assert len(rows(first.path)) == 2 and dict(first.counts) == {"accepted": 1, "rejected": 1}


def test_a_line_cut_short_by_a_dying_writer_is_dropped_and_its_item_comes_back(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"query": "q1", "response": "a1", "label": true}\n{"query": "q2", "resp', encoding="utf-8")
    log = LabelLog(path)
    assert dict(log.counts) == {"accepted": 1}
    assert log.record(Decision("q2", "a2", "reject"))
    assert rows(path) == [{"query": "q1", "response": "a1", "label": True},
                          {"query": "q2", "response": "a2", "label": False}]


def test_a_labelled_file_cut_by_hand_is_read_again(tmp_path):
    source = write_jsonl(tmp_path / "answers.jsonl", [{"query": f"q{i}", "response": "a"} for i in range(3)])
    queue = LabelQueue(source, read_unlabelled(source), LabelLog(tmp_path / "labels.jsonl"))
    for index in range(3):
        queue.log.record(Decision(f"q{index}", "a", "accept"))
    assert queue.next_item() is None and queue.remaining() == 0
    first_line = (tmp_path / "labels.jsonl").read_text(encoding="utf-8").splitlines()[0]
    (tmp_path / "labels.jsonl").write_text(first_line + "\n", encoding="utf-8")  # someone removed two decisions
    assert queue.next_item().prompt == "q1" and queue.remaining() == 2
    assert dict(queue.log.counts) == {"accepted": 1}


def test_the_queue_shows_undecided_answers_in_file_order(tmp_path):
    source = write_jsonl(tmp_path / "answers.jsonl", [
        {"query": "q1", "response": "a1"}, {"prompt": "q2", "completion": "a2", "label": True},
        {"question": "q3", "answer": "a3"}, {"nothing": "here"}, {"query": "q1", "response": "a1"},
    ])
    items = read_unlabelled(source)
    assert [(item.prompt, item.response) for item in items] == [("q1", "a1"), ("q2", "a2"), ("q3", "a3"), ("q1", "a1")]
    queue = LabelQueue(source, items, LabelLog(tmp_path / "labels.jsonl"))
    assert queue.next_item().prompt == "q1" and queue.remaining() == 3  # distinct answers: q1's repeat is one
    queue.log.record(Decision("q2", "a2", "skip"))
    queue.log.record(Decision("q1", "a1", "accept"))
    assert queue.next_item().prompt == "q3" and queue.remaining() == 1  # q1's repeat counts as decided
    queue.log.record(Decision("q3", "a3", "reject"))
    assert queue.next_item() is None and queue.remaining() == 0


def test_a_file_without_prompt_and_answer_fields_says_which_it_looked_for(tmp_path):
    source = write_jsonl(tmp_path / "answers.jsonl", [{"text": "hello", "score": 1}])
    with pytest.raises(ValueError, match=r"no row has a prompt \(query.*its fields are \['score', 'text'\]"):
        read_unlabelled(source)


def _label_many(path: str, prefix: str, count: int, shared: int) -> None:
    log = LabelLog(path)
    for index in range(count):
        log.record(Decision(f"{prefix} prompt {index}", f"answer {index}", "accept" if index % 2 else "reject"))
        if index < shared:  # both writers try the same items too
            log.record(Decision(f"shared prompt {index}", "shared answer", "accept"))


def test_two_labellers_appending_to_one_file_at_once_lose_no_row_and_write_none_twice(tmp_path):
    path = tmp_path / "labels.jsonl"
    context = multiprocessing.get_context("fork")  # two processes, as two studios on one file would be
    workers = [context.Process(target=_label_many, args=(str(path), name, 150, 40)) for name in ("alice", "bob")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    written = rows(path)  # every line parses: no interleaved or torn writes
    keys = [(row["query"], row["response"]) for row in written]
    assert len(keys) == len(set(keys)) == 2 * 150 + 40
    assert {f"{name} prompt {index}" for name in ("alice", "bob") for index in range(150)} <= {key[0] for key in keys}


def test_generated_answers_are_appended_as_unlabelled_rows(tmp_path):
    target = tmp_path / "labels.answers.jsonl"
    append_answers(target, [("q", "a1"), ("q", "a2")])
    append_answers(target, [("r", "b")])
    assert [(item.prompt, item.response) for item in read_unlabelled(target)] == [("q", "a1"), ("q", "a2"), ("r", "b")]


def test_a_last_row_saved_without_its_newline_is_kept(tmp_path):
    """Many editors save a file without a final newline: that row is the user's, not a torn write."""
    path = tmp_path / "labels.jsonl"
    path.write_text('{"query": "q1", "response": "a1", "label": true}\n{"query": "q2", "response": "a2", "label": false}',
                    encoding="utf-8")
    log = LabelLog(path)
    assert dict(log.counts) == {"accepted": 1, "rejected": 1}
    assert log.record(Decision("q3", "a3", "accept"))
    assert [row["query"] for row in rows(path)] == ["q1", "q2", "q3"]
    assert not log.torn_path.exists()


def test_a_file_cut_at_any_byte_loses_nothing(tmp_path):
    """Every prefix of a labelled file (a writer killed at any byte): whole rows stay in the file (a last one
    without its newline gets it), the bytes of a torn last row move beside it, and nothing else changes."""
    full = "".join(json.dumps({"query": f"q{i} 退款", "response": f"a{i}", "label": i % 2 == 0}, ensure_ascii=False) + "\n"
                   for i in range(4)).encode("utf-8")
    for cut in range(len(full) + 1):
        prefix = full[:cut]
        lines_end = prefix.rfind(b"\n") + 1
        tail = prefix[lines_end:]
        try:
            whole_tail = isinstance(json.loads(tail), dict)
        except ValueError:
            whole_tail = False
        if not tail:
            expected_kept, expected_torn = prefix, b""
        elif whole_tail:
            expected_kept, expected_torn = prefix + b"\n", b""
        else:
            expected_kept, expected_torn = prefix[:lines_end], tail + b"\n"
        path = tmp_path / str(cut) / "labels.jsonl"
        path.parent.mkdir()
        path.write_bytes(prefix)
        log = LabelLog(path)
        assert path.read_bytes() == expected_kept, cut
        assert (log.torn_path.read_bytes() if log.torn_path.exists() else b"") == expected_torn, cut
        assert len(log.decided) == expected_kept.count(b"\n"), cut


def test_a_rows_system_message_travels_from_the_answers_file_into_its_labelled_rows(tmp_path):
    """`axolotl kto iterate`'s human rounds write answers with the prompt's system message: the labelled rows keep it,
    so the round trains on the conversation the answer was sampled in."""
    from kto_plugin.studio.label_queue import read_unlabelled

    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"system": "You answer refund questions.", "query": "Can I?", "response": "Yes."})
                       + "\n" + json.dumps({"query": "Hi", "response": "Hello."}) + "\n", encoding="utf-8")
    first, second = read_unlabelled(answers)
    assert first.system == "You answer refund questions." and second.system is None
    log = LabelLog(tmp_path / "labels.jsonl")
    log.record(Decision(first.prompt, first.response, "accept", "Yes, within 30 days.", system=first.system))
    log.record(Decision(second.prompt, second.response, "reject", system=second.system))
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert [row.get("system") for row in rows] == ["You answer refund questions."] * 2 + [None]
    assert [row["label"] for row in rows] == [False, True, False]
