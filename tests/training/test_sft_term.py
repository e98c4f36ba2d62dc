"""`kto_sft_weight`: the per-token NLL term on desirable completions (or, with `kto_sft_gce_q`, the generalized
cross-entropy per token), against a plain implementation.

The plain side runs the model on each row alone (no padding, no packing, no chunks) and sums
log-softmax over the row's completion tokens in float64; the trainer side runs the plugin's
paths (padded or packed, full logits or chunked).
"""

from __future__ import annotations

import pytest
import torch
from helpers import bare_trainer, kto_batch, moved_from_reference, tiny_qwen

from kto_plugin.training.displacement import DISPLACEMENT_NATS_PER_TOKEN, FALLEN_SHARE, NLL_CHOSEN, REFERENCE_NLL_CHOSEN
from kto_plugin.training.loss import SFT_GCE_SHARE, KTOLossOutput, kto_loss

DESIRABLE_WEIGHT, UNDESIRABLE_WEIGHT = 1.7, 0.6


def plain_token_loss(logps: torch.Tensor, gce_q: float) -> torch.Tensor:
    """-log p, or (1 - p^q) / q written from p itself."""
    return -logps if not gce_q else (1 - logps.exp() ** gce_q) / gce_q


def plain_nll_per_token(model, batch, gce_q: float = 0.0) -> list[float]:
    """-log p(completion | prompt) / completion tokens for each row (or the mean GCE), the row run alone."""
    values = []
    for row in range(batch["input_ids"].shape[0]):
        real = batch["attention_mask"][row].bool()
        ids, completion = batch["input_ids"][row][real], batch["completion_mask"][row][real]
        with torch.no_grad():
            logits = model(input_ids=ids[None]).logits[0].double()
        per_token = torch.log_softmax(logits[:-1], -1).gather(-1, ids[1:, None])[:, 0]
        targets = completion[1:].bool()
        values.append(float(plain_token_loss(per_token[targets], gce_q).sum() / max(int(targets.sum()), 1)))
    return values


def weighted_trainer(model, sft_weight: float, gce_q: float = 0.0, max_reference_nll: float | None = None, **paths):
    """The reference is a frozen copy of `model` as it is now; the GCE (with `gce_q`) on every row unless
    `max_reference_nll` is given (a random model's rows sit at about log(vocabulary) nats per token)."""
    return bare_trainer(model, sft_weight=sft_weight, sft_gce_q=gce_q, sft_gce_max_reference_nll=max_reference_nll,
                        desirable_weight=DESIRABLE_WEIGHT, undesirable_weight=UNDESIRABLE_WEIGHT, **paths)


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
@pytest.mark.parametrize("gce_q", [0.0, 0.5, 1.0], ids=["nll", "gce 0.5", "gce 1"])
def test_term_adds_the_plain_per_token_nll_of_desirable_rows(lengths, chunked, packed, gce_q):
    model = tiny_qwen(tied=False)
    model.train()
    batch = kto_batch(lengths, seed=len(lengths) + 3)
    paths = {"chunked_logps": chunked, "padding_free": packed}
    weight = 0.7
    trainers = {sft_weight: weighted_trainer(model, sft_weight, gce_q, **paths) for sft_weight in (0.0, weight)}
    reference = trainers[weight].ref_model
    moved_from_reference(model)
    without, grads_without, _ = loss_of(trainers[0.0], model, batch)
    with_term, grads_with, metrics = loss_of(trainers[weight], model, batch)
    assert metrics[NLL_CHOSEN] != metrics[REFERENCE_NLL_CHOSEN]

    term_values = plain_nll_per_token(model, batch, gce_q)
    desirable = batch["label"]
    expected_term = sum(DESIRABLE_WEIGHT * weight * value for value, keep in zip(term_values, desirable) if keep) / len(
        term_values)
    assert float(with_term - without) == pytest.approx(expected_term, rel=1e-4, abs=1e-5)
    nll = plain_nll_per_token(model, batch)  # logged as the NLL whatever the term's loss
    chosen = [value for value, keep in zip(nll, desirable) if keep]
    assert metrics[NLL_CHOSEN] == pytest.approx([sum(chosen) / len(chosen)], rel=1e-4)
    reference_nll = [value for value, keep in zip(plain_nll_per_token(reference, batch), desirable) if keep]
    assert metrics[REFERENCE_NLL_CHOSEN] == pytest.approx([sum(reference_nll) / len(reference_nll)], rel=1e-4)
    fallen = [policy - ref > DISPLACEMENT_NATS_PER_TOKEN for policy, ref in zip(chosen, reference_nll)]
    assert metrics[FALLEN_SHARE] == pytest.approx([sum(fallen) / len(fallen)])

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
        term = term + DESIRABLE_WEIGHT * weight * plain_token_loss(per_token[targets], gce_q).sum().double() / max(
            int(targets.sum()), 1)
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


