"""bench/alignment's rows and configs: every variant sees the seed's one feedback budget, changed only as it says.

(The bench itself, 15 `axolotl train` runs, is a command, not a test: `python -m bench.alignment`.)
"""

from __future__ import annotations

import click
import pytest

from bench.alignment.data import FEW_DESIRABLE_KEPT, FLIPPED_SHARE, budget, variant_rows
from bench.alignment.runs import DEFAULTS, variant_config
from kto_plugin.embedded.refund_desk import grade, question_of, split_questions


def test_the_budget_is_two_good_and_two_bad_answers_per_training_question():
    rows = budget(0)
    train, held_out = split_questions()
    assert len(rows) == 4 * len(train) and sum(row["label"] for row in rows) == 2 * len(train)
    assert not {row["query"] for row in rows} & {question.prompt for question in held_out}
    assert all((grade(question_of(row["query"]), row["response"]) == "good") == row["label"] for row in rows)
    assert budget(0) == rows and budget(1) != rows  # seeded


def test_each_variant_changes_the_budget_only_as_it_says():
    rows = budget(0)
    desirable = [row for row in rows if row["label"]]
    assert variant_rows("kto", rows, 0) == rows

    few = variant_rows("kto-few-desirable", rows, 0)
    kept = [row for row in few if row["label"]]
    assert [row for row in few if not row["label"]] == [row for row in rows if not row["label"]]
    assert abs(len(kept) / len(desirable) - FEW_DESIRABLE_KEPT) < 0.05 and all(row in desirable for row in kept)

    noisy = variant_rows("kto-noisy", rows, 0)
    flipped = sum(a["label"] != b["label"] for a, b in zip(rows, noisy))
    assert flipped == round(FLIPPED_SHARE * len(rows))
    assert [(a["query"], a["response"]) for a in rows] == [(b["query"], b["response"]) for b in noisy]

    pairs = variant_rows("dpo", rows, 0)
    assert len(pairs) == len(desirable)
    assert sorted(pair["chosen"] for pair in pairs) == sorted(row["response"] for row in desirable)
    assert sorted(pair["rejected"] for pair in pairs) == sorted(row["response"] for row in rows if not row["label"])

    sft = variant_rows("sft", rows, 0)
    assert [row["messages"][-1]["content"] for row in sft] == [row["response"] for row in desirable]
    # the SFT baselines of the degraded budgets: the accepted answers that KTO's variant reads, and no others
    assert [row["messages"][-1]["content"] for row in variant_rows("sft-few-desirable", rows, 0)] == [
        row["response"] for row in kept]
    assert [row["messages"][-1]["content"] for row in variant_rows("sft-noisy", rows, 0)] == [
        row["response"] for row in noisy if row["label"]]
    assert variant_rows("kto-sft", rows, 0) == rows and variant_rows("dpo-sft", rows, 0) == pairs
    with pytest.raises(ValueError, match="kto, kto-sft, dpo"):
        variant_rows("ppo", rows, 0)


def test_variant_configs_differ_in_the_objective_only(tmp_path):
    configs = {variant: variant_config(variant, "base", tmp_path / "d.jsonl", tmp_path / "out", 3, DEFAULTS)
               for variant in ("kto", "kto-sft", "kto-few-desirable", "dpo", "dpo-sft", "sft", "sft-few-desirable",
                               "sft-noisy")}
    shared = {"learning_rate", "num_epochs", "micro_batch_size", "gradient_accumulation_steps", "lora_r", "seed"}
    for config in configs.values():
        assert {key: config[key] for key in shared} == {key: configs["kto"][key] for key in shared}
    assert configs["kto"]["rl"] == "kto" and configs["dpo"]["rl"] == "dpo"
    assert not any("rl" in configs[variant] for variant in ("sft", "sft-few-desirable", "sft-noisy"))
    assert configs["kto-few-desirable"]["kto_auto_weights"] and not configs["kto"]["kto_auto_weights"]
    assert configs["kto"]["kto_group_by_length"] is False  # data order, as DPO and SFT read it

    # the SFT terms: off in the paper's KTO and in DPO, at the bench's weight in kto-sft and dpo-sft, the plugin's
    # default in the other KTO variants
    assert configs["kto"]["kto_sft_weight"] == 0.0 and configs["kto-sft"]["kto_sft_weight"] == DEFAULTS["sft_term_weight"]
    assert "kto_sft_weight" not in configs["kto-few-desirable"]
    assert configs["dpo-sft"]["dpo_loss_type"] == ["sigmoid", "sft"] and "dpo_loss_type" not in configs["dpo"]


