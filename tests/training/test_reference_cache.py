"""`kto_ref_cache`: reference log-probs kept on disk, keyed right, checked, and equal to computing them every step."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from helpers import base_config, read_metrics_file, train_with_axolotl, with_lora, write_jsonl

from kto_plugin.training.reference_cache import COLUMNS, ReferenceCache, reference_weights_digest, rows_digest
from kto_plugin.training.reference_store import ReferenceStore


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


def train(tmp_path, name, lora=True, data=None, **overrides):
    folder = tmp_path / name
    folder.mkdir()
    config = base_config(
        folder, [{"path": data or "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
        **{"max_steps": 3, "kto_ref_cache_dir": str(tmp_path / "ref_cache"), **overrides},
    )
    config = with_lora(config) if lora else dict(config, save_strategy="no", logging_steps=1)
    config.update(overrides)  # over with_lora's (`adapter: qlora`)
    result = train_with_axolotl(folder, "run", config)
    steps = [r for r in read_metrics_file(folder / "out") if "loss" in r and "train_loss" not in r]
    return result.stdout + result.stderr, steps


def assert_same_steps(run, plain, keys=("loss", "kl", "rewards/chosen")):
    for cached_step, plain_step in zip(run, plain):
        for key in keys:
            if key in plain_step:
                assert cached_step[key] == pytest.approx(plain_step[key], abs=1e-4), (key, cached_step, plain_step)


# The cache's own logic (keys, partial, complete, rebuild) on one stack: py312's TRL meets the cache in the full
# fine-tune below, in the 2-rank runs and in the per-epoch schedule's resumed run (tests/conftest.py)
@pytest.mark.stack("py311")
def test_runs_fill_the_cache_as_they_train_keep_it_and_match_the_uncached_numbers(axolotl, tmp_path, tiny_model):
    """No pass before step 1: a 3-step run keeps the 6 rows it met, a 2-epoch run computes the other 10 in epoch 1
    and none in epoch 2, and every step equals a run without the cache."""
    from kto_plugin.embedded.samples import sample_dataset_path

    rows = [json.loads(line) for line in sample_dataset_path("kto-sample-en").read_text().splitlines()][:16]
    data = str(write_jsonl(tmp_path / "small.jsonl", rows))
    # a constant learning rate, so the 3-step run's steps are the 2-epoch runs' first 3
    short_log, short = train(tmp_path, "short", data=data, lr_scheduler="constant")
    assert "KTO reference cache: built for the train split" in short_log and "no pass before step 1" in short_log
    assert "Reference log-probs of the train split" not in short_log  # no progress bar: no pass
    assert "KTO reference cache: 6 of 16 rows of the train split kept" in short_log  # 3 steps x micro-batch 2
    epochs_log, epochs = train(tmp_path, "two_epochs", data=data, max_steps=None, num_epochs=2,
                               lr_scheduler="constant")
    assert "KTO reference cache: 6 of 16 rows of the train split known" in epochs_log
    assert "KTO reference cache: 16 of 16 rows of the train split kept" in epochs_log and "complete" in epochs_log
    _, uncached = train(tmp_path, "uncached", data=data, max_steps=None, num_epochs=2, kto_ref_cache="off",
                        lr_scheduler="constant")
    assert len(short) == 3 and len(epochs) == len(uncached) == 16
    assert_same_steps(short, uncached)
    assert_same_steps(epochs, uncached)

    (meta,) = (tmp_path / "ref_cache").glob("*.json")
    assert json.loads(meta.read_text())["known"] == 16
    # a corrupt or truncated file is rebuilt, never used: test_round_trip_and_what_is_never_used (no run needed)
    # other rows give another key: test_key_follows_weights_config_and_rows_but_not_the_adapter (no run needed)


def test_full_fine_tuning_loads_no_unused_reference_model_and_trains_the_same(axolotl, tmp_path, tiny_model):
    """Axolotl loaded a second model as the reference of every full fine-tune and handed it to DPO and IPO only; the
    KTO trainer never received it. Not loaded now, with the cache (the pass runs on the untrained policy) and without
    (TRL loads its own copy), and the steps of the two runs agree."""
    cached_log, cached = train(tmp_path, "cached", lora=False, max_steps=2)
    plain_log, plain = train(tmp_path, "plain", lora=False, max_steps=2, kto_ref_cache="off")
    assert "reference model is not loaded (its KTO trainer never receives it); the reference pass runs" in cached_log
    assert "reference model is not loaded (its KTO trainer never receives it); TRL loads its own" in plain_log
    # the pass covered the rows this run trains on only (2 steps x micro-batch 2), before step 1
    assert "KTO reference cache: 4 of 267 rows of the train split kept" in cached_log
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


def test_store_numbers_splits_one_after_another_and_serves_only_whole_micro_batches():
    nan = float("nan")
    store = ReferenceStore(COLUMNS)
    train_rows = store.add_segment("train", "k1", 4, {"ref_logps": torch.tensor([-1.0, nan, -3.0, nan]),
                                                      "ref_KL_logps": torch.tensor([-5.0, nan, -7.0, nan])})
    eval_rows = store.add_segment("eval", "k2", 2, None)
    assert (train_rows.offset, eval_rows.offset) == (0, 4)
    assert (store.known_rows(train_rows), store.known_rows(eval_rows)) == (2, 0)
    found = store.lookup(torch.tensor([2, 0]))
    assert found["ref_logps"].tolist() == [-3.0, -1.0] and found["ref_KL_logps"].tolist() == [-7.0, -5.0]
    assert store.lookup(torch.tensor([0, 1])) is None  # one row not known: the micro-batch runs the reference
    assert store.rows_needed(train_rows, first_rows=3).tolist() == [1]  # the first 3 rows only
    store.record(torch.tensor([1, 4]), {"ref_logps": torch.tensor([-2.0, -9.0]), "ref_KL_logps": torch.tensor([-6.0, -8.0])})
    assert store.known_rows(train_rows) == 3 and store.known_rows(eval_rows) == 1
    assert store.segment_values(eval_rows)["ref_logps"][0] == -9.0 and store.segment_values(train_rows)["ref_logps"][1] == -2.0
    assert store.rows_needed(train_rows, first_rows=4).tolist() == [3]


MERGE_SCRIPT = textwrap.dedent('''
    import os, sys, torch, torch.multiprocessing as mp

    def run(rank, port):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                          WORLD_SIZE="2")
        from accelerate import Accelerator
        from kto_plugin.training.reference_store import ReferenceStore
        accelerator = Accelerator(cpu=True)
        store = ReferenceStore(("ref_logps",))
        segment = store.add_segment("train", "k", 5, None)
        # rank 0 met rows 0 and 2, rank 1 rows 2 and 3 (row 2 twice, as an uneven last batch repeats rows)
        rows, values = ([0, 2], [-1.0, -3.0]) if rank == 0 else ([2, 3], [-3.5, -4.0])
        store.record(torch.tensor(rows), {"ref_logps": torch.tensor(values)})
        store.merge_ranks(accelerator)
        print(f"rank {rank}: {store.segment_values(segment)['ref_logps'].tolist()}\\n", end="", flush=True)
        accelerator.wait_for_everyone()
        torch.distributed.destroy_process_group()  # a rank that left with gloo's threads running aborted (SIGABRT)

    if __name__ == "__main__":
        mp.spawn(run, args=(int(sys.argv[1]),), nprocs=2)
''')


def test_two_ranks_merge_what_each_computed_through_the_process_group(tmp_path):
    from helpers import run_rank_script

    output = run_rank_script(tmp_path, "merge_ranks", MERGE_SCRIPT, timeout=300)
    for rank in (0, 1):  # both ranks hold every value either computed; row 4, met by neither, stays unknown
        assert f"rank {rank}: [-1.0, nan, -3.25, -4.0, nan]" in output


@pytest.mark.stack("py312")  # not about the Axolotl version; bitsandbytes' CPU backend on one stack (CI time)
def test_qlora_on_a_cpu_trains_the_same_with_the_cache(axolotl, tmp_path):
    """4-bit weights on a CPU: a reference pass before training, in eval mode, left bitsandbytes' CPU backend in a
    kernel without autograd (grad_norm 0.248 where 0.383 is right, no error), so the cache was off there. Filled in
    the steps it computes what `kto_ref_cache: off` does, gradients included."""
    qlora = dict(adapter="qlora", load_in_4bit=True, lr_scheduler="constant", max_steps=2)
    cached_output, cached = train(tmp_path, "cached", **qlora)
    _, plain = train(tmp_path, "plain", kto_ref_cache="off", **qlora)
    assert "KTO reference cache: built for the train split" in cached_output
    assert len(cached) == len(plain) == 2
    assert_same_steps(cached, plain, keys=("loss", "grad_norm", "kl", "rewards/chosen"))
