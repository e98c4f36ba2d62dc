"""FLOP counts: this machine's dense matmul rate, and the arithmetic a KTO step cannot avoid.

A KTO step with LoRA, per micro-batch of T tokens of which C are completion tokens, must at
least run the policy on the completions, forward and backward (the frozen base needs
gradients for its activations, not its weights: about as much again as the forward). With
the paper's KL z0 (`kto_reference_point: kl`) it also runs the policy on as many mismatched
KL pairs, forward only; and where the reference is not cached (the first epoch), the
reference on the completions (and on the KL pairs), forward only.
The transformer body costs 2 FLOPs per body parameter per token forward, attention 4 L H T_row^2
per row; the output layer 2 H V per token, but only completion tokens need it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


def dense_matmul_flops(size: int = 1024, seconds: float = 3.0, gpu: bool = False) -> float:
    """FLOP/s of square matmuls: fp32 on this machine's CPU with torch's default threads, or with `gpu` bf16
    (8192 x 8192) on its first GPU."""
    import torch

    device, dtype = ("cuda", torch.bfloat16) if gpu else ("cpu", torch.float32)
    size = 8192 if gpu else size
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    if gpu:
        torch.cuda.synchronize()
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, b)
        runs += 1
        if gpu:
            torch.cuda.synchronize()
    return 2 * size**3 * runs / (time.perf_counter() - started)


@dataclass(frozen=True)
class StepShape:
    rows: int                # examples per micro-batch
    tokens_per_row: float    # mean prompt + completion tokens
    completion_per_row: float
    hidden: int
    layers: int
    vocab: int
    body_parameters: int     # everything but the embedding / output matrices

    def forward(self, with_head_on_all_tokens: bool = False) -> float:
        tokens = self.rows * self.tokens_per_row
        head_tokens = tokens if with_head_on_all_tokens else self.rows * self.completion_per_row
        attention = 4 * self.layers * self.hidden * self.rows * self.tokens_per_row**2
        return 2 * self.body_parameters * tokens + attention + 2 * self.hidden * self.vocab * head_tokens

    def kto_step_unavoidable(self) -> float:
        """Policy forward + backward on completions: the plugin's default step once its reference is cached
        (epoch 2 on; no KL pairs with the default reward-mean z0)."""
        return self.forward() * 2


def body_parameters(parameters: int, hidden: int, vocab: int, tied: bool) -> int:
    return parameters - hidden * vocab * (1 if tied else 2)
