"""Let Axolotl's distributed paths run on a machine without a GPU (gloo instead of NCCL).

Eight things in Axolotl (0.19 to 0.21) and its stack assume a GPU once torch.distributed is involved:

- a one-process DeepSpeed run starts torch.distributed with the NCCL backend
  (`axolotl/utils/trainer.py: setup_deepspeed_env`), which a CPU-only build of torch does
  not have ("Distributed package doesn't have NCCL built in"). DeepSpeed skips that start
  when a backend is already up, so `start_gloo_backend_if_needed` starts it first, with gloo;
- with WORLD_SIZE > 1, `normalize_config` pins each rank's model to `device_map: {"": LOCAL_RANK}`,
  an accelerator index ("Cannot access accelerator device when none is available");
  `place_ranks_on_cpu` puts it back on the CPU before the model loader reads it;
- the Hugging Face TrainingArguments only join the ranks on CPU (accelerate's MULTI_CPU,
  gloo) when `use_cpu` is set; otherwise every rank trains alone on its whole batch.
  `training_args_for_cpu_ranks` sets it;
- with DeepSpeed, `use_cpu` would switch DeepSpeed off, and without it accelerate finds
  no backend on a CPU and counts one process, so the "auto" train_batch_size is filled for
  one rank and DeepSpeed stops ("train_batch_size is not equal to micro_batch_per_gpu *
  gradient_acc_step * world_size"). `let_deepspeed_ranks_join_on_cpu` gives accelerate the
  gloo backend in that one case;
- ZeRO-1/2 gather the updated partitions into flat buffers that require grad
  (`deepspeed.runtime.utils.all_gather_into_tensor_dp_groups`); gloo copies into views of
  them with autograd on ("Output 0 of Split is a view and is being modified inplace"),
  NCCL does not. The same patch runs that gather under `torch.no_grad()`;
- with a CUDA build of torch (PyPI's, the only one for Python 3.12) and no GPU, Axolotl's
  multi-process start-up asks `torch.cuda.can_device_access_peer`
  (`axolotl/utils/environment.py: check_cuda_p2p_support`), which raises RuntimeError
  ("Found no NVIDIA driver") where a CPU-only build raises the AssertionError Axolotl catches
  and answers "P2P is fine". `answer_gpu_peer_check_without_gpu` gives that same answer;
- with FSDP, Axolotl builds its device mesh for "cuda" (`utils/distributed.py:
  build_parallelism_config`), and accelerate turns FSDP on only for accelerator ranks: on
  gloo CPU ranks it dropped the FSDP plugin and trained plain DDP. `let_fsdp_ranks_run_on_cpu`
  builds the mesh for the CPU and keeps FSDP on.
"""

from __future__ import annotations

import os
import socket


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answer_gpu_peer_check_without_gpu() -> bool:
    """On a machine without CUDA, Axolotl's GPU peer-access check answers as with a CPU build of torch; True if patched."""
    if cuda_available():
        return False
    from axolotl.utils import environment

    environment.check_cuda_p2p_support = lambda: True
    return True


def start_gloo_backend_if_needed(cfg) -> bool:
    """Start a one-rank gloo backend for a DeepSpeed config on a CPU-only machine; True if started."""
    import torch

    if not cfg.get("deepspeed") or cuda_available():
        return False
    if world_size() != 1 or torch.distributed.is_initialized():
        return False
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    import deepspeed.comm as dist

    dist.init_distributed(dist_backend="gloo", auto_mpi_discovery=False, dist_init_required=True)
    return True


