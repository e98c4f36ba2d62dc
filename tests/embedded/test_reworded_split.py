"""The sample sets' `reworded` split: trained questions in words nothing trains on, with the trained rows' answers."""

from __future__ import annotations

import json

import pytest

from kto_plugin.embedded.samples import reworded_prompts, sample_dataset_names, sample_dataset_path
from kto_plugin.embedded.warm_model import RECIPE, REPEATED_SETS, warm_up_rows
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
