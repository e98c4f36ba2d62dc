"""Judges of `axolotl kto iterate`: named forms, a Python function, a real tiny reward model and chat model."""

from __future__ import annotations

import math

import pytest

from kto_plugin.errors import ConfigError
from kto_plugin.evaluation.judges import (ChatModelJudge, FunctionJudge, JudgeSpec, RewardModelJudge, labels_from_scores,
                                          load_judge, parse_judge, threshold_value)

PROMPTS = ["Can I return my kettle?", "Hi", "Is a refund still possible for the e-book I bought 40 days ago?"]
ANSWERS = ["Yes, within 30 days.", "Hello there, how can I help you today with your order?", "No."]


def test_judge_forms_and_what_an_unknown_one_is_told(tmp_path):
    assert parse_judge("human") == JudgeSpec("human")
    assert parse_judge("my_judges:is_good") == JudgeSpec("function", "my_judges:is_good")
    assert parse_judge("judges/file.py:grade").kind == "function"
    with pytest.raises(ConfigError, match="human.*MODULE:FUNCTION.*reward-model:FOLDER"):
        parse_judge("a-judge-without-a-function")
    with pytest.raises(ConfigError, match="not a local model folder"):
        parse_judge(f"reward-model:{tmp_path / 'nothing-here'}")


def test_a_function_judge_from_a_file_is_called_once_per_answer_and_must_return_a_label_or_a_number(tmp_path):
    source = tmp_path / "judging.py"
    source.write_text("calls = []\n"
                      "def polite(prompt, answer):\n    calls.append(prompt)\n    return 'please' in answer\n"
                      "def length(prompt, answer):\n    return len(answer) / 10\n"
                      "def broken(prompt, answer):\n    return float('nan') if 'b' in answer else 'maybe'\n",
                      encoding="utf-8")
    polite = FunctionJudge(f"{source}:polite")
    assert polite.scores(["a", "b"], ["yes please", "no"], progress=None) == [True, False]
    assert polite.function.__globals__["calls"] == ["a", "b"]
    assert FunctionJudge(f"{source}:length").scores(["a"], ["12345"], progress=None) == [0.5]
    with pytest.raises(ConfigError, match="True/False or a finite number"):
        FunctionJudge(f"{source}:broken").scores(["a"], ["no"], progress=None)
    with pytest.raises(ConfigError, match="finite number"):
        FunctionJudge(f"{source}:broken").scores(["a"], ["b"], progress=None)
    with pytest.raises(ConfigError, match="has no function missing"):
        FunctionJudge(f"{source}:missing")
    with pytest.raises(ConfigError, match="cannot import"):
        FunctionJudge("no_such_module_here:judge")


def test_scores_become_labels_above_the_threshold_and_booleans_stay_as_they_are():
    assert threshold_value([True, False], "median") is None
    assert labels_from_scores([True, False], None) == [True, False]
    scores = [0.1, 0.4, 0.5, 2.0]
    assert threshold_value(scores, "mean") == pytest.approx(0.75)
    assert threshold_value(scores, "median") == pytest.approx(0.45)
    assert labels_from_scores(scores, threshold_value(scores, "median")) == [False, False, True, True]
    assert labels_from_scores(scores, threshold_value(scores, 0.5)) == [False, False, False, True]  # above, not at


def save_tiny(tmp_path, head: str, num_labels: int = 1):
    """The embedded tiny model's config and tokenizer with random weights: a reward model or a chat model."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from kto_plugin.embedded.cache import tiny_model_dir

    torch.manual_seed(3)
    config = AutoConfig.from_pretrained(str(tiny_model_dir()))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir()))
    if head == "reward":
        config.num_labels = num_labels
        config.pad_token_id = tokenizer.eos_token_id  # not the tokenizer's pad token: the judge must pad with this one
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModelForCausalLM.from_config(config)
    folder = tmp_path / f"{head}-{num_labels}"
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder, model.eval(), tokenizer


def test_a_reward_models_scores_are_its_head_on_each_conversation_alone_whatever_the_batch(tmp_path, tiny_model):
    import torch

    for num_labels in (1, 2):
        folder, model, tokenizer = save_tiny(tmp_path, "reward", num_labels)
        judge = load_judge(parse_judge(f"reward-model:{folder}"))
        assert isinstance(judge, RewardModelJudge)
        batched = judge.scores(PROMPTS, ANSWERS, progress=None)  # one padded batch of three lengths
        for prompt, answer, score in zip(PROMPTS, ANSWERS, batched):
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                                  {"role": "assistant", "content": answer}], tokenize=False)
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                logits = model(**ids).logits[0]
            alone = float(logits[0]) if num_labels == 1 else float(logits[1] - logits[0])
            assert score == pytest.approx(alone, abs=1e-4)
        assert len(set(round(score, 4) for score in batched)) == 3


def test_a_chat_model_judge_reads_yes_against_no_as_the_first_token_of_its_reply(tmp_path, tiny_model):
    import torch

    folder, model, tokenizer = save_tiny(tmp_path, "chat")
    judge = load_judge(parse_judge(f"chat-model:{folder}"))
    assert isinstance(judge, ChatModelJudge)
    batched = judge.scores(PROMPTS, ANSWERS, progress=None)  # left-padded batch
    for prompt, answer, score in zip(PROMPTS, ANSWERS, batched):
        ask = judge.rubric.format(prompt=prompt, answer=answer)
        text = tokenizer.apply_chat_template([{"role": "user", "content": ask}], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logps = torch.log_softmax(model(**ids).logits[0, -1].float(), dim=-1)
        yes, no = (float(torch.logsumexp(logps[ids_], dim=-1)) for ids_ in judge.yes_no)
        assert score == pytest.approx(yes - no, abs=1e-4)
        assert math.isfinite(score)
