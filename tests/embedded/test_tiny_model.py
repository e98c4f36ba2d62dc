"""The embedded tiny model and the shipped sample data, through their `axolotl kto` commands."""

from __future__ import annotations

import pytest

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from kto_plugin.cli import kto
from kto_plugin.embedded.samples import sample_dataset_names, sample_dataset_path


def digest(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_make_tiny_model_is_reproducible(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        result = CliRunner().invoke(kto, ["make-tiny-model", "--output", str(folder)])
        assert result.exit_code == 0, result.output
    assert digest(first) == digest(second)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(digest(first))
    again = CliRunner().invoke(kto, ["make-tiny-model", "--output", str(first)])
    assert "already present" in again.output


def test_different_seed_gives_different_weights(tmp_path):
    for seed, folder in ((1, "a"), (2, "b")):
        CliRunner().invoke(kto, ["make-tiny-model", "--output", str(tmp_path / folder), "--seed", str(seed)])
    assert digest(tmp_path / "a")["model.safetensors"] != digest(tmp_path / "b")["model.safetensors"]


def test_tiny_tokenizer_round_trips_chinese_and_english(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text = "退款一般5到10个工作日到账。Refunds take 5-10 business days. 龘"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8"))  # merges were learned, not bytes only
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert model.config.vocab_size == len(tokenizer)


def test_sample_sets_are_shipped_and_balanced_enough(tmp_path):
    assert sample_dataset_names() == ["kto-sample-en", "kto-sample-refunds", "kto-sample-zh"]
    for name in sample_dataset_names():
        rows = [json.loads(line) for line in sample_dataset_path(name).read_text(encoding="utf-8").splitlines()]
        assert len(rows) >= 200
        labels = [row["label"] for row in rows]
        assert 0.3 < sum(labels) / len(labels) < 0.7
        assert all(row["query"] and row["response"] for row in rows)
        assert any(row.get("system") for row in rows)
        assert name == "kto-sample-refunds" or any(row.get("history") for row in rows)
    zh = sample_dataset_path("kto-sample-zh").read_text(encoding="utf-8")
    assert "退款" in zh


def test_sample_data_command_prints_and_copies(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(kto, ["sample-data"])
    assert "kto-sample-zh" in listed.output and "kto-sample-en" in listed.output
    path = runner.invoke(kto, ["sample-data", "kto-sample-zh"]).output.strip()
    assert Path(path) == sample_dataset_path("kto-sample-zh")
    copy = tmp_path / "mine.jsonl"
    runner.invoke(kto, ["sample-data", "kto-sample-en", "--output", str(copy)])
    assert copy.read_bytes() == sample_dataset_path("kto-sample-en").read_bytes()
    unknown = runner.invoke(kto, ["sample-data", "kto-sample-fr"])
    assert unknown.exit_code != 0 and "kto-sample-zh" in unknown.output


def test_held_out_prompts_are_fixed_and_left_out_of_the_warm_up():
    from kto_plugin.embedded.refund_desk import question_of
    from kto_plugin.embedded.samples import held_out_queries
    from kto_plugin.embedded.warm_model import warm_up_rows

    held = held_out_queries()
    assert held == held_out_queries()
    refund_prompts = {query for query in held if question_of(query)}
    real_looking = held - refund_prompts
    assert len(real_looking) == 8 and len(refund_prompts) == 48  # 16 (product, days) combinations x 3 phrasings
    assert sum(any("\u4e00" <= char <= "\u9fff" for char in query) for query in real_looking) == 4
    rows = warm_up_rows()
    user_turns = {message["content"] for row in rows for message in row["messages"] if message["role"] == "user"}
    assert not held & user_turns
    all_rows = [json.loads(line) for name in sample_dataset_names()
                for line in sample_dataset_path(name).read_text(encoding="utf-8").splitlines()]
    held_out_rows = [row for row in all_rows if row["query"] in held]
    assert len(held_out_rows) == 54 + 48 * 4  # 54 rows of the 8 real-looking prompts, 4 answers per refund prompt
    assert len(rows) == len(all_rows) - len(held_out_rows)  # accepted and rejected rows of every other prompt
    pipeline_held_out = Path(__file__).resolve().parents[2] / "yaml_examples" / "pipeline" / "data" / "heldout.jsonl"
    assert {json.loads(line)["query"] for line in pipeline_held_out.read_text(encoding="utf-8").splitlines()} == real_looking


@pytest.mark.stack("py311")  # slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
def test_warm_up_is_reproducible(axolotl, tmp_path, plugin_cache):
    """Two warm-ups with one (shortened) recipe give the same weights, and the cache keeps the recipe."""
    from kto_plugin.embedded.warm_model import cached_recipe
    from kto_plugin.orchestration.warm_up import build_warm_model

    short = {"hidden_size": 64, "num_layers": 2, "num_epochs": 1, "micro_batch_size": 32, "sample_sets": ["kto-sample-en"]}
    first = build_warm_model(tmp_path / "a", short)
    second = build_warm_model(tmp_path / "b", short)
    assert digest(first)["model.safetensors"] == digest(second)["model.safetensors"]
    assert cached_recipe(first)["num_epochs"] == 1
    from kto_plugin.embedded.tiny_model import build_tiny_model

    untrained = build_tiny_model(tmp_path / "untrained", hidden_size=64, num_layers=2)
    assert digest(untrained)["model.safetensors"] != digest(first)["model.safetensors"]  # the warm-up trained it
