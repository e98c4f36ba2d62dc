"""A Mixture-of-Experts model's router load-balancing loss is part of the plugin's KTO loss, as TRL adds it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import bare_trainer, base_config, read_metrics_file, train_with_axolotl, with_lora


def build_tiny_mixtral(tiny_model: Path, output_dir: Path) -> Path:
    """A 2-expert Mixtral with the embedded model's tokenizer, seeded."""
    from transformers import AutoTokenizer, MixtralConfig, MixtralForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = MixtralConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=2, num_experts_per_tok=1,
        router_aux_loss_coef=0.5, max_position_embeddings=512, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    MixtralForCausalLM(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


@pytest.fixture(scope="module")
def tiny_mixtral(tmp_path_factory, tiny_model) -> Path:
    return build_tiny_mixtral(tiny_model, tmp_path_factory.mktemp("mixtral"))


def test_router_loss_is_added_with_its_coefficient(tiny_mixtral):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_mixtral).train()
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(5, model.config.vocab_size, (4, 12), generator=generator)
    completion_mask = torch.zeros_like(ids)
    completion_mask[:, 6:] = 1
    batch = {
        "input_ids": ids, "attention_mask": torch.ones_like(ids), "completion_mask": completion_mask,
        "KL_input_ids": ids.roll(1, dims=0), "KL_attention_mask": torch.ones_like(ids),
        "KL_completion_mask": completion_mask, "label": [True, False, True, False],
    }
    with_router = bare_trainer(model, aux_loss_enabled=True, router_aux_loss_coef=0.5)
    without = bare_trainer(model, aux_loss_enabled=False, router_aux_loss_coef=0.5)
    torch.manual_seed(0)
    total = with_router._compute_loss(model, batch)
    torch.manual_seed(0)
    kto_only = without._compute_loss(model, batch)
    aux = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_router_logits=True).aux_loss
    assert aux > 0
    assert torch.allclose(total - kto_only, 0.5 * aux, atol=1e-6)
    assert with_router._metrics["train"]["aux_loss"] == [pytest.approx(aux.item(), abs=1e-6)]
    assert "aux_loss" not in without._metrics["train"]
    total.backward()  # the router gets a gradient from the balancing loss
    assert any(param.grad is not None and param.grad.abs().sum() > 0
               for name, param in model.named_parameters() if "gate" in name and "experts" not in name)


@pytest.mark.stack("py311")  # slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
def test_axolotl_train_on_a_moe_model_logs_the_router_loss(axolotl, tmp_path, tiny_mixtral):
    config = with_lora(base_config(
        tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
        base_model=str(tiny_mixtral), max_steps=2,
    ))
    train_with_axolotl(tmp_path, "moe", config)
    steps = [record for record in read_metrics_file(tmp_path / "out") if "loss" in record and "train_loss" not in record]
    assert len(steps) == 2
    assert all(record.get("aux_loss", 0) > 0 for record in steps), steps
