"""`kto_lora_preset`: LoRA settings by parameter count read from the config, never over a key the user set."""

from __future__ import annotations

import logging

import pytest
from helpers import QWEN25_7B, base_config, load_config

from kto_plugin.training.lora_presets import (
    SEVEN_B_BELOW,
    SMALL_BELOW,
    apply_lora_preset,
    count_parameters_from_config,
    preset_for_parameters,
)


@pytest.mark.parametrize(("parameters", "name"), [
    (266_000, "small"), (SMALL_BELOW - 1, "small"), (SMALL_BELOW, "7b"), (7_600_000_000, "7b"),
    (SEVEN_B_BELOW - 1, "7b"), (SEVEN_B_BELOW, "70b"), (72_000_000_000, "70b"),
])
def test_auto_picks_by_size_at_the_boundaries(parameters, name):
    assert preset_for_parameters(parameters).name == name


def write_config_only(folder, **shape):
    """A Qwen2 config of a real size, with no weights: enough to count parameters."""
    from transformers import Qwen2Config

    Qwen2Config(**shape).save_pretrained(folder)
    return str(folder)


def test_a_7b_and_a_72b_config_are_counted_without_weights(tmp_path):
    seven = write_config_only(tmp_path / "7b", **QWEN25_7B)
    count, modules = count_parameters_from_config(seven)
    assert 7.0e9 < count < 8.0e9
    assert {"q_proj", "k_proj", "v_proj"} <= modules
    cfg = {"base_model": seven, "kto_lora_preset": "auto"}
    apply_lora_preset(cfg)
    assert cfg == {**cfg, "adapter": "lora", "lora_r": 64, "lora_alpha": 128, "lora_target_linear": True}

    seventy = write_config_only(tmp_path / "72b", **{**QWEN25_7B, "hidden_size": 8192, "num_hidden_layers": 80,
                                                      "intermediate_size": 29568, "num_attention_heads": 64,
                                                      "num_key_value_heads": 8})  # Qwen2-72B's shape
    cfg = {"base_model": seventy, "kto_lora_preset": "auto"}
    apply_lora_preset(cfg)
    assert (cfg["lora_r"], cfg["lora_alpha"], cfg["lora_target_modules"]) == (128, 256, ["q_proj", "k_proj", "v_proj"])


def test_the_count_from_the_config_is_the_loaded_models(tiny_model):
    """Tied input and output embeddings count once, as in the model with its weights."""
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert count_parameters_from_config(str(tiny_model))[0] == sum(p.numel() for p in loaded.parameters())


def test_a_key_the_user_set_is_kept_and_the_choice_is_logged(tiny_model):
    cfg = {"base_model": str(tiny_model), "kto_lora_preset": "auto", "adapter": "qlora", "lora_r": 8,
           "lora_target_linear": True}
    handler = logging.Handler()
    messages = []
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("axolotl.kto_plugin.training.lora_presets")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        apply_lora_preset(cfg)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert cfg["adapter"] == "qlora" and cfg["lora_r"] == 8 and cfg["lora_alpha"] == 64
    assert "lora_target_modules" not in cfg
    [line] = [message for message in messages if "KTO LoRA preset" in message]
    assert "KTO LoRA preset small (kto_lora_preset: auto): the base model has 0.00B parameters" in line
    assert "set lora_alpha 64" in line and "kept what you set: lora_r: 8, lora_target_linear: True" in line


def test_through_axolotls_config_loading(tmp_path, tiny_model):
    config = base_config(tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
                         kto_lora_preset="small")
    cfg = load_config(tmp_path, config)
    assert (cfg.adapter, cfg.lora_r, cfg.lora_alpha) == ("lora", 32, 64)
    assert list(cfg.lora_target_modules) == ["q_proj", "v_proj"]


def test_unknown_preset_names_the_choices(tmp_path, tiny_model):
    config = base_config(tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
                         kto_lora_preset="13b")
    with pytest.raises(ValueError, match="`kto_lora_preset: 13b` is unknown: use one of auto, small, 7b, 70b"):
        load_config(tmp_path, config)
