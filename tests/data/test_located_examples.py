"""The one reading core: training and check read the same rows into the same examples, on generated messy rows."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from kto_plugin.data.formats import FORMATS
from kto_plugin.data.located_examples import (
    DataRowError,
    LocatedExample,
    RowLocator,
    UnusableRow,
    located_examples,
    plugin_format_converter,
)

LABELS = [True, False, 1, 0, "yes", "no", "GOOD", "reject", "maybe", None, 2, [True]]


def messy_row(rng: random.Random, format_name: str) -> dict:
    """A row of the format, sometimes broken: a bad label, a missing field, a non-string value, an empty answer."""
    text = lambda: rng.choice(["Where is my parcel?", "退款多久到账？", "", "  ", "ok", "It ships today."])  # noqa: E731
    if format_name == "query_response":
        row = {"query": text(), "response": text(), "label": rng.choice(LABELS)}
    elif format_name == "messages":
        turns = [{"role": "user", "content": text()}]
        if rng.random() < 0.8:
            turns.append({"role": "assistant", "content": text()})
        row = {"messages": turns, "label": rng.choice(LABELS)}
    elif format_name == "prompt_completion":
        row = {"prompt": text(), "completion": text(), "label": rng.choice(LABELS)}
    else:
        row = {"prompt": text(), "chosen": text(), "rejected": text()}
    if rng.random() < 0.1:
        row.pop(rng.choice(sorted(row)))
    return row


@pytest.mark.parametrize("format_name", sorted(FORMATS))
@pytest.mark.parametrize("seed", range(5))
def test_stop_and_collect_see_the_same_rows(format_name, seed):
    """`collect` lists every invalid row; `stop` raises at the first of them, naming it, after the same examples."""
    rng = random.Random(seed)
    rows = [messy_row(rng, format_name) for _ in range(60)]
    fmt = FORMATS[format_name]
    converter = plugin_format_converter(fmt, fmt.field_settings(None))
    locate = RowLocator("data.jsonl", list(range(3, 63)))
    collected = list(located_examples(rows, converter, locate, "data.jsonl", on_invalid="collect"))
    invalid = [item for item in collected if isinstance(item, UnusableRow) and item.kind == "invalid"]
    examples = [item for item in collected if isinstance(item, LocatedExample)]
    assert {item.row_index for item in collected} == set(range(len(rows)))  # every row accounted for
    assert all(isinstance(example.label, bool) and example.where == locate(example.row_index) for example in examples)
    stopped = []
    if invalid:
        with pytest.raises(DataRowError) as caught:
            for item in located_examples(rows, converter, locate, "data.jsonl", on_invalid="stop"):
                stopped.append(item)
        assert str(caught.value).startswith(f"{invalid[0].where}: ") and invalid[0].reason in str(caught.value)
        assert stopped == [item for item in collected if item.row_index < invalid[0].row_index]
    else:
        assert list(located_examples(rows, converter, locate, "data.jsonl", on_invalid="stop")) == collected


@pytest.mark.parametrize("seed", range(3))
def test_training_rows_are_the_check_examples_rendered(seed, tiny_model):
    """What the training loader keeps of valid rows is what `check` reads, less empty answers, rendered."""
    from transformers import AutoTokenizer

    from kto_plugin.data.feedback_examples import examples_from_rows
    from kto_plugin.data.loading import EMPTY_RESPONSE, render_located, rendered_rows

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    rng = random.Random(seed)
    fmt = FORMATS["messages"]
    rows = [row for row in (messy_row(rng, "messages") for _ in range(80))
            if row.get("label") in (True, False) and "messages" in row]
    converter = plugin_format_converter(fmt, fmt.field_settings(None))
    locate = RowLocator("data.jsonl")
    removed = Counter()
    trained = rendered_rows(rows, 0, converter, tokenizer, locate, removed)
    examples, unusable = examples_from_rows(rows, converter, locate, "data.jsonl", progress=False)
    kept = [example for example in examples if example.completion.strip()]
    assert trained.where == [example.where for example in kept]
    assert list(zip(trained.prompt, trained.completion)) == [render_located(example, tokenizer) for example in kept]
    assert removed[EMPTY_RESPONSE] == len(examples) - len(kept)
    assert sum(count for reason, count in removed.items() if reason != EMPTY_RESPONSE) == len(unusable)


def random_value(rng: random.Random, depth: int = 0):
    """Any JSON-ish value a careless export writes: text, numbers (NaN and infinity too), booleans, null, lists, objects."""
    kinds = ["text", "text", "int", "float", "nan", "inf", "bool", "null"] + (["list", "dict"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "text":
        return rng.choice(["Where is my parcel?", "退款多久到账？", "", " ", "=1+1", "line\nbreak", "🙂"])
    if kind == "int":
        return rng.randint(-3, 3)
    if kind == "float":
        return rng.uniform(-2, 2)
    if kind == "nan":
        return float("nan")
    if kind == "inf":
        return float("inf")
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["role", "content", "from", "value", "x"]): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_any_value_is_an_example_with_its_text_unchanged_or_an_unusable_row_with_a_reason(format_name):
    """Fuzz: every field of every row a random JSON value. The core never crashes; a row is either examples
    whose texts are exactly the strings given, or one unusable row with a reason."""
    rng = random.Random(format_name)
    fmt = FORMATS[format_name]
    converter = plugin_format_converter(fmt, fmt.field_settings(None))
    good = {"label": lambda: rng.choice([True, False, "yes", 0]), "history": lambda: [["Hi", "Hello"]],
            "messages": lambda: [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": rng.choice(["ok", "🙂"])}]}

    def value(role: str):  # mostly well-formed, so both kinds of outcome are common
        if role in fmt.optional and rng.random() < 0.5:
            return None
        if rng.random() < 0.75:
            return good.get(role, lambda: rng.choice(["Where is my parcel?", "退款多久到账？", "=1+1", " "]))()
        return random_value(rng)

    rows = [{column: value(role) for role, column in fmt.fields.items() if rng.random() < 0.97} for _ in range(3000)]
    items = list(located_examples(rows, converter, RowLocator("fuzz.jsonl"), "fuzz.jsonl", on_invalid="collect"))
    assert {item.row_index for item in items} == set(range(len(rows)))
    for item in items:
        row = rows[item.row_index]
        if isinstance(item, UnusableRow):
            assert item.reason.strip()
            continue
        assert isinstance(item.completion, str) and isinstance(item.label, bool)
        if format_name == "query_response":
            assert item.completion == row["response"] and item.prompt[-1] == {"role": "user", "content": row["query"]}
        if format_name == "prompt_completion" and isinstance(row["completion"], str):
            assert item.completion == row["completion"]
        for message in item.prompt:
            assert isinstance(message["content"], str)
    usable = sum(isinstance(item, LocatedExample) for item in items)
    assert 0 < usable < len(items)  # the generator makes both kinds
