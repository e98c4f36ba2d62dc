"""`kto_release_cpu_memory`: with glibc's mmap threshold fixed, freed activation-sized blocks leave the process.

Each case runs in a fresh Python process (the threshold is process-wide, and a used heap would blur the numbers):
it frees one 16 MiB tensor first, which raises glibc's default threshold as a step's first free does, then
allocates 40 tensors of 8 MiB, keeps only the last, and reports how much anonymous memory is still resident.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from kto_plugin.training.cpu_memory import on_glibc

pytestmark = pytest.mark.skipif(not on_glibc(), reason="glibc's allocator only")

PATTERN = textwrap.dedent("""
    import sys
    setup = sys.argv[1]
    if setup == "function":
        from kto_plugin.training.cpu_memory import fix_mmap_threshold
        assert fix_mmap_threshold()
    elif setup == "plugin":
        from kto_plugin.plugin import KTOPlugin
        KTOPlugin().register({"rl": "kto"})
    import torch

    def anon_mib():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024

    first = torch.ones(4 * 1024**2)
    del first  # 16 MiB freed: glibc's default threshold rises to 16 MiB
    before = anon_mib()
    blocks = [torch.ones(2 * 1024**2) for _ in range(40)]  # 40 x 8 MiB, written
    kept = blocks[-1]
    del blocks
    print(anon_mib() - before)
""")


def resident_after_free(setup: str) -> float:
    done = subprocess.run([sys.executable, "-c", PATTERN, setup], capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return float(done.stdout.strip().splitlines()[-1])


def test_freed_blocks_leave_the_process_with_the_threshold_fixed():
    held_by_default = resident_after_free("none")
    assert held_by_default > 200, "glibc's defaults keep the freed 8 MiB blocks in the heap (the reason for the key)"
    assert resident_after_free("function") < 40  # the one 8 MiB block kept, and little else


def test_the_plugin_fixes_it_on_a_cpu_run_by_default():
    from kto_plugin.distributed.cpu_ranks import cuda_available
    from kto_plugin.training.cpu_memory import release_cpu_memory_on

    assert release_cpu_memory_on("auto", cuda=False) and not release_cpu_memory_on("auto", cuda=True)
    assert release_cpu_memory_on(True, cuda=True) and not release_cpu_memory_on(False, cuda=False)
    if cuda_available():
        pytest.skip("the default is off where a GPU is used")
    assert resident_after_free("plugin") < 40