def let_deepspeed_ranks_join_on_cpu(cfg) -> bool:
    """Make accelerate pick gloo for launched DeepSpeed ranks on a CPU-only machine; True if patched."""
    if world_size() == 1 or cuda_available() or not cfg.get("deepspeed"):
        return False
    from accelerate.state import DistributedType, PartialState

    original = PartialState._prepare_backend
    if getattr(original, "kto_plugin_cpu_ranks", False):
        return True

    def prepare_backend(self, cpu: bool = False, sagemaker_dp=False, backend=None):
        chosen, distributed_type = original(self, cpu, sagemaker_dp, backend)
        if chosen is None and int(os.environ.get("LOCAL_RANK", "-1")) != -1:
            return "gloo", DistributedType.MULTI_CPU
        return chosen, distributed_type

    prepare_backend.kto_plugin_cpu_ranks = True
    PartialState._prepare_backend = prepare_backend
    _gather_partitions_without_autograd()
    return True


def _gather_partitions_without_autograd() -> None:
    import functools

    import torch
    from deepspeed.runtime import utils as deepspeed_utils

    original = deepspeed_utils.all_gather_into_tensor_dp_groups

    @functools.wraps(original)
    def gather(*args, **kwargs):
        with torch.no_grad():
            return original(*args, **kwargs)

    deepspeed_utils.all_gather_into_tensor_dp_groups = gather


def let_fsdp_ranks_run_on_cpu(cfg) -> bool:
    """FSDP on CPU ranks (gloo); True if patched. Two things stood in the way:

    - Axolotl builds its device mesh for "cuda" (`utils/distributed.py: build_parallelism_config`), which asks
      for a GPU on every rank: the mesh is built for "cpu";
    - accelerate turns FSDP on only for accelerator ranks (MULTI_GPU and the like): on CPU ranks (MULTI_CPU) it
      dropped the FSDP plugin and trained plain DDP, silently. FSDP2's `fully_shard` runs on CPU tensors with gloo.
    """
    if world_size() == 1 or cuda_available() or not (cfg.get("fsdp_config") or cfg.get("fsdp")):
        return False
    from accelerate.parallelism_config import ParallelismConfig
    from accelerate.state import AcceleratorState, DistributedType

    original_mesh, original_state = ParallelismConfig.build_device_mesh, AcceleratorState.__init__
    if getattr(original_mesh, "kto_plugin_cpu_ranks", False):
        return True

    def build_device_mesh(self, device_type):
        return original_mesh(self, "cpu" if device_type == "cuda" else device_type)

    def accelerator_state(self, *args, fsdp_plugin=None, **kwargs):
        original_state(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        # Every later `AcceleratorState()` copies the process state's MULTI_CPU over the type again (the trainer's
        # save then took the unsharded path and gathered on rank 0 alone): the FSDP plugin, kept, says it is FSDP.
        fsdp_plugin = fsdp_plugin or getattr(self, "fsdp_plugin", None)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    build_device_mesh.kto_plugin_cpu_ranks = True
    ParallelismConfig.build_device_mesh = build_device_mesh
    AcceleratorState.__init__ = accelerator_state
    return True


def let_axolotl_ranks_run_on_cpu(cfg) -> None:
    """The fixes that act when a config is registered, in order; each acts only on a machine without CUDA (the
    second and third only for a DeepSpeed config, the last for FSDP). `place_ranks_on_cpu` and
    `training_args_for_cpu_ranks` come later, from their own hooks."""
    answer_gpu_peer_check_without_gpu()
    start_gloo_backend_if_needed(cfg)
    let_deepspeed_ranks_join_on_cpu(cfg)
    let_fsdp_ranks_run_on_cpu(cfg)


def place_ranks_on_cpu(cfg) -> bool:
    """Undo Axolotl's per-rank accelerator `device_map` when several ranks run on CPU; True if changed."""
    if world_size() == 1 or cuda_available():
        return False
    if not isinstance(cfg.get("device_map"), dict):
        return False
    cfg["device_map"] = "cpu"
    return True


def training_args_for_cpu_ranks(cfg) -> dict:
    """TrainingArguments that make several CPU ranks one gloo process group (empty otherwise)."""
    if world_size() == 1 or cuda_available() or cfg.get("deepspeed"):
        return {}
    return {"use_cpu": True}
