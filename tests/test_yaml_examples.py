"""Every shipped example is a valid Axolotl config with the plugin loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "yaml_examples"


@pytest.mark.parametrize("name", sorted(path.name for path in EXAMPLES.glob("*.yaml")))
def test_example_validates_with_the_plugin(name, tmp_path, tiny_model):
    from axolotl.integrations.base import PluginManager

    config = yaml.safe_load((EXAMPLES / name).read_text())
    # No hub here: point hub models at the local tiny model, keep every other key. The warm
    # model takes minutes to make: the tiny model stands in (test_quickstart_alignment.py warms one up).
    if not str(config["base_model"]).startswith("kto_plugin://") or config["base_model"] == "kto_plugin://warm-model":
        config["base_model"] = str(tiny_model)
    for entry in config["datasets"]:
        if not entry["path"].startswith("kto_plugin://"):
            entry["path"] = "kto_plugin://kto-sample-en"
    config["output_dir"] = str(tmp_path / "out")
    config.update(bf16=False, tf32=False, fp16=False)
    # A DeepSpeed config starts torch.distributed in the loading process: the multi-GPU
    # examples run with it, on two ranks, in test_multi_process.py.
    deepspeed = config.pop("deepspeed", None)
    if deepspeed is not None:
        from kto_plugin.distributed.zero_configs import DEEPSPEED_PREFIX, deepspeed_config_names

        assert deepspeed.removeprefix(DEEPSPEED_PREFIX) in deepspeed_config_names()
    cfg = load_config(tmp_path, config)
    assert "kto_plugin.KTOPlugin" in PluginManager.get_instance().plugins
    assert getattr(cfg.rl, "value", cfg.rl) == "kto"


def test_qwen_recipe_is_the_documented_standard():
    config = yaml.safe_load((EXAMPLES / "qwen2.5-7b-lora.yaml").read_text())
    expected = {
        "adapter": "lora", "lora_r": 64, "lora_alpha": 128, "lora_target_linear": True, "bf16": True,
        "num_epochs": 2, "micro_batch_size": 2, "gradient_accumulation_steps": 8, "learning_rate": 2e-5,
        "sequence_len": 4096, "warmup_ratio": 0.1, "rl_beta": 0.1, "logging_steps": 10,
        "save_steps": 100, "eval_steps": 100,
    }
    assert {key: config.get(key) for key in expected} == expected


def test_add_to_existing_needs_only_the_marked_lines():
    text = (EXAMPLES / "add-to-existing.yaml").read_text()
    marked = [line for line in text.splitlines() if "# KTO:" in line]
    assert any(line.startswith("plugins:") for line in marked)
    assert any(line.startswith("rl: kto") for line in marked)
    assert any("type: kto_plugin." in line for line in marked)
