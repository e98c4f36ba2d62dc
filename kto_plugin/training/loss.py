"""The KTO loss the plugin owns (Ethayarajh et al. 2024, Eq. 7), and the unpaired APO-zero loss.

For a prompt x, a completion y and its label, with policy pi_theta and reference pi_ref:

    r(x, y)  = sum over completion tokens of (log pi_theta(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t))
    z0       = sum_i lambda_i r(x_i, y_i) / sum_i lambda_i over every row i of the earlier optimizer steps,
               over all ranks, lambda_i its class weight (not clamped; 0 at the first):
               `kto_reference_point: reward_mean`, the default (BCO's shift, training/reference_point.py)
               or, with `kto_reference_point: kl`, the paper's
               max(0, sum_i r(x_i, y'_i) / n_KL)        (mismatched pairs, no gradient,
                                                          sum and count over all ranks)
    nll(x, y) = -log pi_theta(y | x) / |y|             (per completion token; |y| its completion tokens)
              or, with `kto_sft_gce_q` q > 0 (default 0.5), the generalized cross-entropy (Zhang & Sabuncu 2018)
              per token, on the answers the reference already finds likely:
              sum_t (1 - pi_theta(y_t | x, y_<t)^q) / q / |y|    where -log pi_ref(y | x) / |y| <= m,
              m = `kto_sft_gce_max_reference_nll` (default 0.5 nat per token); the NLL above it

    kto:
      desirable    loss = lambda_D * (1 - sigmoid(beta * (r - z0)) + w_sft * nll(x, y))
      undesirable  loss = lambda_U * (1 - sigmoid(beta * (z0 - r)))
    apo_zero_unpaired (no KL term):
      desirable    loss = lambda_D * (1 - sigmoid(beta * r) + w_sft * nll(x, y))
      undesirable  loss = lambda_U * sigmoid(beta * r)

    batch loss = mean over the examples of the micro-batch;  logged reward = beta * r
    beta = `rl_beta`, 1.0 where unset (training/beta_schedule.py), or `kto_beta_schedule`'s value at the step

w_sft is `kto_sft_weight` (f times it where `kto_class_balance` reads each accepted row f times an epoch:
data/class_balance.py): an SFT (negative log-likelihood) term on the desirable completions,
length-normalised as LLaMA-Factory's `pref_ftx` and the RPO paper's term are. It pulls the accepted
answers up directly, where the preference terms only move them against the reference point; without
it the probability taken off the rejected answers can land on text nobody wrote (likelihood
displacement, Razin et al. 2025). Each example carries its own normaliser |y| and the batch loss is
a mean over examples, as the KTO terms are, so micro-batch 1, gradient accumulation and several ranks
give the same total as one large batch. The term is part of the desirable example's loss, so
lambda_D (`kto_auto_weights`) scales it with the rest.

The generalized cross-entropy (`kto_sft_gce_q`) is a term robust to wrong labels. Its gradient per
token is p^q times the NLL's (d/dtheta of -log p is scaled by p^q), so a token the model finds unlikely
pulls less: an accepted answer that is really a rejected one (a flipped label) differs from the good
answers in a few tokens, which the rest of the data makes unlikely, and the term stops imitating them,
where the NLL pulls hardest on exactly those tokens. q -> 0 gives the NLL; q = 1 the mean absolute error
1 - p, the bounded loss of Ghosh et al. 2017. KTO's own terms are already robust in that sense: a
desirable row's 1 - sigmoid(x) and the same row flipped, 1 - sigmoid(-x), sum to 1 (a symmetric loss),
so label smoothing or a flip-rate correction (cDPO, rDPO) would only rescale KTO's gradient.

The GCE is robust only where the model has half-learned an answer: there its unlikely tokens are the
odd ones out. On an answer it has not learned (a person's wording, every token at p ~ 0.1) p^q shrinks
the whole pull, and the answer falls while the rejected ones are pushed down. So each accepted answer
gets the GCE only when the reference's NLL per token of it is at most m, fixed per row from the
reference's log-probs: on bench/alignment every answer (the warm model's own wordings) sits at 0.06-0.13
nat per token, on the quickstart's en/zh sets (written answers) at 0.8-4.2.

With no mismatched pair (n_KL = 0) z0 is 0, so the loss stays finite; a batch holding only
one class simply has no terms of the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from kto_plugin.errors import ConfigError

LossType = Literal["kto", "apo_zero_unpaired"]
LOSS_TYPES: tuple[str, ...] = get_args(LossType)

# z0's estimators (`kto_reference_point`): the running reward mean (training/reference_point.py) or the KL pairs'
ReferencePointKind = Literal["kl", "reward_mean"]
REFERENCE_POINTS: tuple[str, ...] = get_args(ReferencePointKind)
REFERENCE_POINT_DEFAULT: ReferencePointKind = "reward_mean"

# `kto_sft_weight`'s default, chosen on bench/alignment at 4 epochs, 3 seeds (its numbers: the key's description
# in args.py and docs/alignment-bench.md)
SFT_WEIGHT_DEFAULT = 3.0
# `kto_sft_gce_q`'s default: 0.5 helped every bench/alignment variant (3 seeds; 20% of the labels flipped: good held-out
# answers 0.51 against 0.34 with the NLL). `kto_sft_gce_max_reference_nll`'s: on answers the model has not half-learned
# (the quickstart's en/zh sets, 0.8-4.2 nats a token) the GCE pulls too little and the displacement guard warned, so those
# keep the NLL (docs/loss.md#sft-gce)
SFT_GCE_Q_DEFAULT = 0.5
SFT_GCE_MAX_REFERENCE_NLL_DEFAULT = 0.5
SFT_GCE_SHARE = "sft_gce/chosen"  # the logged share of the accepted answers whose SFT term is the GCE


@dataclass
class KTOLossOutput:
    losses: torch.Tensor  # per example, weighted
    rewards: torch.Tensor  # beta * r per example, detached
    nll: torch.Tensor  # -log pi_theta(y | x) / |y| per example, detached
    sft_gce: torch.Tensor | None = None  # per example, whether its SFT term is the GCE (None: no SFT term or no GCE)


def sft_token_losses(token_logps: torch.Tensor, gce_q: float = 0.0) -> torch.Tensor:
    """The SFT term of each completion token from its log-prob: -log p, or (1 - p^q) / q for `gce_q` q > 0."""
    if not gce_q:
        return -token_logps
    return -torch.expm1(gce_q * token_logps) / gce_q


def kl_reference_point(kl_logratio_sum: torch.Tensor, kl_count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(z0, raw estimate) from the global sum of mismatched-pair log-ratios and their global count."""
    raw = torch.where(kl_count > 0, kl_logratio_sum / kl_count.clamp(min=1), torch.zeros_like(kl_logratio_sum))
    return raw.clamp(min=0), raw


