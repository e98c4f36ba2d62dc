"""The chunked log-prob path equals the plain full-logits path: values and gradients, odd shapes, LoRA and full, runs."""

from __future__ import annotations

import pytest
import torch
from helpers import (
    bare_trainer,
    base_config,
    moved_from_reference,
    read_metrics_file,
    tiny_qwen,
    train_with_axolotl,
    with_lora,
)

from kto_plugin.training.chunked_logps import (
    CPU_CHUNK_BYTES,
    GPU_CHUNK_BYTES,
    chunk_tokens_for,
    chunkable_output_layer,
    chunked_completion_logps,
    completion_logps_from_hidden,
)
from kto_plugin.training.trainer import completion_logps


def random_batch(rows: int, length: int, vocab: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, vocab, (rows, length), generator=generator)
    completion_mask = torch.zeros_like(input_ids)
    for row in range(rows):  # prompts of different lengths; some rows end in padding
        start = int(torch.randint(1, length, (1,), generator=generator))
        stop = int(torch.randint(start, length + 1, (1,), generator=generator))
        completion_mask[row, start:stop] = 1
    return input_ids, completion_mask


@pytest.mark.parametrize("rows,length,chunk", [(1, 5, 1), (3, 11, 4), (17, 23, 7), (3, 11, 1000)])
@pytest.mark.parametrize("bias", [False, True])
def test_values_and_gradients_match_full_logits(rows, length, chunk, bias):
    torch.manual_seed(rows * 100 + length)
    hidden_size, vocab = 8, 53
    head = torch.nn.Linear(hidden_size, vocab, bias=bias)
    hidden = torch.randn(rows, length, hidden_size, requires_grad=True)
    input_ids, completion_mask = random_batch(rows, length, vocab, seed=rows)
    weights = torch.randn(rows)

    plain = completion_logps(head(hidden), input_ids, completion_mask)
    (plain * weights).sum().backward()
    expected = [hidden.grad.clone(), head.weight.grad.clone()] + ([head.bias.grad.clone()] if bias else [])
    hidden.grad = None
    head.zero_grad()

    chunked = completion_logps_from_hidden(hidden, head, input_ids, completion_mask, chunk_tokens=chunk)
    (chunked * weights).sum().backward()
    got = [hidden.grad, head.weight.grad] + ([head.bias.grad] if bias else [])
    torch.testing.assert_close(chunked, plain, atol=1e-4, rtol=1e-4)
    for mine, theirs in zip(got, expected):
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rows,length,chunk", [(1, 5, 1), (3, 11, 4), (17, 23, 7), (3, 11, 1000)])
@pytest.mark.parametrize("bias,dtype", [(False, torch.float32), (True, torch.float32), (False, torch.bfloat16)])
def test_a_frozen_head_gets_the_hidden_gradient_in_the_forward_and_no_logits_in_the_backward(
        rows, length, chunk, bias, dtype, monkeypatch):
    """LoRA's case: only the hidden states train. Their gradient W[y] - p W is formed in the forward; the backward
    scales it and computes no logits, and it equals the full-logits gradient (bf16: within bf16's rounding)."""
    from kto_plugin.training import chunked_logps

    torch.manual_seed(rows * 10 + length)
    hidden_size, vocab = 8, 53
    head = torch.nn.Linear(hidden_size, vocab, bias=bias).to(dtype).requires_grad_(False)
    hidden = torch.randn(rows, length, hidden_size, dtype=dtype, requires_grad=True)
    input_ids, completion_mask = random_batch(rows, length, vocab, seed=rows)
    weights = torch.randn(rows)

    plain = completion_logps(head(hidden).float(), input_ids, completion_mask)
    (plain * weights).sum().backward()
    expected = hidden.grad.clone()
    hidden.grad = None

    calls = {"forward": 0}
    real_chunk_logits = chunked_logps._chunk_logits

    def counted(*args):
        calls["forward"] += 1
        return real_chunk_logits(*args)

    monkeypatch.setattr(chunked_logps, "_chunk_logits", counted)
    chunked = completion_logps_from_hidden(hidden, head, input_ids, completion_mask, chunk_tokens=chunk)
    in_forward = calls["forward"]
    (chunked * weights).sum().backward()
    assert calls["forward"] == in_forward > 0  # the backward recomputed no logits
    tolerance = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(chunked, plain, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(hidden.grad.float(), expected.float(), atol=tolerance, rtol=tolerance)
    assert hidden.grad.dtype == dtype


def test_chunks_are_sized_for_the_device_the_output_layer_is_on():
    """64 MiB of fp32 logits per chunk on a CPU (more cost RSS and gained nothing); 1 GiB on a GPU, where 64 MiB chunks
    (110 tokens of a 152k vocabulary) left the matrix units idle: 0.92 s per step against 0.78 s on an H200."""
    vocab = 151_936
    assert chunk_tokens_for(vocab) == chunk_tokens_for(vocab, torch.device("cpu")) == CPU_CHUNK_BYTES // (4 * vocab) == 110
    assert chunk_tokens_for(vocab, torch.device("cuda", 1)) == GPU_CHUNK_BYTES // (4 * vocab) == 1766
    assert chunk_tokens_for(vocab, torch.device("cuda"), chunk_bytes=1) == 1  # at least one token


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("lora", [False, True])
def test_kto_loss_rewards_kl_and_gradients_match_the_plain_path(tied, lora):
    model = tiny_qwen(tied)
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "up_proj"], lora_dropout=0.0))
    model.train()
    input_ids, completion_mask = random_batch(3, 13, 97, seed=5)
    kl_ids, kl_mask = random_batch(3, 13, 97, seed=6)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "completion_mask": completion_mask,
             "KL_input_ids": kl_ids, "KL_attention_mask": torch.ones_like(kl_ids), "KL_completion_mask": kl_mask,
             "label": [True, False, True]}
    trainers = {chunked: bare_trainer(model, lora_reference=lora, chunked_logps=chunked) for chunked in (False, True)}
    moved_from_reference(model)
    results = {}
    for chunked, trainer in trainers.items():
        model.zero_grad()
        loss = trainer._compute_loss(model, batch)
        loss.backward()
        grads = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
        results[chunked] = loss.detach(), dict(trainer._metrics["train"]), grads
    (plain_loss, plain_metrics, plain_grads), (fast_loss, fast_metrics, fast_grads) = results[False], results[True]
    torch.testing.assert_close(fast_loss, plain_loss, atol=1e-4, rtol=1e-4)
    for key in ("kl", "kl_raw", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"):
        assert fast_metrics[key] == pytest.approx(plain_metrics[key], abs=1e-4), key
    assert plain_metrics["kl_raw"] != [0.0]  # the KL pairs were really evaluated
    assert fast_grads.keys() == plain_grads.keys() and fast_grads
    for name in plain_grads:
        torch.testing.assert_close(fast_grads[name], plain_grads[name], atol=1e-4, rtol=1e-4)


def test_paths_that_cannot_chunk_fall_back():
    from peft import LoraConfig, get_peft_model

    model = tiny_qwen(tied=False)
    assert chunkable_output_layer(model) is model.lm_head
    with_head_lora = get_peft_model(tiny_qwen(tied=False), LoraConfig(r=2, target_modules=["lm_head", "q_proj"]))
    assert chunkable_output_layer(with_head_lora) is None  # a LoRA on the output layer: the plain path


def plain_and_trainer_logps(model, seed: int = 3):
    """(the full-logits log-probs, the trainer's log-probs with `kto_chunked_logps` on) of one random batch."""
    input_ids, completion_mask = random_batch(2, 9, model.config.vocab_size, seed=seed)
    expected = completion_logps(model(input_ids=input_ids).logits.float(), input_ids, completion_mask)
    trainer = bare_trainer(model, lora_reference=False, chunked_logps=True)
    logps, _ = trainer._sequence_logps(model, {"input_ids": input_ids}, {"input_ids": input_ids,
                                                                         "completion_mask": completion_mask})
    return expected, logps


def tiny_gemma2():
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    model = Gemma2ForCausalLM(Gemma2Config(vocab_size=97, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                                           tie_word_embeddings=False, final_logit_softcapping=1.0))
    with torch.no_grad():
        model.lm_head.weight.mul_(100)  # logits of a few units, where a cap of 1 bites
    return model


def test_a_model_that_soft_caps_its_logits_takes_the_plain_path():
    """Gemma 2's soft cap (tanh(logits / c) * c after the output layer) was not applied by the chunked path: its
    log-probs were those of the uncapped logits, silently. Models with a known logit transform take the plain path."""
    model = tiny_gemma2()
    input_ids, completion_mask = random_batch(2, 9, 97, seed=3)
    with torch.no_grad():
        hidden = model.model(input_ids=input_ids).last_hidden_state
        uncapped = completion_logps_from_hidden(hidden, model.lm_head, input_ids, completion_mask)
    assert chunkable_output_layer(model) is None
    expected, logps = plain_and_trainer_logps(model)
    torch.testing.assert_close(logps, expected)
    assert (uncapped - expected).abs().max() > 1  # what the chunked path used to return


class ScaledAfterTheHead(torch.nn.Module):
    """A causal LM that scales its logits after the output layer under no config key the plugin knows."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def get_output_embeddings(self):
        return self.inner.lm_head

    def forward(self, **kwargs):
        outputs = self.inner(**kwargs)
        outputs["logits"] = outputs.logits * 3
        return outputs


def test_a_model_that_changes_its_logits_unannounced_is_refused_with_the_key_to_set():
    model = ScaledAfterTheHead(tiny_qwen(tied=False))
    input_ids, completion_mask = random_batch(2, 9, 97, seed=3)
    with pytest.raises(RuntimeError, match="kto_chunked_logps: false"):
        chunked_completion_logps(model, {"input_ids": input_ids}, input_ids, completion_mask, model.inner.lm_head)


class CastsItsOutputs(ScaledAfterTheHead):
    """Casts the returned logits to bf16, as FSDP2's mixed precision (`output_dtype`, which accelerate sets) does."""

    def forward(self, **kwargs):
        outputs = self.inner(**kwargs)
        outputs["logits"] = outputs.logits.to(torch.bfloat16)
        return outputs


def test_a_cast_of_the_returned_values_keeps_their_fp32_values_and_the_gradient_path():
    """Per-row sums of hundreds of log-probs lose whole nats in bf16: the fp32 values are kept, and the gradient
    still flows through the returned tensor (whose graph holds FSDP2's hook that gathers the weight again)."""
    inner = tiny_qwen(tied=False)
    input_ids, completion_mask = random_batch(3, 13, 97, seed=7)
    expected = completion_logps(inner(input_ids=input_ids).logits, input_ids, completion_mask)
    expected.sum().backward()
    expected_grads = {name: p.grad.clone() for name, p in inner.named_parameters()}
    inner.zero_grad()
    logps, _ = chunked_completion_logps(CastsItsOutputs(inner), {"input_ids": input_ids}, input_ids, completion_mask,
                                        inner.lm_head)
    assert logps.dtype == torch.float32
    torch.testing.assert_close(logps, expected)
    assert not torch.equal(logps, logps.to(torch.bfloat16).float())  # the bf16 values would have differed
    logps.sum().backward()
    for name, parameter in inner.named_parameters():
        torch.testing.assert_close(parameter.grad, expected_grads[name], atol=1e-5, rtol=1e-5)


def test_a_transform_before_the_head_is_included():
    """Inkling divides the hidden states before its output layer: the path runs inside the head's own call, so the
    head sees what the model gives it (a hook on the body's output would miss the divisor)."""
    from transformers import Qwen2ForCausalLM
    from transformers.modeling_outputs import CausalLMOutputWithPast

    class DividedBeforeTheHead(Qwen2ForCausalLM):
        def forward(self, input_ids=None, **kwargs):
            hidden = self.model(input_ids=input_ids, **kwargs).last_hidden_state
            return CausalLMOutputWithPast(logits=self.lm_head(hidden / 4))

    torch.manual_seed(0)
    model = DividedBeforeTheHead(tiny_qwen(tied=False).config)
    expected, logps = plain_and_trainer_logps(model)
    torch.testing.assert_close(logps, expected)


def test_chunked_forward_never_builds_the_full_logits():
    model = tiny_qwen(tied=True)
    input_ids, completion_mask = random_batch(2, 9, 97, seed=1)
    logps, outputs = chunked_completion_logps(model, {"input_ids": input_ids}, input_ids, completion_mask,
                                              chunkable_output_layer(model))
    assert outputs.logits is None and logps.shape == (2,)
    expected = completion_logps(model(input_ids=input_ids).logits, input_ids, completion_mask)
    torch.testing.assert_close(logps, expected)
    assert "forward" not in model.lm_head.__dict__  # the head's own forward is back


def test_training_runs_match_with_and_without_chunking_and_packing(axolotl, tmp_path, tiny_model):
    """A real run with chunked log-probs and padding-free micro-batches against the plain path."""
    runs = {}
    for chunked in (True, False):
        config = with_lora(base_config(
            tmp_path / str(chunked), [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
            max_steps=3, kto_chunked_logps=chunked, kto_padding_free=chunked,
        ))
        (tmp_path / str(chunked)).mkdir()
        result = train_with_axolotl(tmp_path / str(chunked), "run", config)
        assert ("output layer on completion tokens only" in result.stdout + result.stderr) is chunked
        assert ("padding-free micro-batches (kto_padding_free)" in result.stdout + result.stderr) is chunked
        runs[chunked] = [r for r in read_metrics_file(tmp_path / str(chunked) / "out") if "loss" in r and "train_loss" not in r]
    assert len(runs[True]) == len(runs[False]) == 3
    for fast, plain in zip(runs[True], runs[False]):
        compared = [key for key in ("loss", "kl", "kl_raw", "rewards/chosen", "rewards/rejected") if key in plain]
        assert [key for key in compared if key in fast] == compared and "loss" in compared
        for key in compared:  # (a micro-batch of 2 may hold one class only: its other reward is not logged)
            assert fast[key] == pytest.approx(plain[key], abs=1e-4), (key, fast, plain)


def test_an_offloaded_output_layer_is_applied_in_chunks_with_its_loaded_weight():
    """accelerate's offload hooks keep lm_head's weight on `meta` outside its forward: read directly it gave
    uniform logits (-48.04 for every row), silently. The path runs inside the head's call, where the hook loads it."""
    from accelerate import cpu_offload

    model = tiny_qwen(tied=False)
    input_ids, completion_mask = random_batch(2, 9, 97, seed=3)
    expected = completion_logps(model(input_ids=input_ids).logits, input_ids, completion_mask)
    expected.sum().backward()
    expected_grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    cpu_offload(model.lm_head, execution_device=torch.device("cpu"))
    assert model.lm_head.weight.device.type == "meta"
    assert chunkable_output_layer(model) is model.lm_head
    trainer = bare_trainer(model, lora_reference=False, chunked_logps=True)
    logps, _ = trainer._sequence_logps(model, {"input_ids": input_ids}, {"input_ids": input_ids,
                                                                         "completion_mask": completion_mask})
    torch.testing.assert_close(logps, expected)
    logps.sum().backward()
    body_grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert body_grads and body_grads.keys() <= expected_grads.keys()
    for name, grad in body_grads.items():
        torch.testing.assert_close(grad, expected_grads[name], atol=1e-5, rtol=1e-5)


def test_an_fp32_final_norm_before_a_bf16_head_runs_forward_and_backward_as_autocast_would():
    """Axolotl's `fp32_norms`: fp32 hidden states into a bf16 output layer failed in the backward (mixed dtypes)."""
    torch.manual_seed(4)
    head = torch.nn.Linear(8, 53, bias=False).to(torch.bfloat16)
    hidden = torch.randn(3, 11, 8, requires_grad=True)
    input_ids, completion_mask = random_batch(3, 11, 53, seed=4)
    plain = completion_logps(head(hidden.to(torch.bfloat16)).float(), input_ids, completion_mask)
    plain.sum().backward()
    expected = hidden.grad.clone()
    hidden.grad = None
    chunked = completion_logps_from_hidden(hidden, head, input_ids, completion_mask, chunk_tokens=5)
    chunked.sum().backward()
    assert hidden.grad.dtype == torch.float32
    torch.testing.assert_close(chunked, plain, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(hidden.grad, expected, atol=2e-2, rtol=2e-2)
