"""`kto_sft_weight`: the per-token NLL term on desirable completions, against a plain implementation.

The plain side runs the model on each row alone (no padding, no packing, no chunks) and sums
log-softmax over the row's completion tokens in float64; the trainer side runs the plugin's
paths (padded or packed, full logits or chunked).
"""

from __future__ import annotations

import pytest
import torch
from helpers import bare_trainer, kto_batch, moved_from_reference, tiny_qwen

from kto_plugin.training.displacement import NLL_CHOSEN, REFERENCE_NLL_CHOSEN
from kto_plugin.training.loss import kto_loss

DESIRABLE_WEIGHT, UNDESIRABLE_WEIGHT = 1.7, 0.6


def plain_nll_per_token(model, batch) -> list[float]:
    """-log p(completion | prompt) / completion tokens for each row, the row run alone."""
    values = []
    for row in range(batch["input_ids"].shape[0]):
        real = batch["attention_mask"][row].bool()
        ids, completion = batch["input_ids"][row][real], batch["completion_mask"][row][real]
        with torch.no_grad():
            logits = model(input_ids=ids[None]).logits[0].double()
        per_token = torch.log_softmax(logits[:-1], -1).gather(-1, ids[1:, None])[:, 0]
        targets = completion[1:].bool()
        values.append(float(-per_token[targets].sum() / max(int(targets.sum()), 1)))
    return values


def weighted_trainer(model, sft_weight: float, **paths):
    """The reference is a frozen copy of `model` as it is now."""
    return bare_trainer(model, sft_weight=sft_weight, desirable_weight=DESIRABLE_WEIGHT,
                        undesirable_weight=UNDESIRABLE_WEIGHT, **paths)


def trainer_loss(model, batch, sft_weight: float, **paths):
    return loss_of(weighted_trainer(model, sft_weight, **paths), model, batch)


def loss_of(trainer, model, batch):
    trainer._metrics["train"].clear()
    model.zero_grad()
    loss = trainer._compute_loss(model, batch)
    loss.backward()
    grads = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
    return loss.detach(), grads, dict(trainer._metrics["train"])


@pytest.mark.parametrize("lengths", [[7], [5, 11, 3], [9, 2, 25, 14, 3, 30, 7, 7, 18, 2, 11, 29, 5]],
                         ids=["1 row", "3 rows", "13 rows"])
@pytest.mark.parametrize("chunked,packed", [(False, False), (True, False), (True, True), (False, True)])
def test_term_adds_the_plain_per_token_nll_of_desirable_rows(lengths, chunked, packed):
    model = tiny_qwen(tied=False)
    model.train()
    batch = kto_batch(lengths, seed=len(lengths) + 3)
    paths = {"chunked_logps": chunked, "padding_free": packed}
    weight = 0.7
    trainers = {sft_weight: weighted_trainer(model, sft_weight, **paths) for sft_weight in (0.0, weight)}
    reference = trainers[weight].ref_model
    moved_from_reference(model)
    without, grads_without, _ = loss_of(trainers[0.0], model, batch)
    with_term, grads_with, metrics = loss_of(trainers[weight], model, batch)
    assert metrics[NLL_CHOSEN] != metrics[REFERENCE_NLL_CHOSEN]

    nll = plain_nll_per_token(model, batch)
    desirable = batch["label"]
    expected_term = sum(DESIRABLE_WEIGHT * weight * value for value, keep in zip(nll, desirable) if keep) / len(nll)
    assert float(with_term - without) == pytest.approx(expected_term, rel=1e-4, abs=1e-5)
    chosen = [value for value, keep in zip(nll, desirable) if keep]
    assert metrics[NLL_CHOSEN] == pytest.approx([sum(chosen) / len(chosen)], rel=1e-4)
    reference_nll = [value for value, keep in zip(plain_nll_per_token(reference, batch), desirable) if keep]
    assert metrics[REFERENCE_NLL_CHOSEN] == pytest.approx([sum(reference_nll) / len(reference_nll)], rel=1e-4)

    # The term's own gradient: d/dtheta of the plain term, taken through the model once more.
    model.zero_grad()
    term = torch.zeros((), dtype=torch.float64)
    for row, keep in enumerate(desirable):
        if not keep:
            continue
        real = batch["attention_mask"][row].bool()
        ids, completion = batch["input_ids"][row][real], batch["completion_mask"][row][real]
        logits = model(input_ids=ids[None]).logits[0]
        per_token = torch.log_softmax(logits[:-1].float(), -1).gather(-1, ids[1:, None])[:, 0]
        targets = completion[1:].bool()
        term = term + DESIRABLE_WEIGHT * weight * -per_token[targets].sum().double() / max(int(targets.sum()), 1)
    (term / len(desirable)).backward()
    for name, grad in grads_with.items():
        plain = model.get_parameter(name).grad
        torch.testing.assert_close(grad - grads_without[name], plain.to(grad.dtype), atol=1e-5, rtol=1e-4)


def test_term_is_exact_over_micro_batches():
    """Micro-batches of 1 and 2 rows (one class each, some) average to the whole batch's loss: the term's normaliser
    is each example's own length and the batch mean, not a count of desirable rows inside a micro-batch."""
    model = tiny_qwen(tied=True)
    model.train()
    moved_from_reference(model)
    batch = kto_batch([6, 9, 4, 12], seed=21)
    settings = {"chunked_logps": True, "calculate_KL": False}  # z0 = 0 in every micro-batch alike
    whole = float(trainer_loss(model, batch, 1.0, **settings)[0])
    without = float(trainer_loss(model, batch, 0.0, **settings)[0])
    assert whole > without
    for size in (1, 2):
        parts = [{key: value[start:start + size] for key, value in batch.items()} for start in range(0, 4, size)]
        losses = [float(trainer_loss(model, part, 1.0, **settings)[0]) for part in parts]
        assert sum(losses) / len(losses) == pytest.approx(whole, rel=1e-5)


def test_kto_loss_refuses_the_term_without_lengths_and_keeps_undesirable_rows_untouched():
    policy, reference = torch.tensor([-12.0, -30.0]), torch.tensor([-11.0, -31.0])
    desirable = torch.tensor([True, False])
    with pytest.raises(ValueError, match="completion_tokens"):
        kto_loss(policy, reference, desirable, 0.0, 0.1, sft_weight=1.0)
    tokens = torch.tensor([4, 10])
    plain = kto_loss(policy, reference, desirable, 0.0, 0.1, completion_tokens=tokens)
    with_term = kto_loss(policy, reference, desirable, 0.0, 0.1, completion_tokens=tokens, sft_weight=2.0)
    assert float(with_term.losses[1]) == float(plain.losses[1])
    assert float(with_term.losses[0]) == pytest.approx(float(plain.losses[0]) + 2.0 * 12.0 / 4)
    assert with_term.nll.tolist() == pytest.approx([3.0, 3.0])
