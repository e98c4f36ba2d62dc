"""The warm-up's batches are padded to their longest row (recipe 5), as Axolotl's own config validation keeps it."""

from __future__ import annotations

import json
from pathlib import Path

from kto_plugin.embedded.warm_model import RECIPE
from kto_plugin.orchestration.warm_up import warm_up_config


def validated(recipe: dict, tmp_path: Path):
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    data = tmp_path / "warm-up.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}) + "\n")
    return validate_config(DictDefault(warm_up_config(recipe, tmp_path / "base", data, tmp_path / "trained")))


def test_warm_up_pads_each_batch_to_its_longest_row(tmp_path):
    """Axolotl pads to a multiple of 64 tokens when `pad_to_sequence_len` is unset and to the batch's longest row
    when it is false (its causal builder); 23% of the warm-up's token positions are that rounding."""
    assert RECIPE["pad_to_longest"] is True and RECIPE["recipe_version"] == 5
    assert validated(RECIPE, tmp_path).pad_to_sequence_len is False
    recipe_4 = {key: value for key, value in RECIPE.items() if key != "pad_to_longest"}
    assert validated(recipe_4, tmp_path).pad_to_sequence_len is None  # recipe 4's weights stay reproducible
