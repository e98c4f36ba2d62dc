"""One way to build and run an Axolotl job: its config's shared keys, its command line, its log.

`cpu_job_config(**keys)` is the config of every CPU job the plugin, `bench/` and the tests write:
fp32 (`bf16`, `fp16`, `tf32` off) and Axolotl's Triton LoRA kernels off (Axolotl turns them on when
unset, and they need CUDA), then the job's own keys. `run_axolotl_logged` runs `axolotl ARGS` in a
subprocess of this Python, its output in a log file.

`axolotl train` starts its run through `accelerate launch`, found on the PATH: the
subprocess gets this Python's folder first on its PATH, so the venv's `accelerate` is
found even when the venv is not activated (`.venv/bin/axolotl kto pipeline`). The plugin's own
training jobs (the warm-up, each stage of `kto pipeline`, each round of `kto iterate`) use
`train_command`: on a machine with at most one GPU they run `axolotl train --launcher python`, the
run in the `axolotl` process itself instead of a third process under `accelerate launch` (with one
process the launcher adds nothing but a second start of torch: about 20 s per job on a CPU).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kto_plugin.errors import RunFailedError

CPU_PRECISION = {"bf16": False, "fp16": False, "tf32": False}
NO_GPU_KERNELS = {"lora_mlp_kernel": False, "lora_qkv_kernel": False, "lora_o_kernel": False,
                  "lora_embedding_kernel": False}
# A job on local models and data only, without Axolotl's telemetry (offline, its posthog thread once left a
# finished run's process hanging at exit). The benches set them for their jobs; tests/conftest.py sets the same
# names itself, before anything imports the Hugging Face libraries.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "AXOLOTL_DO_NOT_TRACK", "DO_NOT_TRACK")


def set_offline(environment) -> None:
    """Each of `OFFLINE_VARIABLES` set to "1" in `environment` (os.environ or a copy) where it is not set already."""
    for name in OFFLINE_VARIABLES:
        environment.setdefault(name, "1")


def cpu_job_config(lora_kernels_off: bool = True, **keys) -> dict:
    """An Axolotl config for a CPU job: fp32, no GPU-only kernels, then `keys` (which may override either).

    `lora_kernels_off=False` leaves the kernel keys unset (the plugin sets them itself on a machine without
    CUDA; a test of that needs them unset)."""
    return {**CPU_PRECISION, **(NO_GPU_KERNELS if lora_kernels_off else {}), **keys}


def axolotl_command(args: list[str]) -> list[str]:
    """The command line of `axolotl ARGS` with this Python."""
    return [sys.executable, "-m", "axolotl.cli.main", *args]


def train_command(config: str | Path, *args: str) -> list[str]:
    """The arguments of `axolotl train CONFIG ARGS` for one of the plugin's jobs: `--launcher python` where this
    machine has at most one GPU (one process: nothing for `accelerate launch` to spread), Axolotl's default
    launcher where it has more."""
    return ["train", str(config), *args, *(["--launcher", "python"] if _at_most_one_gpu() else [])]


def _at_most_one_gpu() -> bool:
    import torch

    return torch.cuda.device_count() <= 1


def axolotl_environment() -> dict[str, str]:
    """This process's environment with this Python's folder (the venv's `accelerate`) first on the PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_axolotl_logged(args: list[str], log_path: Path) -> None:
    """`axolotl ARGS` with stdout and stderr in `log_path`; a failure raises RuntimeError with the log's tail."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.run(axolotl_command(args), stdout=log, stderr=subprocess.STDOUT,
                              env=axolotl_environment()).returncode
    if code:
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-30:])
        raise RunFailedError(f"`axolotl {' '.join(args)}` failed (exit {code}); log: {log_path}\n{tail}")
