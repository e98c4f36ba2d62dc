"""bench/iterate's configs, budget and report: the loop spends the offline runs' label budget, its rounds train
with the shipped recipe's settings, and the table puts every round beside the offline runs.

(The bench itself, 9 rounds and 6 offline runs of `axolotl train`, is a command: `python -m bench.iterate`.)
"""

from __future__ import annotations

import yaml

from bench.alignment.data import budget
from bench.alignment.runs import DEFAULTS
from bench.iterate.__main__ import RECIPE, main, round_config
from bench.iterate.report import plot, rows
from kto_plugin.embedded.recipes import recipe_path

RECIPE_KEYS = ("rl", "rl_beta", "kto_auto_weights", "learning_rate", "num_epochs", "micro_batch_size",
               "gradient_accumulation_steps", "lora_r", "lora_alpha", "kto_group_by_length", "sequence_len")


def test_the_rounds_train_as_the_shipped_recipe_does_and_spend_the_offline_budget(tmp_path):
    recipe = yaml.safe_load(recipe_path("iterate-refunds").read_text(encoding="utf-8"))
    settings = {**DEFAULTS, "num_epochs": RECIPE["num_epochs"], "kto_sft_weight": RECIPE["kto_sft_weight"],
                "rl_beta": RECIPE["rl_beta"]}
    config = round_config("base", tmp_path, 0, settings)
    assert {key: config[key] for key in RECIPE_KEYS + ("kto_sft_weight",)} == {
        key: recipe[key] for key in RECIPE_KEYS + ("kto_sft_weight",)}
    assert "kto_desirable_weight" not in config  # kto_auto_weights picks both weights
    assert "kto_sft_weight" not in round_config("base", tmp_path, 0, DEFAULTS)  # None: the plugin's default
    assert "kto_class_balance" not in config  # the plugin's default, as the recipe
    assert round_config("base", tmp_path, 0, {**settings, "kto_class_balance": "weights"})["kto_class_balance"] == "weights"
    loop = recipe["kto_iterate"]
    assert loop["rounds"] * loop["prompts_per_round"] * loop["answers_per_prompt"] == len(budget(0)) == 768
    # `python -m bench.iterate` without options measures the recipe as shipped
    defaults = {option.name: option.default for option in main.params}
    assert defaults["replay_share"] == loop["replay_share"]
    assert (defaults["num_epochs"], defaults["kto_sft_weight"], defaults["rl_beta"]) == (
        recipe["num_epochs"], recipe["kto_sft_weight"], recipe["rl_beta"])


def test_the_report_averages_each_round_over_seeds_beside_the_offline_runs(tmp_path):
    def score(good, seconds=60.0):
        return {"preference_accuracy": 0.8, "good": good, "bad": 0.2, "other": 0.8 - good, "seconds": seconds}

    results = {"seeds": [0, 1], "label_budget": 768,
               "iterate": {"0": [{"round": 0, **score(0.1)}, {"round": 1, **score(0.3, 120)}],
                           "1": [{"round": 0, **score(0.1)}, {"round": 1, **score(0.5, 60)}]},
               "offline": {"sft": [score(0.4, 90), score(0.42, 90)]}}
    found = rows(results)
    assert [name for name, _, _ in found] == ["warm model (round 0)", "iterate, after round 1", "offline sft"]
    assert found[1][1]["good"][0] == 0.4 and found[1][2] == 1.5 and found[0][2] is None
    assert abs(found[2][1]["good"][0] - 0.41) < 1e-9
    plot(results, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 10_000
