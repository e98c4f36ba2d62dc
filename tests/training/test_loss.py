"""The plugin's KTO loss against a plain reference written from the paper's formula."""

from __future__ import annotations

import math

import pytest
import torch

from kto_plugin.training.loss import kl_reference_point, kto_loss


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def reference_losses(policy, reference, desirable, kl, beta, weight_d, weight_u, loss_type):
    """Loop over examples, floats only: Ethayarajh et al. 2024 Eq. 7, and unpaired APO-zero."""
    losses, rewards = [], []
    for p, r, d in zip(policy, reference, desirable):
        ratio = p - r
        if loss_type == "kto":
            value = weight_d * (1 - sigmoid(beta * (ratio - kl))) if d else weight_u * (1 - sigmoid(beta * (kl - ratio)))
        else:
            value = weight_d * (1 - sigmoid(beta * ratio)) if d else weight_u * sigmoid(beta * ratio)
        losses.append(value)
        rewards.append(beta * ratio)
    return losses, rewards


def reference_kl(kl_policy, kl_reference):
    if not kl_policy:
        return 0.0, 0.0
    raw = sum(p - r for p, r in zip(kl_policy, kl_reference)) / len(kl_policy)
    return max(raw, 0.0), raw


@pytest.mark.parametrize("size", [1, 3, 47, 123])
@pytest.mark.parametrize("loss_type", ["kto", "apo_zero_unpaired"])
@pytest.mark.parametrize("beta,weight_d,weight_u", [(0.1, 1.0, 1.0), (0.5, 1.33, 0.75), (0.01, 3.0, 1.0)])
def test_matches_reference_on_random_batches(size, loss_type, beta, weight_d, weight_u):
    generator = torch.Generator().manual_seed(size * 7 + int(beta * 100))
    policy = torch.randn(size, generator=generator, dtype=torch.float64) * 30 - 100
    reference = policy + torch.randn(size, generator=generator, dtype=torch.float64) * 5
    desirable = torch.rand(size, generator=generator) > 0.4
    kl_policy = torch.randn(size, generator=generator, dtype=torch.float64) * 4
    kl_reference = torch.randn(size, generator=generator, dtype=torch.float64) * 4
    kl, raw = kl_reference_point((kl_policy - kl_reference).sum(), torch.tensor(float(size), dtype=torch.float64))
    expected_kl, expected_raw = reference_kl(kl_policy.tolist(), kl_reference.tolist())
    assert float(kl) == pytest.approx(expected_kl, abs=1e-9) and float(raw) == pytest.approx(expected_raw, abs=1e-9)

    out = kto_loss(policy, reference, desirable, kl, beta, weight_d, weight_u, loss_type)
    expected_losses, expected_rewards = reference_losses(
        policy.tolist(), reference.tolist(), desirable.tolist(), expected_kl, beta, weight_d, weight_u, loss_type)
    assert torch.allclose(out.losses, torch.tensor(expected_losses, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(out.rewards, torch.tensor(expected_rewards, dtype=torch.float64), atol=1e-10)


def test_negative_kl_estimate_is_clamped_and_raw_kept():
    kl, raw = kl_reference_point(torch.tensor(-6.0), torch.tensor(3.0))
    assert float(kl) == 0.0 and float(raw) == -2.0


def test_no_kl_pair_gives_zero_not_nan():
    kl, raw = kl_reference_point(torch.tensor(0.0), torch.tensor(0.0))
    assert float(kl) == 0.0 and float(raw) == 0.0


@pytest.mark.parametrize("label", [True, False])
@pytest.mark.parametrize("loss_type", ["kto", "apo_zero_unpaired"])
def test_one_class_batch_is_finite_and_has_gradient(label, loss_type):
    policy = torch.tensor([-12.0, -30.0, -7.5], requires_grad=True)
    reference = torch.tensor([-11.0, -31.0, -8.0])
    desirable = torch.tensor([label] * 3)
    out = kto_loss(policy, reference, desirable, torch.tensor(0.3), 0.1, 1.0, 1.0, loss_type)
    loss = out.losses.mean()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(policy.grad).all() and policy.grad.abs().sum() > 0
    # a desirable example's loss falls as its reward rises; an undesirable one's rises
    assert (policy.grad < 0).all() if label else (policy.grad > 0).all()


def test_kl_has_no_gradient_path_and_weights_scale_losses():
    policy = torch.tensor([-5.0, -6.0])
    reference = torch.tensor([-5.5, -5.0])
    desirable = torch.tensor([True, False])
    base = kto_loss(policy, reference, desirable, 0.2, 0.1, 1.0, 1.0).losses
    weighted = kto_loss(policy, reference, desirable, 0.2, 0.1, 2.0, 0.5).losses
    assert torch.allclose(weighted, base * torch.tensor([2.0, 0.5]))


def test_unknown_loss_type_names_the_known_ones():
    with pytest.raises(ValueError, match="apo_zero_unpaired"):
        kto_loss(torch.zeros(1), torch.zeros(1), torch.tensor([True]), 0.0, 0.1, loss_type="sigmoid")
