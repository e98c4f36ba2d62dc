"""`kto_ref_cache`: reference log-probs kept on disk, keyed right, checked, and equal to computing them every step."""

from __future__ import annotations

import pytest
import torch
from helpers import base_config, read_metrics_file, train_with_axolotl, with_lora

from kto_plugin.training.reference_cache import ReferenceCache, reference_weights_digest, rows_digest


def test_round_trip_and_what_is_never_used(tmp_path):
    cache = ReferenceCache(tmp_path)
    columns = {"ref_logps": torch.tensor([-1.5, -2.0, -3.25]), "ref_KL_logps": torch.tensor([-4.0, -5.0, -6.0])}
    path = cache.save("k1", columns)
    loaded, why = cache.load("k1", rows=3)
    assert why == "" and all(torch.equal(loaded[name], values) for name, values in columns.items())
    assert cache.load("k2", rows=3) == (None, "no cache for this reference model, data and KL pairing yet")
    assert "holds 3 rows, the data 4" in cache.load("k1", rows=4)[1]

    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in a logp
    path.write_bytes(bytes(data))
    assert "checksum" in cache.load("k1", rows=3)[1]
    path.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    assert cache.load("k1", rows=3)[0] is None
    assert not list(tmp_path.glob("*.tmp*"))


def test_key_follows_weights_config_and_rows_but_not_the_adapter():
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    base = reference_weights_digest(model, adapter_off=False)
    with_adapter = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert reference_weights_digest(with_adapter.get_base_model(), adapter_off=True) == base
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1e-3
    changed_weight = reference_weights_digest(model, adapter_off=True)
    assert changed_weight != base
    model.config.attention_dropout = 0.5
    assert reference_weights_digest(model, adapter_off=True) != changed_weight

    rows = Dataset.from_dict({"completion_ids": [[1, 2], [3]], "KL_completion_ids": [[3], [1, 2]]})
    assert rows_digest(rows) == rows_digest(Dataset.from_dict(rows.to_dict()))  # content, not history
    other_tokens = Dataset.from_dict({"completion_ids": [[1, 2], [4]], "KL_completion_ids": [[4], [1, 2]]})
    other_pairing = Dataset.from_dict({"completion_ids": [[1, 2], [3]], "KL_completion_ids": [[1, 2], [3]]})
    assert len({rows_digest(rows), rows_digest(other_tokens), rows_digest(other_pairing)}) == 3


def train(tmp_path, name, lora=True, **overrides):
    folder = tmp_path / name
    folder.mkdir()
    config = base_config(
        folder, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
        **{"max_steps": 3, "kto_ref_cache_dir": str(tmp_path / "ref_cache"), **overrides},
    )
    config = with_lora(config) if lora else dict(config, save_strategy="no", logging_steps=1)
    result = train_with_axolotl(folder, "run", config)
    steps = [r for r in read_metrics_file(folder / "out") if "loss" in r and "train_loss" not in r]
    return result.stdout + result.stderr, steps


# The cache's own logic (keys, hit, rebuild) on one stack: py312's TRL meets the cached columns against its own
# reference in the full fine-tune below and in the 2-rank runs (tests/conftest.py)
@pytest.mark.stack("py311")
def test_runs_build_hit_rebuild_and_match_the_uncached_numbers(axolotl, tmp_path, tiny_model):
    built_log, built = train(tmp_path, "first")
    assert "KTO reference cache: built for the train split" in built_log
    hit_log, hit = train(tmp_path, "second")
    assert "KTO reference cache: hit for the train split" in hit_log
    _, uncached = train(tmp_path, "uncached", kto_ref_cache="off")
    for run in (built, hit):
        for cached_step, plain_step in zip(run, uncached, strict=True):
            for key in ("loss", "kl", "rewards/chosen"):
                if key in plain_step:
                    assert cached_step[key] == pytest.approx(plain_step[key], abs=1e-4), (key, cached_step, plain_step)

    (cache_file,) = (tmp_path / "ref_cache").glob("*.safetensors")
    cache_file.write_bytes(cache_file.read_bytes()[:-8])
    rebuilt_log, _ = train(tmp_path, "after_corruption")
    assert "KTO reference cache: rebuilt for the train split" in rebuilt_log and "checksum" in rebuilt_log
    # other rows give another key: test_key_follows_weights_config_and_rows_but_not_the_adapter (no run needed)


def test_full_fine_tuning_loads_no_unused_reference_model_and_trains_the_same(axolotl, tmp_path, tiny_model):
    """Axolotl loaded a second model as the reference of every full fine-tune and handed it to DPO and IPO only; the
    KTO trainer never received it. Not loaded now, with the cache (the pass runs on the untrained policy) and without
    (TRL loads its own copy), and the steps of the two runs agree."""
    cached_log, cached = train(tmp_path, "cached", lora=False, max_steps=2)
    plain_log, plain = train(tmp_path, "plain", lora=False, max_steps=2, kto_ref_cache="off")
    assert "reference model is not loaded (its KTO trainer never receives it); the reference pass runs" in cached_log
    assert "reference model is not loaded (its KTO trainer never receives it); TRL loads its own" in plain_log
    assert len(cached) == len(plain) == 2
    for cached_step, plain_step in zip(cached, plain, strict=True):
        for key in ("loss", "kl", "rewards/chosen", "grad_norm"):
            if key in plain_step:
                assert cached_step[key] == pytest.approx(plain_step[key], abs=1e-4), (key, cached_step, plain_step)


def test_only_kto_runs_skip_axolotls_reference_load(monkeypatch):
    from axolotl import train as axolotl_train
    from axolotl.utils.dict import DictDefault

    from kto_plugin.training.reference_model import skip_unused_reference_model

    loads = []
    monkeypatch.setattr(axolotl_train, "setup_reference_model", lambda cfg, *args: loads.append(cfg.rl) or "a model")
    assert skip_unused_reference_model(DictDefault({"rl": "dpo"})) is False
    assert skip_unused_reference_model(DictDefault({"rl": "kto"})) is True
    assert skip_unused_reference_model(DictDefault({"rl": "kto"})) is True  # patched once
    assert axolotl_train.setup_reference_model(DictDefault({"rl": "kto", "kto_ref_cache": "auto"}), None) is None
    assert axolotl_train.setup_reference_model(DictDefault({"rl": "dpo"}), None) == "a model"  # same process, DPO
    assert loads == ["dpo"]
