"""`bench/gpu_output_layer.py` runs where only torch and transformers are (here on the CPU, tiny shapes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_it_times_each_path_and_measures_how_far_each_is_from_fp32(tmp_path):
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_output_layer.py"), "--vocab", "500", "--hidden", "32",
                    "--layers", "1", "--heads", "2", "--shapes", "2x40", "--steps", "1", "--chunk-mib", "1",
                    "--out", str(out)], check=True, capture_output=True, cwd=tmp_path)
    result = json.loads(out.read_text())
    rows = result["shapes"]["2x40"]
    assert set(rows) == {"plugin-chunked-1MiB-cached-reference", "plugin-chunked-1MiB-reference-every-step",
                         "trl-1.9-full-logits"}  # TRL 1.14's fused kernel needs CUDA and its file
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and row["head_grad_cosine"] > 0.999
    assert rows["plugin-chunked-1MiB-cached-reference"]["max_rel_logp_diff"] < 1e-5  # fp32 weights on the CPU