def test_the_generalized_cross_entropy_scales_each_tokens_nll_gradient_by_p_to_the_q():
    """(1 - p^q) / q: its gradient in log p is -p^q (the NLL's, -1, times p^q), so unlikely tokens pull less; q -> 0
    is the NLL, q = 1 is 1 - p."""
    from kto_plugin.training.loss import sft_token_losses

    logps = torch.tensor([-0.01, -0.7, -3.0, -12.0], dtype=torch.float64, requires_grad=True)
    for q in (0.25, 0.5, 1.0):
        logps.grad = None
        sft_token_losses(logps, q).sum().backward()
        torch.testing.assert_close(logps.grad, -logps.detach().exp() ** q)
    torch.testing.assert_close(sft_token_losses(logps, 1.0), 1 - logps.exp())
    torch.testing.assert_close(sft_token_losses(logps, 1e-7), -logps, atol=1e-5, rtol=1e-5)
    assert torch.equal(sft_token_losses(logps, 0.0), -logps)
    # the most unlikely token gets the smallest pull under the GCE, the largest share of the NLL's loss
    tokens = sft_token_losses(logps.detach(), 0.5)
    assert tokens.argmax() == 3 and tokens[3] < 2.0  # bounded by 1/q, where the NLL gives 12


def test_the_gce_term_is_exact_over_micro_batches():
    model = tiny_qwen(tied=True)
    model.train()
    moved_from_reference(model)
    batch = kto_batch([6, 9, 4, 12], seed=22)
    settings = {"chunked_logps": True, "calculate_KL": False}
    whole = float(loss_of(weighted_trainer(model, 1.0, 0.5, **settings), model, batch)[0])
    for size in (1, 2):
        parts = [{key: value[start:start + size] for key, value in batch.items()} for start in range(0, 4, size)]
        losses = [float(loss_of(weighted_trainer(model, 1.0, 0.5, **settings), model, part)[0]) for part in parts]
        assert sum(losses) / len(losses) == pytest.approx(whole, rel=1e-5)


def test_the_share_of_accepted_answers_that_fell_counts_desirable_rows_only():
    """`nll_fallen/chosen`: the accepted rows whose NLL per token is more than the guard's threshold above the
    reference's, over the accepted rows (the guard's majority test reads it)."""
    trainer = bare_trainer(tiny_qwen(tied=True))
    desirable = torch.tensor([True, True, True, False, True])
    reference_nll = torch.full((5,), 1.0)
    nll = reference_nll + torch.tensor([0.5, 0.05, DISPLACEMENT_NATS_PER_TOKEN + 0.01, 3.0, -0.2])
    result = KTOLossOutput(losses=torch.zeros(5), rewards=torch.zeros(5), nll=nll)
    trainer._record_metrics("train", desirable, result, torch.zeros(5), 0.0, 0.0, reference_nll)
    assert trainer._metrics["train"][FALLEN_SHARE] == [pytest.approx(2 / 4)]  # the undesirable row's 3.0 not counted
    assert SFT_GCE_SHARE not in trainer._metrics["train"]  # no GCE, no share of it


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_the_gce_goes_to_the_rows_the_reference_finds_likely_and_the_nll_to_the_rest(packed):
    """`kto_sft_gce_max_reference_nll` m: a desirable row whose reference NLL per token is at most m gets the GCE,
    the others the NLL; per row, against the plain term of each kind, values, gradients and the logged share."""
    model = tiny_qwen(tied=False)
    model.train()
    batch = kto_batch([5, 11, 3, 9, 14, 7], seed=31)
    desirable = batch["label"]
    reference_nll = plain_nll_per_token(model, batch)  # the reference is `model` as it is now
    accepted = sorted(value for value, keep in zip(reference_nll, desirable) if keep)
    assert len(accepted) >= 3
    cap = (accepted[0] + accepted[1]) / 2  # the GCE for the likeliest accepted row only
    on_gce = [keep and value <= cap for value, keep in zip(reference_nll, desirable)]
    paths = {"chunked_logps": True, "padding_free": packed}
    trainers = {name: weighted_trainer(model, 0.7, 0.5, max_reference_nll=cap_, **paths)
                for name, cap_ in (("gated", cap), ("all gce", None))}
    plain_nll = weighted_trainer(model, 0.7, 0.0, **paths)
    moved_from_reference(model)
    gated, grads_gated, metrics = loss_of(trainers["gated"], model, batch)
    all_gce, _, _ = loss_of(trainers["all gce"], model, batch)
    all_nll, grads_nll, _ = loss_of(plain_nll, model, batch)
    nll, gce = plain_nll_per_token(model, batch), plain_nll_per_token(model, batch, 0.5)
    # the three losses differ only in the desirable rows' SFT terms: the gated one takes each row's own kind
    expected = float(all_nll) + sum(DESIRABLE_WEIGHT * 0.7 * (g - n) for g, n, gce_row in zip(gce, nll, on_gce)
                                    if gce_row) / len(nll)
    assert float(gated) == pytest.approx(expected, rel=1e-5)
    assert float(gated) != pytest.approx(float(all_gce)) and float(gated) != pytest.approx(float(all_nll))
    assert metrics[SFT_GCE_SHARE] == [pytest.approx(1 / len(accepted))]
    # gradients: the gated term is the NLL's everywhere but the GCE row, which carries the GCE's difference
    gce_row = on_gce.index(True)
    only_that_row = {key: value[gce_row:gce_row + 1] for key, value in batch.items()}
    _, grads_row_gce, _ = loss_of(weighted_trainer(model, 0.7, 0.5, **paths), model, only_that_row)
    _, grads_row_nll, _ = loss_of(weighted_trainer(model, 0.7, 0.0, **paths), model, only_that_row)
    for name, grad in grads_gated.items():
        expected_grad = grads_nll[name] + (grads_row_gce[name] - grads_row_nll[name]) / len(nll)
        torch.testing.assert_close(grad, expected_grad, atol=1e-6, rtol=1e-4)
