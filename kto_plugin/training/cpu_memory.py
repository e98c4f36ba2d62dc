"""`kto_release_cpu_memory`: on a CPU run, freed activations go back to the system at once.

glibc's `malloc` serves a block of at least `M_MMAP_THRESHOLD` bytes (128 KiB to begin with) with its
own `mmap`, which `free` unmaps. But the first time such a block is freed, glibc raises the threshold
to that block's size (up to 32 MiB), so from then on the activations of a step (4-17 MiB each at a
281M-parameter model's micro-batch) come from the heap, and the heap keeps what they free: a hole
in its middle is not given back. The process's resident memory then climbs step after step above
what the live tensors need. Measured on the speed bench's large shape (hidden 1024, 8 layers,
micro-batch 2, rows up to 520 tokens; six steps): resident memory 4.03 GB with glibc's defaults,
2.89 GB with the threshold fixed, and the heap back to 0.49 GB between steps instead of 2.49 GB.

Setting the threshold with `mallopt` fixes it (glibc then stops adjusting it), so every block of
128 KiB or more is mapped and unmapped. The cost is the kernel's zeroing of fresh pages on each
such allocation: over two whole epochs at that shape, peak 2.93 GiB instead of 3.48 and 10.33 s a
step instead of 9.41 (bench/results/README.md, 2026-12-04). A GPU's activations are not `malloc`'s, so this is for
CPU-only runs; it does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept fixed


def release_cpu_memory_on(setting, cuda: bool) -> bool:
    """Whether `kto_release_cpu_memory: setting` asks for it on a run that does (`cuda`) or does not use a GPU."""
    if setting in (None, "auto"):
        return not cuda
    return setting is True


def on_glibc() -> bool:
    """Whether this process's C library is glibc (Linux), whose allocator `mallopt` tunes."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at 128 KiB; False where the C library is not glibc or refuses."""
    if not on_glibc():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