def test_a_reference_point_reaches_every_kto_variant_and_no_other(tmp_path):
    settings = {**DEFAULTS, "kto_reference_point": "reward_mean"}
    configs = {variant: variant_config(variant, "base", tmp_path / "d.jsonl", tmp_path / "out", 3, settings)
               for variant in ("kto", "kto-sft", "kto-few-desirable", "kto-noisy", "dpo", "sft")}
    assert [variant for variant, config in configs.items() if config.get("kto_reference_point") == "reward_mean"] == [
        "kto", "kto-sft", "kto-few-desirable", "kto-noisy"]
    # without one: the paper's loss keeps the paper's KL z0, the other KTO variants get the plugin's default
    defaults = {variant: variant_config(variant, "base", tmp_path / "d.jsonl", tmp_path / "out", 3, DEFAULTS)
                for variant in ("kto", "kto-sft", "kto-noisy")}
    assert defaults["kto"]["kto_reference_point"] == "kl"
    assert "kto_reference_point" not in defaults["kto-sft"] and "kto_reference_point" not in defaults["kto-noisy"]


def test_the_sft_terms_loss_reaches_the_kto_variants_with_an_sft_term_only(tmp_path):
    settings = {**DEFAULTS, "kto_sft_gce_q": 0.5}
    configs = {variant: variant_config(variant, "base", tmp_path / "d.jsonl", tmp_path / "out", 3, settings)
               for variant in ("kto", "kto-sft", "kto-few-desirable", "kto-noisy", "dpo-sft", "sft")}
    assert [variant for variant, config in configs.items() if config.get("kto_sft_gce_q") == 0.5] == [
        "kto-sft", "kto-few-desirable", "kto-noisy"]  # `kto` is the paper's loss: no SFT term to shape


def test_kto_keys_reach_every_kto_variant_and_no_other(tmp_path):
    from bench.alignment.__main__ import parse_kto_keys

    keys = parse_kto_keys(("kto_class_balance=weights", "kto_sft_weight=5", "kto_group_by_length=true"))
    assert keys == {"kto_class_balance": "weights", "kto_sft_weight": 5, "kto_group_by_length": True}
    settings = {**DEFAULTS, "kto_keys": keys}
    configs = {variant: variant_config(variant, "base", tmp_path / "d.jsonl", tmp_path / "out", 3, settings)
               for variant in ("kto", "kto-few-desirable", "dpo-sft", "sft")}
    assert [variant for variant, config in configs.items() if config.get("kto_class_balance") == "weights"] == [
        "kto", "kto-few-desirable"]
    assert configs["kto"]["kto_sft_weight"] == 5  # a key given wins over the variant's own value
    with pytest.raises(click.BadParameter, match="KEY=VALUE"):
        parse_kto_keys(("kto_sft_weight",))


def test_the_scores_count_each_held_out_combinations_grades(tiny_model):
    """The per-combination counts add up to the sampled answers and agree with the shares, on a real model's answers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.alignment.scoring import score_model
    from kto_plugin.embedded.refund_desk import split_questions

    scores = score_model(AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model),
                         samples=2, max_new_tokens=8)
    counts = scores["grades_by_combination"]
    held_out = split_questions()[1]
    assert len(counts) == len({(question.product, question.days) for question in held_out}) == 16
    assert all(sum(grades.values()) == 2 * 3 for grades in counts.values())  # 3 phrasings, 2 samples each
    total = sum(sum(grades.values()) for grades in counts.values())
    assert total == 2 * len(held_out)
    assert sum(grades.get("good", 0) for grades in counts.values()) / total == scores["good"]
    assert sum(grades.get("other", 0) for grades in counts.values()) / total == scores["other"]
