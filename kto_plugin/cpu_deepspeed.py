"""Let a DeepSpeed config load on a machine without a GPU.

For a one-process DeepSpeed run Axolotl starts torch.distributed itself with the NCCL
backend (`axolotl/utils/trainer.py: setup_deepspeed_env`), which a CPU-only build of
torch does not have ("Distributed package doesn't have NCCL built in"). DeepSpeed skips
that start when the backend is already up, so the plugin starts it first, with gloo.
"""

from __future__ import annotations

import os
import socket


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gloo_backend_if_needed(cfg) -> bool:
    """Start a one-rank gloo backend for a DeepSpeed config on a CPU-only machine; True if started."""
    import torch

    if not cfg.get("deepspeed") or torch.cuda.is_available():
        return False
    if int(os.environ.get("WORLD_SIZE", "1")) != 1 or torch.distributed.is_initialized():
        return False
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    import deepspeed.comm as dist

    dist.init_distributed(dist_backend="gloo", auto_mpi_discovery=False, dist_init_required=True)
    return True
