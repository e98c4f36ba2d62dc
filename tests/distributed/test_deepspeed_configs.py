"""The shipped DeepSpeed configs: named from a config, and filled by the Hugging Face integration."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner
from helpers import base_config, load_config

from kto_plugin.cli import kto
from kto_plugin.distributed.zero_configs import deepspeed_config_names, deepspeed_config_path

DATA = [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}]
NAMES = ["zero1", "zero2", "zero3", "zero3_offload"]


def autos(node, where=""):
    """Every place in the JSON that still says "auto"."""
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in autos(value, f"{where}.{key}")]
    return [where] if node == "auto" else []


def test_the_four_configs_are_shipped_with_auto_values():
    assert deepspeed_config_names() == NAMES
    for name in NAMES:
        config = json.loads(deepspeed_config_path(name).read_text())
        assert config["zero_optimization"]["stage"] == int(name[4])
        assert {".train_micro_batch_size_per_gpu", ".gradient_accumulation_steps", ".gradient_clipping"} <= set(autos(config))
    offload = json.loads(deepspeed_config_path("zero3_offload").read_text())["zero_optimization"]
    assert offload["offload_optimizer"]["device"] == "cpu" and offload["offload_param"]["device"] == "cpu"


FILL_SCRIPT = """
import json, sys
from axolotl.cli.config import load_cfg
from transformers import AutoModelForCausalLM, TrainingArguments
import axolotl.utils.distributed
from accelerate.state import AcceleratorState
for path in sys.argv[1:]:
    # as in a new process (Axolotl sets DeepSpeed up before anything starts the distributed state)
    AcceleratorState._reset_state(reset_partial_state=True)
    axolotl.utils.distributed.distributed_state = None
    cfg = load_cfg(path)
    loaded = json.loads(json.dumps(cfg.deepspeed))  # Axolotl replaces the path with the file's content
    args = TrainingArguments(output_dir=cfg.output_dir, deepspeed=cfg.deepspeed,
                             per_device_train_batch_size=cfg.micro_batch_size,
                             gradient_accumulation_steps=cfg.gradient_accumulation_steps,
                             max_grad_norm=cfg.max_grad_norm, learning_rate=cfg.learning_rate, report_to=[])
    model = AutoModelForCausalLM.from_pretrained(cfg.base_model)
    args.hf_deepspeed_config.trainer_config_finalize(args, model, num_training_steps=100)
    print("FILLED" + json.dumps({"loaded": loaded, "config": args.hf_deepspeed_config.config,
                                 "world_size": args.world_size}))
"""


@pytest.fixture(scope="module")
def filled_configs(tmp_path_factory, tiny_model) -> dict:
    """Each shipped config named in a KTO config, through Axolotl's config loading with the plugin and then the same
    Hugging Face code a real run uses: TrainingArguments processes the file and the trainer finalises it with the
    model. DeepSpeed configs start torch.distributed (gloo here, see cpu_ranks.py), so this runs in its own process,
    one for the four."""
    tmp_path = tmp_path_factory.mktemp("deepspeed_configs")
    paths = []
    for name in NAMES:
        config = base_config(tmp_path, DATA, deepspeed=f"kto_plugin:{name}", micro_batch_size=2,
                             gradient_accumulation_steps=8, max_grad_norm=0.5)
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-c", FILL_SCRIPT, *map(str, paths)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    filled = [json.loads(line.removeprefix("FILLED")) for line in result.stdout.splitlines() if line.startswith("FILLED")]
    assert len(filled) == len(NAMES)
    return dict(zip(NAMES, filled))


@pytest.mark.stack("py311")  # slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
@pytest.mark.parametrize("name", NAMES)
def test_named_config_resolves_and_hf_fills_every_auto(name, filled_configs):
    filled = filled_configs[name]
    assert filled["loaded"] == json.loads(deepspeed_config_path(name).read_text())
    config = filled["config"]
    assert autos(config) == []
    assert config["train_micro_batch_size_per_gpu"] == 2 and config["gradient_accumulation_steps"] == 8
    assert config["train_batch_size"] == 2 * 8 * filled["world_size"]
    assert config["gradient_clipping"] == 0.5
    if config["zero_optimization"]["stage"] == 3:
        assert config["zero_optimization"]["reduce_bucket_size"] == 64 * 64  # hidden_size squared


def test_unknown_config_name_lists_the_shipped_ones(tmp_path, tiny_model):
    with pytest.raises(ValueError) as err:
        load_config(tmp_path, base_config(tmp_path, DATA, deepspeed="kto_plugin:zero4"))
    assert "zero1, zero2, zero3, zero3_offload" in str(err.value)


def test_deepspeed_command_lists_and_copies(tmp_path):
    listed = CliRunner().invoke(kto, ["deepspeed"])
    assert all(name in listed.output for name in NAMES)
    copy = tmp_path / "ds" / "zero2.json"
    CliRunner().invoke(kto, ["deepspeed", "zero2", "--output", str(copy)])
    assert copy.read_bytes() == deepspeed_config_path("zero2").read_bytes()
    unknown = CliRunner().invoke(kto, ["deepspeed", "zero9"])
    assert unknown.exit_code != 0 and "zero3_offload" in unknown.output
