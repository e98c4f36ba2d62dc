"""Padding-free micro-batches equal padded ones: loss, rewards, KL and gradients; the model check; `sample_packing`."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers import bare_trainer, base_config, kto_batch, load_config, moved_from_reference, padded_rows, tiny_qwen

from kto_plugin.training.padding_free import (
    MAX_PACKED_MASK_BYTES,
    model_keeps_packed_rows_apart,
    pack_if_possible,
    pack_rows,
)

@pytest.mark.parametrize("left", [False, True])
def test_pack_rows_keeps_real_tokens_with_positions_restarting(left):
    input_ids, attention_mask, completion_mask = padded_rows([3, 1, 4], seed=1, left=left)
    packed = pack_rows(input_ids, attention_mask, completion_mask)
    assert packed.position_ids.tolist() == [[0, 1, 2, 0, 0, 1, 2, 3]]
    assert packed.row_ids.tolist() == [[0, 0, 0, 1, 2, 2, 2, 2]]
    assert packed.input_ids[0].tolist() == input_ids[attention_mask.bool()].tolist()
    assert packed.rows == 3
    assert packed.completion_mask[0, [0, 3, 4]].tolist() == [0, 0, 0]  # no row's first token is a target


def test_batches_that_cannot_pack_stay_padded():
    input_ids, attention_mask, completion_mask = padded_rows([3, 2], seed=2)
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
    assert pack_if_possible(kwargs, completion_mask, "sdpa") is not None
    assert pack_if_possible({**kwargs, "token_type_ids": input_ids}, completion_mask, "sdpa") is None
    too_long = int(MAX_PACKED_MASK_BYTES**0.5) + 1
    long_rows = {"input_ids": torch.ones(1, too_long, dtype=torch.long),
                 "attention_mask": torch.ones(1, too_long, dtype=torch.long)}
    assert pack_if_possible(long_rows, long_rows["attention_mask"], "sdpa") is None
    assert pack_if_possible(long_rows, long_rows["attention_mask"], "flash_attention_2") is not None  # no mask


def loss_metrics_and_gradients(model, trainer, batch):
    model.zero_grad()
    loss = trainer._compute_loss(model, batch)
    loss.backward()
    grads = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
    return loss.detach(), dict(trainer._metrics["train"]), grads


@pytest.mark.parametrize("lengths", [[7], [5, 11, 3], [9, 2, 25, 14, 3, 30, 7, 7, 18, 2, 11, 29, 5, 16, 4, 21, 12]],
                         ids=["1 row", "3 rows", "17 rows"])
@pytest.mark.parametrize("tied,lora,chunked", [(True, False, True), (False, True, True), (False, False, False),
                                                (True, True, False)])
def test_loss_rewards_kl_and_gradients_match_padded_batches(lengths, tied, lora, chunked):
    model = tiny_qwen(tied)
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "up_proj"], lora_dropout=0.0))
    model.train()
    batch = kto_batch(lengths, seed=len(lengths))
    trainers = {packed: bare_trainer(model, lora_reference=lora, chunked_logps=chunked, padding_free=packed)
                for packed in (False, True)}
    moved_from_reference(model)
    padded = loss_metrics_and_gradients(model, trainers[False], batch)
    packed = loss_metrics_and_gradients(model, trainers[True], batch)
    assert trainers[True]._packing_checked is True
    torch.testing.assert_close(packed[0], padded[0], atol=1e-4, rtol=1e-4)
    for key in ("kl", "kl_raw", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"):
        if key in padded[1]:
            assert packed[1][key] == pytest.approx(padded[1][key], abs=1e-4), key
    assert padded[1]["kl_raw"] != [0.0]
    assert packed[2].keys() == padded[2].keys() and packed[2]
    for name in padded[2]:
        torch.testing.assert_close(packed[2][name], padded[2][name], atol=1e-4, rtol=1e-4)


def test_packed_forward_sees_fewer_positions_than_the_padded_one():
    model = tiny_qwen(tied=True)
    seen = []
    model.model.embed_tokens.register_forward_hook(lambda _module, inputs, _output: seen.append(inputs[0].numel()))
    batch = kto_batch([3, 20, 4], seed=3)
    for packed in (False, True):
        bare_trainer(model, chunked_logps=True, padding_free=packed)._sequence_logps(
            model, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}, batch)
    assert seen[0] == 3 * 20 and seen[-1] == 3 + 20 + 4


class PositionBlindModel(torch.nn.Module):
    """A causal LM that drops position ids: packed rows would attend to each other."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids, attention_mask=None, position_ids=None, **kwargs):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_model_check_tells_which_models_keep_packed_rows_apart(attention):
    model = tiny_qwen(tied=True, attention=attention).train()
    assert model_keeps_packed_rows_apart(model) is True
    assert model.training  # the check's eval mode is undone
    assert model_keeps_packed_rows_apart(PositionBlindModel(model)) is False


def test_auto_pads_on_sdpa_and_packs_only_after_the_check(caplog, monkeypatch):
    from kto_plugin.training import trainer as trainer_module

    batch = kto_batch([3, 5], seed=4)
    kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    model = tiny_qwen(tied=True)
    on_sdpa = bare_trainer(model, padding_free="auto")
    with caplog.at_level(logging.INFO):
        on_sdpa._sequence_logps(model, kwargs, batch)
    assert on_sdpa._packing_checked is False  # the block mask measured slower than padding
    assert "micro-batches padded (kto_padding_free: auto with sdpa attention)" in caplog.text

    # with flash-attention `auto` packs, but only a model that passes the check
    monkeypatch.setattr(trainer_module, "attention_implementation", lambda _model: "flash_attention_2")
    packing = bare_trainer(model, padding_free="auto")
    packing._sequence_logps(model, kwargs, batch)
    assert packing._packing_checked is True
    blind = PositionBlindModel(tiny_qwen(tied=True))
    refused = bare_trainer(blind, padding_free="auto")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        refused._sequence_logps(blind, kwargs, batch)
    assert refused._packing_checked is False
    assert "does not keep packed rows apart" in caplog.text


def test_true_refuses_a_model_that_mixes_packed_rows():
    model = PositionBlindModel(tiny_qwen(tied=True))
    batch = kto_batch([3, 5], seed=4)
    kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with pytest.raises(ValueError, match="kto_padding_free: auto"):
        bare_trainer(model, padding_free=True)._sequence_logps(model, kwargs, batch)


def test_sample_packing_becomes_padding_free(tmp_path, tiny_model):
    datasets = [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}]
    cfg = load_config(tmp_path, base_config(tmp_path, datasets, sample_packing=True))
    assert cfg.kto_padding_free is True and not cfg.sample_packing
    assert load_config(tmp_path, base_config(tmp_path, datasets)).kto_padding_free == "auto"
    with pytest.raises(ValueError, match="`sample_packing: true` and `kto_padding_free: false`"):
        load_config(tmp_path, base_config(tmp_path, datasets, sample_packing=True, kto_padding_free=False))
