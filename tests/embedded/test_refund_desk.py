"""The refund desk sample set: its grader, its held-out split, the shipped file, and the `NAME/train` splits."""

from __future__ import annotations

import json

import pytest

from kto_plugin.embedded.refund_desk import (
    BAD_KINDS,
    DAYS,
    PHRASINGS,
    PRODUCTS,
    WORDINGS,
    Question,
    answer,
    feedback_rows,
    grade,
    question_of,
    split_questions,
)
from kto_plugin.embedded.samples import held_out_queries, sample_dataset_path


def test_every_answer_kind_grades_as_itself_in_every_wording():
    train, held_out = split_questions()
    for question in train[::7] + held_out:
        for kind in ("good", *BAD_KINDS):
            for wording in range(WORDINGS):
                assert grade(question, answer(question, kind, wording)) == kind, (question, kind, wording)
        assert question_of(question.prompt) == question


@pytest.mark.parametrize("text", [
    "",
    "Yes, you are in time: physical items can be returned within 30 days.",  # cut short
    "Yes, you are in time: physical items can be returned within 14 days. Start the return under Orders, "
    "or ask for an exchange instead.",  # a category with another's window
    "Sorry, digital items can only be returned within 14 days, so it is too late for a refund. You could ask for a "
    "repair instead.",  # both facts wrong
    "Yes, I guarantee a full refund, 100%, no questions asked. Obviously not.",
])
def test_answers_that_are_neither_good_nor_a_known_bad_kind_grade_as_other(text):
    assert grade(Question("kettle", 25, 0), text) == "other"


def test_the_decision_needs_days_against_the_window_of_the_products_category():
    late_ebook, early_ebook, late_kettle = Question("e-book", 20, 1), Question("e-book", 12, 1), Question("kettle", 40, 2)
    assert not late_ebook.in_time and early_ebook.in_time and not late_kettle.in_time
    assert Question("kettle", 25, 0).in_time
    assert answer(late_ebook, "good").startswith("Sorry, digital items") and "14 days" in answer(late_ebook, "good")
    assert answer(late_ebook, "wrong_window").startswith("Sorry, physical") and "30 days" in answer(late_ebook, "wrong_window")
    assert answer(late_ebook, "wrong_decision").startswith("Yes") and "14 days" in answer(late_ebook, "wrong_decision")
    assert answer(early_ebook, "good", 1).startswith("Yes. Digital items can be returned within 14 days")


def test_held_out_combinations_are_never_in_the_training_questions():
    train, held_out = split_questions()
    combos = lambda questions: {(q.product, q.days) for q in questions}  # noqa: E731
    assert not combos(train) & combos(held_out)
    assert len(combos(held_out)) == round(0.2 * len(PRODUCTS) * len(DAYS))
    assert len(held_out) == 3 * len(combos(held_out)) and {q.phrasing for q in held_out} == set(range(len(PHRASINGS)))
    assert split_questions() == (train, held_out)  # fixed
    # both decisions and both categories are held out, so the rule is what generalises
    assert {q.in_time for q in held_out} == {True, False} and {PRODUCTS[q.product] for q in held_out} == {"digital", "physical"}


def test_shipped_file_is_what_the_generator_makes_and_the_splits_partition_it(plugin_cache):
    shipped = [json.loads(line) for line in sample_dataset_path("kto-sample-refunds").read_text(encoding="utf-8").splitlines()]
    train, held_out = split_questions()
    assert sorted(map(json.dumps, shipped)) == sorted(map(json.dumps, feedback_rows(
        sorted(train + held_out, key=lambda q: (q.product, q.days, q.phrasing)))))
    assert sum(row["label"] for row in shipped) == len(shipped) // 2
    assert all((grade(question_of(row["query"]), row["response"]) == "good") == row["label"] for row in shipped)

    held = held_out_queries()
    for name in ("kto-sample-refunds", "kto-sample-en", "kto-sample-zh"):
        rows = sample_dataset_path(name).read_text(encoding="utf-8").splitlines()
        train_rows = sample_dataset_path(f"{name}/train").read_text(encoding="utf-8").splitlines()
        held_rows = sample_dataset_path(f"{name}/held-out").read_text(encoding="utf-8").splitlines()
        assert sorted(train_rows + held_rows) == sorted(rows)
        assert all(json.loads(line)["query"] in held for line in held_rows) and held_rows
        assert not any(json.loads(line)["query"] in held for line in train_rows)
        assert sample_dataset_path(f"{name}/train").is_relative_to(plugin_cache)
    with pytest.raises(ValueError, match="held-out"):
        sample_dataset_path("kto-sample-en/test")
