"""One rule finds a finished run (adapter or full weights), one message when there is none; one seeding rule."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model):
    """An adapter run, a full-weights run and an unfinished one (a config but no weights), made with PEFT."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("runs")
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    model.save_pretrained(root / "full")
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(root / "adapter")
    (root / "unfinished").mkdir()
    (root / "unfinished" / "config.json").write_text("{}")
    (root / "interrupted").mkdir()  # a LoRA run stopped before saving: the adapter's config, no weights
    (root / "interrupted" / "adapter_config.json").write_text((root / "adapter" / "adapter_config.json").read_text())
    return root


def test_an_adapter_run_is_base_plus_adapter_and_a_full_run_is_its_own_folder(runs, tiny_model):
    from kto_plugin.evaluation.trained_run import TrainedRun

    adapter = TrainedRun.find(str(tiny_model), runs / "adapter")
    full = TrainedRun.find("kto_plugin://tiny-model", runs / "full")
    assert adapter.kind == "adapter" and adapter.lm_eval_args() == {"pretrained": str(tiny_model), "peft": str(runs / "adapter")}
    assert full.kind == "full" and full.base_model == str(tiny_model) and full.lm_eval_args() == {"pretrained": str(runs / "full")}
    assert adapter.stamp() > 0


@pytest.mark.parametrize("folder", ["unfinished", "interrupted", "missing"])
def test_no_trained_model_is_one_error_naming_the_folder_and_the_fix(runs, tiny_model, folder):
    from kto_plugin.errors import KTOPluginError
    from kto_plugin.evaluation.trained_run import NoTrainedModelError, TrainedRun

    with pytest.raises(NoTrainedModelError) as caught:
        TrainedRun.find(str(tiny_model), runs / folder)
    assert isinstance(caught.value, KTOPluginError) and isinstance(caught.value, FileNotFoundError)
    assert str(runs / folder) in str(caught.value) and "axolotl train" in str(caught.value)


def test_from_config_takes_a_relative_output_dir_from_the_config_folder(runs, tiny_model, monkeypatch, tmp_path):
    from kto_plugin.errors import ConfigError
    from kto_plugin.evaluation.trained_run import TrainedRun

    monkeypatch.chdir(tmp_path)
    run = TrainedRun.from_config({"base_model": str(tiny_model), "output_dir": "adapter"}, config_dir=runs)
    assert run.output_dir == runs / "adapter"
    with pytest.raises(ConfigError, match="base_model"):
        TrainedRun.from_config({"output_dir": str(runs / "adapter")})


def test_the_pair_switches_the_adapter_off_for_the_base_model(runs, tiny_model):
    import torch

    from kto_plugin.evaluation.trained_run import TrainedRun

    pair = TrainedRun.find(str(tiny_model), runs / "adapter").load_pair()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        tuned = pair.tuned(input_ids=ids).logits
        with pair.base() as base:
            base_logits = base(input_ids=ids).logits
        plain = TrainedRun.find(str(tiny_model), runs / "full").load_base()(input_ids=ids).logits
    assert torch.allclose(base_logits, plain, atol=1e-5) and not torch.allclose(tuned, plain, atol=1e-3)


def test_generation_is_seeded_once_per_call_and_leaves_the_callers_generator_alone(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kto_plugin.evaluation.generation import GenerationSettings, generate_answers, user_prompts

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)
    prompts = user_prompts(tokenizer, ["Where is my parcel?", "你好"])
    settings = GenerationSettings(max_new_tokens=8, min_new_tokens=8, temperature=1.0, seed=5, answers_per_prompt=3)
    torch.manual_seed(123)
    first = generate_answers(model, tokenizer, prompts, settings)
    after_first = torch.rand(1)
    torch.manual_seed(999)
    torch.rand(7)  # whatever ran before does not change the answers
    second = generate_answers(model, tokenizer, prompts, settings)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after_first)  # the call did not move the caller's generator
    assert first == second and len(first) == 6 and len(set(first)) > 1
    greedy = generate_answers(model, tokenizer, prompts[:1], GenerationSettings(max_new_tokens=8, answers_per_prompt=2))
    assert greedy[0] == greedy[1]
