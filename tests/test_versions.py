"""What differs between the supported Axolotl versions is detected right on the installed one, and handled."""

from __future__ import annotations

import importlib

import pytest
from helpers import base_config, load_config, write_jsonl
from packaging.version import Version

from kto_plugin import versions

AXOLOTL = Version(__import__("axolotl").__version__)


def test_detected_features_match_what_each_release_does():
    # Known from reading each release: 0.21 wraps transforms and seeds the adapter; 0.19 and 0.20 do neither.
    assert versions.axolotl_passes_row_indices() is (AXOLOTL < Version("0.21"))
    assert versions.axolotl_seeds_adapter_init() is (AXOLOTL >= Version("0.21"))
    assert versions.trl_kto_fast_path() in ("TRL's chunked log-prob path", "the Liger fused KTO loss")


def test_set_trl_beta_also_sets_the_liger_loss_where_trl_keeps_one():
    class Trainer:
        pass

    plain, with_liger = Trainer(), Trainer()
    with_liger.liger_loss = Trainer()
    versions.set_trl_beta(plain, 0.3)
    versions.set_trl_beta(with_liger, 0.2)
    assert plain.beta == 0.3 and with_liger.beta == 0.2 and with_liger.liger_loss.beta == 0.2


def test_a_bad_row_through_axolotls_own_loader_is_named(tmp_path, tiny_model):
    """`axolotl evaluate` maps the plugin's type itself: a bad label still says which row, on every version."""
    from axolotl.common.datasets import load_preference_datasets

    data = write_jsonl(tmp_path / "bad.jsonl", [
        {"query": "Where is my parcel?", "response": "It left the depot today.", "label": True},
        {"query": "Can I return shoes?", "response": "Yes, within 30 days.", "label": "maybe"},
    ])
    cfg = load_config(tmp_path, base_config(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}]))
    with pytest.raises(Exception) as err:
        load_preference_datasets(cfg=cfg)
    text = str(err.value) + "".join(str(arg) for arg in getattr(err.value, "args", ()))
    assert "maybe" in text
    if versions.axolotl_passes_row_indices():
        assert "row 2" in text
    else:
        assert "Can I return shoes?" in text


def test_peer_check_answers_without_a_gpu_as_with_a_cpu_build(monkeypatch):
    """With PyPI's CUDA torch and no GPU, `can_device_access_peer` raises RuntimeError; the plugin's answer stands in."""
    import torch
    from axolotl.utils import environment

    from kto_plugin.distributed.cpu_ranks import answer_gpu_peer_check_without_gpu

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: Axolotl's own check applies")

    def no_driver(*_):
        raise RuntimeError("Found no NVIDIA driver on your system.")

    importlib.reload(environment)  # Axolotl's own check, whatever an earlier config load patched
    monkeypatch.setattr(torch.cuda, "can_device_access_peer", no_driver)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(RuntimeError):
        environment.check_cuda_p2p_ib_support()
    assert answer_gpu_peer_check_without_gpu()
    assert environment.check_cuda_p2p_ib_support() is True


def test_the_plugin_version_is_the_installed_one_and_a_source_checkout_still_has_one(tmp_path):
    import shutil
    import subprocess
    import sys
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    assert versions.plugin_version() == version("kto-plugin")
    # A fresh checkout on PYTHONPATH that pip never installed (the GPU machine's case: no package index there):
    # the package and pyproject.toml without the egg-info `pip install -e` leaves, and `-S` keeps site-packages,
    # with this venv's kto-plugin metadata, off the path.
    checkout = tmp_path / "checkout"
    shutil.copytree(repo / "kto_plugin", checkout / "kto_plugin", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo / "pyproject.toml", checkout)
    source = subprocess.run(
        [sys.executable, "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from kto_plugin.versions import plugin_version; print(plugin_version())", str(checkout)], cwd=tmp_path,
        capture_output=True, text=True, check=True).stdout.strip()
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    assert source == pyproject["project"]["version"] + versions.SOURCE_SUFFIX
