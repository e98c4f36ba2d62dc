"""The sample sets' `reworded` split (trained questions in words nothing trains on, with the trained rows' answers), and
the warm-up's own other wordings of the trained questions, which must not be among the evaluated ones."""

from __future__ import annotations

import json

import pytest

from kto_plugin.embedded.samples import (
    held_out_queries,
    reworded_prompts,
    sample_dataset_names,
    sample_dataset_path,
    warm_up_wordings,
)
from kto_plugin.embedded.warm_model import RECIPE, REPEATED_SETS, reworded_copies, warm_up_rows
from kto_plugin.errors import ConfigError


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in sample_dataset_path(name).read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", ["kto-sample-en", "kto-sample-zh"])
def test_reworded_rows_are_trained_rows_under_a_wording_nothing_trains_on(name, plugin_cache):
    rewordings = reworded_prompts()[name]
    train_prompts = {row["query"] for row in _rows(f"{name}/train")}
    every_prompt = {row["query"] for set_name in sample_dataset_names() for row in _rows(set_name)}
    assert len(rewordings) == 8 and set(rewordings) <= train_prompts  # rewords questions the quickstart trains on
    assert not set(rewordings.values()) & every_prompt  # in words no sample row uses: not in any train split
    assert len(set(rewordings.values())) == len(rewordings)

    reworded = _rows(f"{name}/reworded")
    originals = [row for row in _rows(name) if row["query"] in rewordings]
    assert len(reworded) == len(originals) and {row["label"] for row in reworded} == {True, False}
    for new, old in zip(reworded, originals):  # the same answers, labels, system prompt and history
        assert new == {**old, "query": rewordings[old["query"]]}
    assert sample_dataset_path(f"{name}/reworded").is_relative_to(plugin_cache)


def test_the_refund_desk_has_no_reworded_split_and_says_which_sets_do(plugin_cache):
    with pytest.raises(ConfigError, match="kto-sample-en, kto-sample-zh"):
        sample_dataset_path("kto-sample-refunds/reworded")


def test_the_warm_up_reads_the_real_looking_sets_more_often(plugin_cache):
    once, repeated = warm_up_rows(), warm_up_rows(chat_set_repeats=RECIPE["chat_set_repeats"])
    assert RECIPE["chat_set_repeats"] == 3 and set(REPEATED_SETS) == {"kto-sample-en", "kto-sample-zh"}
    chat_rows = sum(len(warm_up_rows([name])) for name in REPEATED_SETS)
    assert len(repeated) == len(once) + 2 * chat_rows
    user_turns = {message["content"] for row in repeated for message in row["messages"] if message["role"] == "user"}
    assert not user_turns & {prompt for set_prompts in reworded_prompts().values() for prompt in set_prompts.values()}


@pytest.mark.parametrize("name", ["kto-sample-en", "kto-sample-zh"])
def test_the_warm_up_wordings_reword_every_trained_question_and_no_evaluated_one(name, plugin_cache):
    wordings = warm_up_wordings()[name]
    train_prompts = {row["query"] for row in _rows(f"{name}/train")}
    assert set(wordings) == train_prompts and all(len(words) == 2 for words in wordings.values())
    every_wording = [wording for words in wordings.values() for wording in words]
    evaluated = held_out_queries() | {wording for words in reworded_prompts().values() for wording in words.values()}
    every_prompt = {row["query"] for set_name in sample_dataset_names() for row in _rows(set_name)}
    assert not set(every_wording) & (evaluated | every_prompt)  # new words, and none the evaluations ask
    assert len(set(every_wording)) == len(every_wording)


def test_reworded_copies_ask_the_row_in_its_other_wordings_every_second_one_without_context():
    row = {"system": "Be brief.", "history": [["Hi", "Hello"]], "query": "Why is the sky blue?",
           "response": "Air molecules scatter blue light.", "label": True}
    copies = reworded_copies(row, ["Why does the sky look blue?", "What gives the sky its colour?"], 4)
    assert copies[0] == row
    assert copies[1] == {**row, "query": "Why does the sky look blue?"}  # with its system prompt and history
    assert copies[2] == {"query": "What gives the sky its colour?", "response": row["response"], "label": True}
    assert copies[3] == {**row, "query": "Why does the sky look blue?"}  # the wordings in turn
    assert [copy["query"] for copy in reworded_copies(row, [], 3)] == [row["query"]] * 3  # no wordings: the row again
    assert reworded_copies(row, ["x"], 1) == [row]


def test_the_warm_up_asks_each_chat_row_as_written_and_in_its_two_other_wordings(plugin_cache):
    rows = warm_up_rows(["kto-sample-en"], chat_set_repeats=3)
    user_turns = [[m["content"] for m in row["messages"] if m["role"] == "user"][-1] for row in rows]
    wordings = warm_up_wordings()["kto-sample-en"]
    for index in range(0, len(rows), 3):
        question = user_turns[index]
        assert user_turns[index + 1: index + 3] == wordings[question]
        assert rows[index + 2]["messages"][0]["role"] == "user"  # the third copy has no system prompt or history
        assert len({row["messages"][-1]["content"] for row in rows[index: index + 3]}) == 1  # one answer, three askings
