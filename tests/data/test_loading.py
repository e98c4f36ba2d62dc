"""Dataset formats, label rules and input errors, through Axolotl's config loading and the plugin hook."""

from __future__ import annotations

import logging
import shutil

import pytest
from helpers import base_config, load_config, load_kto_data, write_jsonl

from kto_plugin.data.lengths import count_tokens

GENERATION_PROMPT = "<|im_start|>assistant\n"
END_OF_TURN = "<|im_end|>"


@pytest.fixture
def plugin_log():
    """Records of the plugin's loggers (Axolotl's own handlers do not reach caplog)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("axolotl.kto_plugin")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def messages_of(records, level=logging.INFO):
    return [record.getMessage() for record in records if record.levelno >= level]


def rows_of(meta):
    return meta.train_dataset.sort("prompt").to_list()


def test_query_response_jsonl_with_chinese_system_and_history(tmp_path, tiny_model):
    data = write_jsonl(tmp_path / "feedback.jsonl", [
        {"system": "你是客服。", "history": [["你好", "您好，请问有什么可以帮您？"]],
         "query": "退款多久到账？", "response": "一般5到10个工作日。", "label": True},
        {"query": "Where is my order?", "response": "No idea.", "label": False},
    ])
    meta = load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])
    rows = {row["completion"]: row for row in meta.train_dataset.to_list()}
    chinese = rows["一般5到10个工作日。" + END_OF_TURN]
    assert chinese["label"] is True
    prompt = chinese["prompt"]
    assert prompt.index("你是客服。") < prompt.index("你好") < prompt.index("您好，请问") < prompt.index("退款多久到账？")
    assert prompt.endswith(GENERATION_PROMPT)
    english = rows["No idea." + END_OF_TURN]
    assert english["label"] is False
    assert english["prompt"] == "<|im_start|>user\nWhere is my order?<|im_end|>\n" + GENERATION_PROMPT


def test_query_response_from_dataset_from_dict(tmp_path, tiny_model):
    from datasets import Dataset

    Dataset.from_dict({
        "query": ["怎么重置密码？", "Cancel my plan"],
        "response": ["在登录页点“忘记密码”。", "Fine, whatever."],
        "label": [1, 0],
    }).save_to_disk(str(tmp_path / "saved"))
    meta = load_kto_data(tmp_path, [{"path": str(tmp_path / "saved"), "type": "kto_plugin.query_response"}])
    rows = rows_of(meta)
    assert sorted((row["completion"], row["label"]) for row in rows) == [
        ("Fine, whatever." + END_OF_TURN, False),
        ("在登录页点“忘记密码”。" + END_OF_TURN, True),
    ]


def test_messages_last_assistant_turn_is_the_completion(tmp_path, tiny_model, plugin_log):
    data = write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Refund?"},
            {"role": "assistant", "content": "Within 5 days."},
        ], "label": "good"},
        {"messages": [{"from": "human", "value": "Ship to Canada?"}, {"from": "gpt", "value": "Yes."}],
         "label": "BAD"},
        {"messages": [{"role": "user", "content": "no answer here"}], "label": True},
    ])
    meta = load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.messages"}])
    rows = {row["completion"]: row for row in meta.train_dataset.to_list()}
    assert set(rows) == {"Within 5 days." + END_OF_TURN, "Yes." + END_OF_TURN}
    first = rows["Within 5 days." + END_OF_TURN]["prompt"]
    assert "Hello!" in first and first.endswith("Refund?<|im_end|>\n" + GENERATION_PROMPT)
    assert rows["Yes." + END_OF_TURN]["label"] is False
    assert any("messages do not end with an assistant turn: 1" in line for line in messages_of(plugin_log))


def test_prompt_completion_strings_and_message_lists(tmp_path, tiny_model):
    data = write_jsonl(tmp_path / "trl.jsonl", [
        {"prompt": "Explain VPNs.", "completion": "A VPN encrypts traffic.", "label": "yes"},
        {"prompt": [{"role": "user", "content": "Explain RAM."}],
         "completion": [{"role": "assistant", "content": "Short-term memory."}], "label": "no"},
    ])
    meta = load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.prompt_completion"}])
    assert sorted((row["prompt"], row["completion"], row["label"]) for row in meta.train_dataset.to_list()) == [
        ("<|im_start|>user\nExplain RAM.<|im_end|>\n" + GENERATION_PROMPT, "Short-term memory." + END_OF_TURN, False),
        ("<|im_start|>user\nExplain VPNs.<|im_end|>\n" + GENERATION_PROMPT, "A VPN encrypts traffic." + END_OF_TURN, True),
    ]


def test_paired_rows_become_one_desirable_and_one_undesirable_example(tmp_path, tiny_model):
    data = write_jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": f"question {i}", "chosen": f"good answer {i}", "rejected": f"bad answer {i}"} for i in range(3)
    ])
    meta = load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.paired"}])
    rows = meta.train_dataset.to_list()
    assert len(rows) == 6
    for i in range(3):
        by_completion = {row["completion"]: row["label"] for row in rows if f"question {i}<" in row["prompt"]}
        assert by_completion == {f"good answer {i}" + END_OF_TURN: True, f"bad answer {i}" + END_OF_TURN: False}


def test_field_names_are_configurable_in_the_dataset_entry(tmp_path, tiny_model):
    data = write_jsonl(tmp_path / "custom.jsonl", [{"question": "Hi?", "answer": "Hello.", "ok": "accept"}])
    meta = load_kto_data(tmp_path, [{
        "path": str(data), "type": "kto_plugin.query_response",
        "field_query": "question", "field_response": "answer", "field_label": "ok",
    }])
    assert meta.train_dataset.to_list() == [{
        "prompt": "<|im_start|>user\nHi?<|im_end|>\n" + GENERATION_PROMPT,
        "completion": "Hello." + END_OF_TURN, "label": True,
    }]


def test_misspelled_field_setting_is_an_error(tmp_path, tiny_model):
    data = write_jsonl(tmp_path / "custom.jsonl", [{"query": "Hi?", "response": "Hello.", "label": 1}])
    with pytest.raises(ValueError, match="field_querry"):
        load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response", "field_querry": "q"}])


def test_plugin_formats_mix_with_each_other_and_axolotl_kto_types(tmp_path, tiny_model):
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"query": "A?", "response": "a.", "label": True}])
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "B?", "chosen": "b.", "rejected": "nope"}])
    intel = write_jsonl(tmp_path / "intel.jsonl", [
        {"system": "", "question": "C?", "completion": "c.", "label": False},
    ])
    meta = load_kto_data(tmp_path, [
        {"path": str(ours), "type": "kto_plugin.query_response"},
        {"path": str(pairs), "type": "kto_plugin.paired"},
        {"path": str(intel), "type": "chatml.intel"},
    ])
    completions = sorted(row["completion"] for row in meta.train_dataset.to_list())
    assert completions == ["a." + END_OF_TURN, "b." + END_OF_TURN, "c." + END_OF_TURN, "nope" + END_OF_TURN]
    assert meta.train_dataset.column_names == ["prompt", "completion", "label"]


def test_shipped_sample_sets_load_by_plugin_uri(tmp_path, tiny_model, plugin_log):
    meta = load_kto_data(tmp_path, [
        {"path": "kto_plugin://kto-sample-zh", "type": "kto_plugin.query_response"},
        {"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"},
    ], sequence_len=512)
    labels = meta.train_dataset["label"]
    assert len(labels) >= 400
    assert 0 < sum(labels) < len(labels)
    assert any(("退款" in prompt) for prompt in meta.train_dataset["prompt"])
    assert any("KTO data (train): read" in line and "removed 0" in line for line in messages_of(plugin_log))


@pytest.mark.parametrize("bad_label", ["maybe", 2, None])
def test_bad_label_names_file_line_and_value(tmp_path, tiny_model, bad_label):
    data = write_jsonl(tmp_path / "labels.jsonl", [
        {"query": "a", "response": "b", "label": True},
        {"query": "c", "response": "d", "label": bad_label},
    ])
    with pytest.raises(ValueError) as err:
        load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])
    message = str(err.value)
    assert f"{data} line 2" in message
    assert repr(bad_label) in message


def test_bad_label_in_a_saved_dataset_names_the_row(tmp_path, tiny_model):
    from datasets import Dataset

    Dataset.from_dict({"query": ["a", "b", "c"], "response": ["x", "y", "z"], "label": ["yes", "no", "perhaps"]}
                      ).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ValueError, match=r"row 3: invalid label 'perhaps'"):
        load_kto_data(tmp_path, [{"path": str(tmp_path / "saved"), "type": "kto_plugin.query_response"}])


def test_malformed_jsonl_line_names_file_and_line(tmp_path, tiny_model):
    data = tmp_path / "broken.jsonl"
    data.write_text('{"query": "a", "response": "b", "label": true}\n\n{"query": "c", "response": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{data} line 3: not valid JSON"):
        load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])


def test_missing_field_names_the_fields_that_exist(tmp_path, tiny_model):
    data = write_jsonl(tmp_path / "fields.jsonl", [{"question": "a", "response": "b", "label": True}])
    with pytest.raises(ValueError) as err:
        load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])
    message = str(err.value)
    assert "missing field 'query'" in message
    assert "['label', 'question', 'response']" in message
    assert "field_query" in message


def test_empty_responses_are_removed_and_reported_by_reason(tmp_path, tiny_model, plugin_log):
    data = write_jsonl(tmp_path / "empty.jsonl", [
        {"query": "a", "response": "fine", "label": True},
        {"query": "b", "response": "", "label": False},
        {"query": "c", "response": "   ", "label": True},
        {"query": "d", "response": "no", "label": False},
    ])
    meta = load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])
    assert len(meta.train_dataset) == 2
    report = [line for line in messages_of(plugin_log) if line.startswith("KTO data (train)")]
    assert len(report) == 1
    assert "read 4 rows" in report[0] and "kept 2 examples" in report[0]
    assert "removed 2 (empty response: 2)" in report[0]


def test_over_long_rows_are_truncated_keeping_completion_and_prompt_end(tmp_path, tiny_model, plugin_log):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    long_query = " ".join(f"word{i}" for i in range(300)) + " FINAL QUESTION?"
    data = write_jsonl(tmp_path / "long.jsonl", [
        {"query": long_query, "response": "The short answer.", "label": True},
        {"query": "short", "response": "ok", "label": False},
    ])
    meta = load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}], sequence_len=64)
    rows = {row["completion"]: row for row in meta.train_dataset.to_list()}
    long_row = rows["The short answer." + END_OF_TURN]
    assert long_row["prompt"].endswith("FINAL QUESTION?<|im_end|>\n" + GENERATION_PROMPT)
    assert "word0 " not in long_row["prompt"]
    assert count_tokens(tokenizer, long_row["prompt"]) + count_tokens(tokenizer, long_row["completion"]) <= 64
    assert any("truncated 1 to fit sequence_len 64" in line for line in messages_of(plugin_log))


def test_all_rows_too_long_with_drop_explains_lengths_and_fix(tmp_path, tiny_model):
    data = write_jsonl(tmp_path / "long.jsonl", [
        {"query": " ".join(["word"] * (100 + 10 * i)), "response": "answer", "label": i % 2 == 0} for i in range(5)
    ])
    with pytest.raises(ValueError) as err:
        load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}],
                      sequence_len=32, excess_length_strategy="drop")
    message = str(err.value)
    assert "all 5 examples" in message and "sequence_len 32" in message
    assert "min " in message and "p90 " in message and "max " in message
    assert "`sequence_len`" in message and "excess_length_strategy" in message


def test_a_sequence_len_that_cuts_every_row_to_nothing_stops_with_the_lengths(tmp_path, tiny_model):
    """It trained with every log-prob 0 and grad_norm 0, exit 0, after one INFO line."""
    data = write_jsonl(tmp_path / "rows.jsonl", [
        {"query": "Where is my parcel, please?", "response": "It ships today from our depot.", "label": i % 2 == 0}
        for i in range(4)
    ])
    with pytest.raises(ValueError) as err:
        load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}], sequence_len=2)
    message = str(err.value)
    assert "sequence_len 2 is too short for any example" in message and "median " in message
    assert "Raise `sequence_len`" in message


def test_raise_strategy_names_the_over_long_row(tmp_path, tiny_model):
    data = write_jsonl(tmp_path / "long.jsonl", [
        {"query": "short", "response": "ok", "label": True},
        {"query": " ".join(["word"] * 200), "response": "answer", "label": False},
    ])
    with pytest.raises(ValueError, match=rf"{data} line 2: \d+ tokens is longer than sequence_len 32"):
        load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}],
                      sequence_len=32, excess_length_strategy="raise")


def test_one_label_class_warns_and_says_what_kto_does(tmp_path, tiny_model, plugin_log):
    data = write_jsonl(tmp_path / "only_good.jsonl", [
        {"query": f"q{i}", "response": f"a{i}", "label": "good"} for i in range(4)
    ])
    meta = load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])
    assert len(meta.train_dataset) == 4
    warnings = messages_of(plugin_log, logging.WARNING)
    assert any("all 4 training examples are desirable" in line and "KL reference point" in line
               for line in warnings)


def test_tokenizer_without_chat_template_fails_before_model_load(tmp_path, tiny_model):
    import json

    bare = tmp_path / "bare-model"
    shutil.copytree(tiny_model, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config_file = bare / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text())
    tokenizer_config.pop("chat_template", None)
    config_file.write_text(json.dumps(tokenizer_config))
    data = write_jsonl(tmp_path / "d.jsonl", [{"query": "a", "response": "b", "label": True}])
    entry = [{"path": str(data), "type": "kto_plugin.query_response"}]
    with pytest.raises(ValueError, match="chat_template: chatml"):
        load_kto_data(tmp_path, entry, base_model=str(bare))
    meta = load_kto_data(tmp_path, entry, base_model=str(bare), chat_template="chatml")
    assert meta.train_dataset[0]["prompt"].endswith(GENERATION_PROMPT)


def test_plugin_without_rl_kto_is_rejected(tmp_path, tiny_model):
    config = base_config(tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}])
    config["rl"] = "dpo"
    with pytest.raises(Exception, match="needs `rl: kto`"):
        load_config(tmp_path, config)


def test_unknown_plugin_type_lists_the_known_ones(tmp_path, tiny_model):
    config = base_config(tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_answer"}])
    with pytest.raises(Exception) as err:
        load_config(tmp_path, config)
    assert "kto_plugin.query_response" in str(err.value) and "kto_plugin.paired" in str(err.value)


def test_validation_split_comes_from_the_training_rows(tmp_path, tiny_model):
    meta = load_kto_data(tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
                         val_set_size=0.1, sequence_len=512)
    assert meta.eval_dataset is not None
    assert len(meta.train_dataset) + len(meta.eval_dataset) == 267
    assert meta.total_num_steps == -(-len(meta.train_dataset) // 2)


def test_types_also_work_through_axolotls_own_loader(tmp_path, tiny_model):
    """`axolotl evaluate` skips plugin dataset hooks and resolves `kto_plugin.<format>` itself."""
    from axolotl.common.datasets import load_preference_datasets

    data = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Q?", "chosen": "yes.", "rejected": "no."}])
    cfg = load_config(tmp_path, base_config(tmp_path, [{"path": str(data), "type": "kto_plugin.paired"}]))
    meta = load_preference_datasets(cfg=cfg)
    assert sorted((row["completion"], row["label"]) for row in meta.train_dataset.to_list()) == [
        ("no." + END_OF_TURN, False), ("yes." + END_OF_TURN, True),
    ]


def test_a_plugin_type_without_the_plugin_listed_says_to_add_it(tmp_path, tiny_model):
    """`rl: kto` and `type: kto_plugin.*` without `plugins:` trained with Axolotl's built-in KTO, saying nothing."""
    from axolotl.common.datasets import load_preference_datasets

    data = write_jsonl(tmp_path / "rows.jsonl", [{"query": "Q?", "response": "A.", "label": True}])
    config = base_config(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])
    del config["plugins"]
    config.update(base_model=str(tiny_model), remove_unused_columns=False)  # as such a config has them
    cfg = load_config(tmp_path, config)
    with pytest.raises(ValueError) as err:
        load_preference_datasets(cfg=cfg)
    assert "does not list the plugin" in str(err.value) and "plugins:\n  - kto_plugin.KTOPlugin" in str(err.value)


def test_a_misspelt_field_in_one_row_is_that_row_s_missing_field_in_training_and_in_check(tmp_path, tiny_model):
    """A dataset gives every row every column, so a row with `qeury` reads `query` as null: that row is named,
    not trained with an empty prompt; `check` lists the same row as unusable."""
    from kto_plugin.data.feedback_examples import examples_from_file

    data = write_jsonl(tmp_path / "typo.jsonl", [
        {"query": "Where is my parcel?", "response": "It ships today.", "label": True},
        {"qeury": "Can I return it?", "response": "Yes, within 30 days.", "label": True},
        {"query": "Do you ship abroad?", "response": ["Yes"], "label": False},
    ])
    with pytest.raises(ValueError) as err:
        load_kto_data(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}])
    assert f"{data} line 2: missing field 'query'" in str(err.value) and "field_query" in str(err.value)
    _, _, examples, unusable = examples_from_file(data, "query_response", progress=False)
    assert [example.where for example in examples] == [f"{data} line 1"]
    assert [row.where for row in unusable] == [f"{data} line 2", f"{data} line 3"]
    assert "missing field 'query'" in unusable[0].reason and "must be text, got list ['Yes']" in unusable[1].reason