def kto_loss(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor | float,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    loss_type: str = "kto",
    completion_tokens: torch.Tensor | None = None,
    sft_weight: float = 0.0,
    sft_token_loss_sums: torch.Tensor | None = None,
    sft_gce_max_reference_nll: float | None = None,
) -> KTOLossOutput:
    """Per-example KTO losses; `policy_logps`/`reference_logps` are sequence sums over completion tokens,
    `completion_tokens` the number of tokens each sum runs over (needed for `sft_weight`), `sft_token_loss_sums`
    each completion's sum of `sft_token_losses` where the SFT term is not the NLL (`kto_sft_gce_q`), used for the
    rows whose reference NLL per token is at most `sft_gce_max_reference_nll` (None: every row)."""
    if loss_type not in LOSS_TYPES:
        raise ConfigError(f"unknown KTO loss type {loss_type!r}: use one of {', '.join(LOSS_TYPES)}")
    desirable = desirable.to(torch.bool)
    logratios = policy_logps - reference_logps
    kl = torch.as_tensor(kl, dtype=logratios.dtype, device=logratios.device)
    if loss_type == "kto":
        desirable_losses = 1 - F.sigmoid(beta * (logratios - kl))
        undesirable_losses = 1 - F.sigmoid(beta * (kl - logratios))
    else:
        desirable_losses = 1 - F.sigmoid(beta * logratios)
        undesirable_losses = F.sigmoid(beta * logratios)
    if completion_tokens is None:
        if sft_weight:
            raise ValueError("kto_loss: `sft_weight` needs `completion_tokens`, the length of each completion")
        completion_tokens = torch.ones_like(policy_logps)
    tokens = completion_tokens.to(policy_logps.dtype).clamp(min=1)
    nll = -policy_logps / tokens
    sft_gce = None  # per example, whether its SFT term is the GCE
    if sft_weight:
        sft_term = nll
        if sft_token_loss_sums is not None:
            sft_gce = torch.ones_like(desirable) if sft_gce_max_reference_nll is None else (
                -reference_logps.detach() / tokens <= sft_gce_max_reference_nll)
            sft_term = torch.where(sft_gce, sft_token_loss_sums / tokens, nll)
        desirable_losses = desirable_losses + sft_weight * sft_term
    losses = torch.where(
        desirable, desirable_weight * desirable_losses, undesirable_weight * undesirable_losses
    )
    return KTOLossOutput(losses=losses, rewards=(beta * logratios).detach(), nll=nll.detach(), sft_gce=sft_gce)
