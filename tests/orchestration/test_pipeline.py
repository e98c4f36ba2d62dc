"""`axolotl kto pipeline`: SFT -> KTO -> DPO on the embedded model, both routes, each stage a real `axolotl train`."""

from __future__ import annotations

import pytest

import json
import shutil

from helpers import REPO_ROOT, run_axolotl

from kto_plugin.training.trainer import continue_saved_adapter


def lora_b(path):
    from safetensors.torch import load_file

    return {key: value.float() for key, value in load_file(str(path / "adapter_model.safetensors")).items() if "lora_B" in key}


def norm(tensors: dict) -> float:
    return float(sum((value ** 2).sum() for value in tensors.values()) ** 0.5)


@pytest.mark.stack("py311")  # slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
def test_pipeline_both_routes_on_the_embedded_model(axolotl, tmp_path, plugin_cache):
    shutil.copytree(REPO_ROOT / "yaml_examples" / "pipeline", tmp_path / "yaml_examples" / "pipeline")
    result = run_axolotl("kto", "pipeline", "--route", "both", "--max-steps", "2", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    outputs = tmp_path / "outputs" / "pipeline"
    for route in ("merged", "adapter"):
        report = json.loads((outputs / f"report-{route}.json").read_text(encoding="utf-8"))
        assert [stage["stage"] for stage in report["stages"]] == ["base", "sft", "kto", "dpo"]
        assert report["held_out_rows"] == 54 and report["held_out_pairs"] > 0
        for before, after in zip(report["stages"], report["stages"][1:]):
            assert after["logp_accepted"] != before["logp_accepted"], f"{route}: {after['stage']} changed nothing"
        assert f"{route} route" in result.stdout
        assert [stage.get("trained_by_earlier_route") for stage in report["stages"][1:]] == (
            [False, False, False] if route == "merged" else [True, False, False])  # one SFT for both routes
    # merged route: each stage starts from the previous stage's merged weights
    assert (outputs / "sft" / "merged" / "model.safetensors").exists()
    assert (outputs / "kto" / "merged" / "model.safetensors").exists()
    assert (outputs / "dpo" / "adapter_config.json").exists()
    # adapter route: KTO trained the SFT adapter further (a fresh adapter would be about as far from it as it is long)
    sft, kto_on_adapter, fresh_kto = lora_b(outputs / "sft"), lora_b(outputs / "kto-on-adapter"), lora_b(outputs / "kto")
    moved = norm({key: kto_on_adapter[key] - sft[key] for key in sft})
    assert moved < 0.25 * norm(sft)
    assert norm({key: fresh_kto[key] - sft[key] for key in sft}) > 0.75 * norm(sft)
    assert (outputs / "dpo-after-adapter" / "adapter_config.json").exists()


def test_continue_saved_adapter_only_acts_on_an_adapter_run(tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    def tiny():
        return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, num_key_value_heads=2))

    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"])
    saved = get_peft_model(tiny(), config)
    for name, parameter in saved.named_parameters():
        if "lora_B" in name:
            parameter.data.fill_(0.5)
    saved.save_pretrained(str(tmp_path / "adapter"))
    args, kwargs = continue_saved_adapter(None, (tiny(),), {"peft_config": config})
    assert kwargs["peft_config"] is config  # no lora_model_dir: TRL builds the adapter as before
    args, kwargs = continue_saved_adapter(str(tmp_path / "adapter"), (tiny(),), {"peft_config": config})
    model = args[0]
    assert isinstance(model, PeftModel) and kwargs["peft_config"] is None
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert all(float(p.detach().mean()) == 0.5 for name, p in trainable.items() if "lora_B" in name)
    _, kwargs = continue_saved_adapter(str(tmp_path / "adapter"), (), {"model": tiny(), "peft_config": config})
    assert isinstance(kwargs["model"], PeftModel)
