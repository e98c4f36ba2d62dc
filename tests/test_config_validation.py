"""The plugin's keys are checked with the Axolotl config, before any data or model loads."""

from __future__ import annotations

import pytest
from helpers import base_config, load_config

DATA = [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}]


def load_with(tmp_path, **overrides):
    return load_config(tmp_path, base_config(tmp_path, DATA, **overrides))


@pytest.mark.parametrize("overrides,message", [
    ({"kto_beta_schedule": [0.05, 0.0, 0.2]}, "`kto_beta_schedule`: every beta must be a positive number, got 0.0"),
    ({"kto_beta_schedule": [0.1, -0.2]}, "every beta must be a positive number, got -0.2"),
    ({"kto_beta_schedule": {"type": "linear", "start": 0.1, "end": 0}}, "got 0"),
    ({"kto_beta_schedule": {"type": "exponential", "start": 0.1, "end": 0.2}}, "`kto_beta_schedule.type: exponential` is unknown"),
    ({"kto_beta_schedule": {"type": "linear", "start": 0.1}}, "`kto_beta_schedule` needs `end`"),
    ({"kto_beta_schedule": 0.1}, "must be a list with one beta per epoch"),
    ({"kto_beta_schedule": []}, "`kto_beta_schedule` is an empty list"),
    ({"kto_loss_type": "sigmoid"}, "`kto_loss_type: sigmoid` is unknown"),
    ({"kto_reference_point": "mean"}, "`kto_reference_point: mean` is unknown: use one of kl, reward_mean"),
    ({"kto_reference_point": "reward_mean", "kto_loss_type": "apo_zero_unpaired"},
     "`kto_loss_type: apo_zero_unpaired` has no reference point"),
    ({"kto_auto_weights": True, "kto_desirable_weight": 1.2}, "remove `kto_desirable_weight`"),
    ({"kto_class_balance": "oversample"}, "`kto_class_balance: oversample` is unknown: use one of auto, weights, sampling"),
    ({"kto_sft_gce_q": 0.5, "kto_sft_weight": 0}, "`kto_sft_gce_q: 0.5` shapes the SFT term, and `kto_sft_weight: 0`"),
    ({"kto_sft_gce_q": 1.5}, "kto_sft_gce_q"),
    ({"kto_sft_gce_max_reference_nll": -0.5}, "kto_sft_gce_max_reference_nll"),
    ({"rl": "dpo"}, "needs `rl: kto`"),
])
def test_bad_plugin_config_names_the_key(tmp_path, tiny_model, overrides, message):
    with pytest.raises(Exception) as err:
        load_with(tmp_path, **overrides)
    assert message in str(err.value)


def test_good_plugin_config_wires_the_trainer(tmp_path, tiny_model):
    cfg = load_with(tmp_path, kto_beta_schedule={"type": "cosine", "start": 0.2, "end": 0.05, "warmup_steps": 5},
                    kto_auto_weights=True, kto_loss_type="apo_zero_unpaired")
    assert cfg.trainer_cls == "kto_plugin.trainer.KTOPluginTrainer"
    assert cfg.kto_beta_schedule["type"] == "cosine" and cfg.kto_auto_weights is True
    assert cfg.remove_unused_columns is False


def test_triton_lora_kernels_are_off_without_a_gpu(tmp_path, tiny_model):
    """Axolotl enables them when unset, and `axolotl inference` then fails on a CPU-only machine."""
    import torch

    cfg = load_with(tmp_path, adapter="lora", lora_r=4, lora_target_linear=True)
    if not torch.cuda.is_available():
        assert cfg.lora_mlp_kernel is False and cfg.lora_qkv_kernel is False and cfg.lora_o_kernel is False
    explicit = load_with(tmp_path, adapter="lora", lora_r=4, lora_target_linear=True, lora_mlp_kernel=True)
    assert explicit.lora_mlp_kernel is True


def test_the_config_keys_page_is_current():
    """docs/config-keys.md is what `axolotl kto config-keys` generates from the `Field` descriptions."""
    from click.testing import CliRunner
    from helpers import REPO_ROOT

    from kto_plugin.args import KTOPluginArgs
    from kto_plugin.cli import kto

    printed = CliRunner().invoke(kto, ["config-keys"]).output
    assert all(f"| `{name}` |" in printed for name in KTOPluginArgs.model_fields)
    assert (REPO_ROOT / "docs" / "config-keys.md").read_text(encoding="utf-8") == printed, (
        "docs/config-keys.md is stale: run `axolotl kto config-keys > docs/config-keys.md`")


@pytest.mark.parametrize("key, closest", [("kto_beta_schedul", "kto_beta_schedule"), ("kto_auto_weight", "kto_auto_weights"),
                                          ("kto_desirable_weigth", "kto_desirable_weight"), ("kto_xyzzy", None)])
def test_a_misspelt_kto_key_is_an_error_naming_the_closest(tmp_path, tiny_model, key, closest):
    """Axolotl's schema drops unknown keys: without this check the run trained with the default, silently."""
    with pytest.raises(Exception) as err:
        load_with(tmp_path, **{key: True})
    message = str(err.value)
    assert f"unknown KTO key `{key}`" in message
    assert (f"did you mean `{closest}`?" in message) if closest else "did you mean" not in message


def test_kto_iterate_settings_pass_axolotls_loader_and_a_bad_one_names_its_key(tmp_path, tiny_model):
    cfg = load_with(tmp_path, kto_iterate={"prompts": "prompts.txt", "judge": "my_judges:grade", "rounds": 2})
    assert cfg.kto_iterate["rounds"] == 2 and cfg.kto_iterate["answers_per_prompt"] == 4
    with pytest.raises(Exception, match="kto_iterate.judge"):
        load_with(tmp_path, kto_iterate={"judge": "grade-it-somehow"})
    with pytest.raises(Exception, match="answers_per_prompt"):
        load_with(tmp_path, kto_iterate={"answers_per_prompt": 0})


def test_the_trainer_arguments_default_as_the_config_keys_do():
    """A key left out of the config reaches the trainer with the config model's default, on both paths: the
    training-arguments mixin's own field default, and `training_args_from_config` on a config without the key."""
    from dataclasses import fields

    from axolotl.utils.dict import DictDefault

    from kto_plugin.args import KTOPluginArgs
    from kto_plugin.training.training_args import KTOTrainingArgsMixin, training_args_from_config

    config_defaults = {name: spec.default for name, spec in KTOPluginArgs.model_fields.items()}
    shared = [spec for spec in fields(KTOTrainingArgsMixin) if spec.name in config_defaults]
    assert {spec.name for spec in shared} >= {"kto_sft_weight", "kto_sft_gce_q", "kto_sft_gce_max_reference_nll",
                                              "kto_reference_point", "kto_chunked_logps"}
    from_config = training_args_from_config(DictDefault({**config_defaults, "rl": "kto"}))
    unset = training_args_from_config(DictDefault({**config_defaults, "rl": "kto", "kto_sft_weight": None,
                                                   "kto_sft_gce_q": None, "kto_sft_gce_max_reference_nll": None,
                                                   "kto_reference_point": None}))
    for spec in shared:
        assert spec.default == config_defaults[spec.name] == from_config[spec.name], spec.name
        assert unset[spec.name] == config_defaults[spec.name], spec.name
