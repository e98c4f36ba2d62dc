"""Two ranks on CPU (gloo) through Axolotl's own launcher: DDP (one node and two), DeepSpeed ZeRO-2 and ZeRO-3, FSDP2.

Each two-process run (micro-batch 1, accumulation 2) has the same global batch as the
one-process reference (micro-batch 2, accumulation 2), so the plugin's KL estimate (global
sum over global count), its logged metrics and the trained adapter must agree with the
reference up to float round-off in the gradient all-reduce.
"""

from __future__ import annotations

import re

import pytest
import yaml
from helpers import REPO_ROOT, base_config, free_port, read_metrics_file, train_with_axolotl, with_lora

STEPS = 4
# Observed differences are ~1e-5 on the logged values and ~1e-6 on adapter weights (fp32
# sums in another order); a rank that trained alone, or a KL over one rank's examples,
# moves them by 1e-3 and more.
METRIC_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-4
COMPARED = ("loss", "kl", "kl_raw", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected", "nll/chosen",
            "nll_ref/chosen")


def kto_config(tmp_path, name: str, **overrides) -> dict:
    config = with_lora(base_config(
        tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
        seed=42, max_steps=STEPS, learning_rate=0.002, lr_scheduler="constant", kto_auto_weights=True,
        kto_sft_weight=0.5,  # the SFT term's per-example normaliser must hold across ranks as the KTO terms do,
        kto_sft_gce_q=0.5,  # and its token losses' sums, returned beside the log-probs from the output layer's call,
        kto_sft_gce_max_reference_nll=100.0,  # on every row (the random model's sit at ~12 nats a token, over 0.5)
        # the paper's KL z0, whose pairs span the global batch across ranks (the default reward mean: its own test)
        kto_reference_point="kl",
        output_dir=str(tmp_path / name),
    ))
    config.update(overrides)
    return config


def two_ranks(tmp_path, name: str, config: dict, *extra: str):
    return train_with_axolotl(tmp_path, name, config, "--launcher", "torchrun", *extra, "--", "--nproc_per_node", "2")


def step_records(output_dir) -> list[dict]:
    return [record for record in read_metrics_file(output_dir) if "kl_raw" in record]


def adapter(output_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(str(output_dir / "adapter_model.safetensors"))


def max_weight_difference(first: dict, second: dict) -> float:
    assert first.keys() == second.keys()
    return max(float((first[key] - second[key]).abs().max()) for key in first)


@pytest.fixture(scope="module")
def reference(axolotl, tmp_path_factory, tiny_model):
    tmp_path = tmp_path_factory.mktemp("one_rank")
    train_with_axolotl(tmp_path, "one", kto_config(tmp_path, "one", micro_batch_size=2, gradient_accumulation_steps=2),
          "--launcher", "python")
    return tmp_path / "one"


def assert_same_run(output_dir, reference_dir, adapters: bool = True):
    records, expected = step_records(output_dir), step_records(reference_dir)
    assert [r["step"] for r in records] == [r["step"] for r in expected] == list(range(1, STEPS + 1))
    for record, reference_record in zip(records, expected):
        assert record["epoch"] == reference_record["epoch"]  # the ranks shared the data, not each all of it
        # a class absent from a whole step logs nothing for it, in both runs alike
        assert {key for key in COMPARED if key in record} == {key for key in COMPARED if key in reference_record}
        for key in COMPARED:
            if key in reference_record:
                assert record[key] == pytest.approx(reference_record[key], abs=METRIC_TOLERANCE), (key, record)
    assert any(record["kl_raw"] != 0 for record in records)
    if adapters:
        assert max_weight_difference(adapter(output_dir), adapter(reference_dir)) < WEIGHT_TOLERANCE


def two_nodes(tmp_path, name: str, config: dict) -> str:
    """Two "nodes" on this machine (torchrun --nnodes 2, one process each), started together, each with its own
    output_dir, dataset_prepared_path and reference cache folder, as two machines without a shared disk."""
    import subprocess

    from kto_plugin.orchestration.axolotl_jobs import axolotl_command, axolotl_environment

    port = free_port()
    processes = []
    for node in (0, 1):
        folder = tmp_path / f"node{node}"
        folder.mkdir()
        node_config = {**config, "output_dir": str(folder / name), "dataset_prepared_path": str(folder / "prepared"),
                       "kto_ref_cache_dir": str(folder / "ref_cache")}
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(node_config), encoding="utf-8")
        command = axolotl_command(["train", str(path), "--launcher", "torchrun", "--", "--nnodes", "2",
                                   "--node_rank", str(node), "--nproc_per_node", "1", "--master_addr", "127.0.0.1",
                                   "--master_port", str(port)])
        processes.append(subprocess.Popen(command, cwd=folder, env=axolotl_environment(), text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes), "\n".join(output[-4000:] for output in outputs)
    return "\n".join(outputs)


@pytest.mark.stack("py312")  # DDP across "nodes"; py311 runs DDP on one node (below): CI time
def test_two_nodes_without_a_shared_disk_match_one_rank(tmp_path, reference):
    """Each node wrote its own reference cache (it failed: rank 0 wrote, node 1 could not read it back) and its
    own prepared rows; the run is the one-process run with the same global batch."""
    config = kto_config(tmp_path, "two", micro_batch_size=1, gradient_accumulation_steps=2)
    output = two_nodes(tmp_path, "two", config)
    assert output.count("KTO reference cache: built for the train split") == 2  # one line from each rank
    for node in (0, 1):
        assert len(list((tmp_path / f"node{node}" / "ref_cache").glob("*.safetensors"))) == 1
    assert "KTO: 2 processes, DDP" in output and "output layer on completion tokens only, in chunks" in output
    assert_same_run(tmp_path / "node0" / "two", reference)


@pytest.mark.parametrize("deepspeed", [
    pytest.param(None, id="ddp", marks=pytest.mark.stack("py311")),  # py312: DDP across two "nodes" (above)
    pytest.param("kto_plugin:zero2", id="zero2", marks=pytest.mark.stack("py311")),  # py312: the ZeRO-2 recipe (below)
])
def test_two_cpu_ranks_match_one_rank_with_the_same_global_batch(deepspeed, tmp_path, reference):
    overrides = {"deepspeed": deepspeed} if deepspeed else {}
    config = kto_config(tmp_path, "two", micro_batch_size=1, gradient_accumulation_steps=2,
                        save_strategy="steps", save_steps=STEPS, kto_ref_cache_dir=str(tmp_path / "ref_cache"),
                        **overrides)
    result = two_ranks(tmp_path, "two", config)
    output = result.stdout + result.stderr
    # the reference pass ran once over both ranks and rank 0 wrote one file per split, which both then read
    assert output.count("KTO reference cache: built for the train split") == 2  # one line from each rank
    assert len(list((tmp_path / "ref_cache").glob("*.safetensors"))) == 1
    assert "KTO: 2 CPU ranks (gloo)" in output
    assert ("KTO: 2 processes, DeepSpeed ZeRO-2" if deepspeed else "KTO: 2 processes, DDP") in output
    assert "output layer on completion tokens only, in chunks" in output
    # class weights from the whole training split on both ranks, not from one rank's half
    assert output.count("KTO class weights (kto_auto_weights): n_desirable=107, n_undesirable=160") == 2
    # the DeepSpeed engine trained and saved (its own checkpoint layout), or DDP did
    checkpoint = tmp_path / "two" / f"checkpoint-{STEPS}"
    assert (checkpoint / f"global_step{STEPS}").is_dir() == bool(deepspeed)
    assert_same_run(tmp_path / "two", reference)


@pytest.mark.stack("py312")  # py311 runs ZeRO-3 with full fine-tuning (below): CI time
def test_zero3_two_ranks_save_resume_and_a_loadable_adapter(tmp_path, reference):
    config = kto_config(tmp_path, "zero3", micro_batch_size=1, gradient_accumulation_steps=2,
                        deepspeed="kto_plugin:zero3", save_strategy="steps", save_steps=2,
                        kto_ref_cache_dir=str(tmp_path / "ref_cache"))
    result = two_ranks(tmp_path, "zero3", config)
    output = result.stdout + result.stderr
    # the output layer, partitioned by ZeRO-3, applied in chunks inside its own (gathering) call
    assert "output layer on completion tokens only, in chunks" in output
    assert "full [batch, sequence, vocabulary] logits are computed instead" not in output
    # the reference cache on at stage 3: keyed on weights gathered one at a time, filled in the steps
    assert output.count("KTO reference cache: built for the train split") == 2
    assert "KTO reference cache: 16 of 267 rows of the train split kept" in output  # 4 steps x global batch 4
    output_dir = tmp_path / "zero3"
    assert_same_run(output_dir, reference)
    uninterrupted = adapter(output_dir)
    assert (output_dir / "checkpoint-2" / "global_step2").is_dir()  # a DeepSpeed checkpoint

    # resume from the step-2 checkpoint as after a crash: the end state is the same run's
    (output_dir / "adapter_model.safetensors").unlink()
    two_ranks(tmp_path, "zero3", config, "--resume-from-checkpoint", str(output_dir / "checkpoint-2"))
    assert max_weight_difference(adapter(output_dir), uninterrupted) < 1e-6
    assert [r["step"] for r in step_records(output_dir)] == list(range(1, STEPS + 1))

    # the saved adapter is whole (ZeRO-3 gathered it) and loads onto the base model
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from kto_plugin.embedded.cache import tiny_model_dir

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir()), output_dir)
    loaded = {name: parameter for name, parameter in model.named_parameters() if "lora_" in name}
    assert len(loaded) == len(uninterrupted) and all(p.numel() > 0 for p in loaded.values())


def full_config(tmp_path, name: str, **overrides) -> dict:
    """`kto_config` without the adapter: every weight trained, the output layer's included."""
    config = kto_config(tmp_path, name, **overrides)
    for key in ("adapter", "lora_r", "lora_alpha", "lora_dropout", "lora_target_linear"):
        config.pop(key)
    return config


@pytest.fixture(scope="module")
def full_reference(axolotl, tmp_path_factory, tiny_model):
    """The one-process full fine-tune (micro-batch 2 x accumulation 2) that two ranks at micro-batch 1 must match."""
    tmp_path = tmp_path_factory.mktemp("one_rank_full")
    train_with_axolotl(tmp_path, "one", full_config(tmp_path, "one", micro_batch_size=2, gradient_accumulation_steps=2,
                                                    kto_ref_cache_dir=str(tmp_path / "ref_cache")))
    return tmp_path / "one"


def assert_same_full_run(output_dir, reference_dir, output: str):
    """The steps and the saved weights of the one-process run, with chunked log-probs and the reference cache on:
    its pass ran once the trainer had wrapped the model, spread over the ranks, and every rank kept the values."""
    from safetensors.torch import load_file

    assert "output layer on completion tokens only, in chunks" in output
    assert "full [batch, sequence, vocabulary] logits are computed instead" not in output
    assert output.count("KTO reference cache: built for the train split") == 2
    assert output.count("the train split's pass runs now that the weights are sharded over the ranks") == 2
    assert "KTO reference cache: 16 of 267 rows of the train split kept" in output  # 4 steps x global batch 4
    assert_same_run(output_dir, reference_dir, adapters=False)
    trained, expected = load_file(str(output_dir / "model.safetensors")), load_file(str(reference_dir / "model.safetensors"))
    assert "lm_head.weight" in expected or "model.embed_tokens.weight" in expected
    for saved in (trained, expected):  # FSDP's full state dict names a tied output layer's weight twice
        if "lm_head.weight" in saved and "model.embed_tokens.weight" in saved:
            assert (saved.pop("lm_head.weight") == saved["model.embed_tokens.weight"]).all()
    assert max_weight_difference(trained, expected) < WEIGHT_TOLERANCE


@pytest.mark.stack("py311")  # py312 trains the shipped full ZeRO-3 recipe on two ranks (below)
def test_zero3_full_fine_tuning_on_two_ranks_matches_one_rank_with_the_fast_paths(tmp_path, full_reference):
    """Full fine-tuning under ZeRO-3: the partitioned output layer is gathered for the chunked path inside its own
    call and again before its backward, and its weight gradient is reduced like any other; the reference pass runs
    on the engine's model, whose forward gathers each layer: the steps and the saved weights are the one-process
    run's."""
    config = full_config(tmp_path, "two", micro_batch_size=1, gradient_accumulation_steps=2,
                         deepspeed="kto_plugin:zero3", kto_ref_cache_dir=str(tmp_path / "ref_cache"))
    result = two_ranks(tmp_path, "two", config)
    output = result.stdout + result.stderr
    assert "KTO: 2 processes, DeepSpeed ZeRO-3" in output
    assert_same_full_run(tmp_path / "two", full_reference, output)


@pytest.mark.stack("py311")  # py312 trains FSDP2 with LoRA (below)
def test_fsdp2_full_fine_tuning_on_two_cpu_ranks_matches_one_rank_with_the_fast_paths(tmp_path, full_reference):
    """Full fine-tuning under FSDP2: the reference pass, which ran before FSDP wrapped the model (where ranks other
    than the first may hold no weights), runs on the sharded model at the start of training. The checkpoint and the
    final save gather the weights on every rank (they failed in a gloo collective: "192000 vs 4096" bytes, rank 0
    gathering alone, accelerate having forgotten FSDP on CPU ranks)."""
    config = full_config(tmp_path, "two", micro_batch_size=1, gradient_accumulation_steps=2,
                         kto_ref_cache_dir=str(tmp_path / "ref_cache"), save_strategy="steps", save_steps=STEPS,
                         **FSDP2)
    result = two_ranks(tmp_path, "two", config)
    output = result.stdout + result.stderr
    assert "KTO: 2 processes, FSDP2" in output
    assert (tmp_path / "two" / f"checkpoint-{STEPS}").is_dir()
    assert_same_full_run(tmp_path / "two", full_reference, output)


@pytest.mark.stack("py312")  # slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
@pytest.mark.parametrize("name", ["qwen2.5-7b-lora-zero2", "qwen2.5-7b-full-zero3", "qwen2.5-7b-full-fsdp2"])
def test_multi_gpu_examples_train_on_two_cpu_ranks(axolotl, name, tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM

    config = yaml.safe_load((REPO_ROOT / "yaml_examples" / f"{name}.yaml").read_text())
    # the example as shipped, on the tiny model and the sample data, two steps, no GPU
    config.update(
        base_model="kto_plugin://tiny-model", datasets=[{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
        bf16=False, tf32=False, optimizer="adamw_torch", sequence_len=256, max_steps=2, micro_batch_size=1,
        gradient_accumulation_steps=2, logging_steps=1, save_steps=2, eval_steps=2, output_dir=str(tmp_path / "out"),
        dataset_prepared_path=str(tmp_path / "prepared"),
    )
    if "fsdp_config" in config:
        config["fsdp_config"]["transformer_layer_cls_to_wrap"] = "LlamaDecoderLayer"  # the tiny model's layer class
    result = two_ranks(tmp_path, "example", config)
    output = result.stdout + result.stderr
    if "deepspeed" in config:
        stage = config["deepspeed"].removeprefix("kto_plugin:zero")
        assert f"KTO: 2 processes, DeepSpeed ZeRO-{stage}" in output
        assert (tmp_path / "out" / "checkpoint-2" / "global_step2").is_dir()
    else:
        assert "KTO: 2 processes, FSDP2" in output
        assert (tmp_path / "out" / "checkpoint-2").is_dir()
    assert "output layer on completion tokens only, in chunks" in output
    # the reference cache on (this session's cache folder: an earlier run of the same rows may have filled some)
    assert re.search(r"KTO reference cache: (built|rebuilt|hit) for the train split|"
                     r"KTO reference cache: [\d,]+ of [\d,]+ rows of the train split known", output), output[-3000:]
    steps = step_records(tmp_path / "out")
    assert [record["step"] for record in steps] == [1, 2]
    if config.get("adapter") == "lora":
        assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    else:  # ZeRO-3 or FSDP2 gathered the full weights for the save: they load and were trained
        trained = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
        base = AutoModelForCausalLM.from_pretrained(tiny_model)
        assert any(not (p == q).all() for p, q in zip(trained.parameters(), base.parameters()))


FSDP2 = {"fsdp_version": 2, "fsdp_config": {"auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                           "transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
                                           "state_dict_type": "FULL_STATE_DICT", "reshard_after_forward": True}}


@pytest.mark.stack("py312")  # Axolotl 0.19 trains the same steps but saves the adapter without PEFT's key prefix
def test_fsdp2_lora_on_two_cpu_ranks_matches_one_rank(tmp_path, reference):
    """Axolotl's FSDP2 asked for a GPU on every rank (its device mesh is built for "cuda": "Found no NVIDIA
    driver"), and accelerate then dropped FSDP on CPU ranks and trained plain DDP without a word; on CPU ranks the
    plugin builds the mesh for the CPU and keeps FSDP on, and the sharded run is the one-process run."""
    config = kto_config(tmp_path, "two", micro_batch_size=1, gradient_accumulation_steps=2,
                        kto_ref_cache_dir=str(tmp_path / "ref_cache"), **FSDP2)
    result = two_ranks(tmp_path, "two", config)
    output = result.stdout + result.stderr
    assert "KTO: 2 processes, FSDP2" in output
    assert output.count("KTO reference cache: built for the train split") == 2  # filled in the steps, where FSDP2
    assert "KTO reference cache: 16 of 267 rows of the train split kept" in output  # has gathered the weights
    # the output layer, sharded by FSDP2, applied in chunks inside the model's own (gathering) call
    assert "output layer on completion tokens only, in chunks" in output
    assert "full [batch, sequence, vocabulary] logits are computed instead" not in output
    assert_same_run(tmp_path / "two", reference)


@pytest.mark.stack("py311")  # slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
def test_reward_mean_reference_point_on_two_ranks_is_the_one_rank_run_and_resumes_exactly(axolotl, tmp_path):
    """`kto_reference_point: reward_mean` (training/reference_point.py): z0 from the global sums of earlier steps, so two
    ranks at micro-batch 1 are the one-process run at micro-batch 2; its sums are saved in the checkpoint, so a run
    resumed from step 2 ends with the uninterrupted run's adapter (a restart from zero sums would not).

    With `kto_class_balance: sampling` (training/class_sampling.py): the accepted rows (lambda_D 1.74) repeated in the
    order, which each rank builds for itself from the seed, so the two ranks must build the one process's order and the
    resumed run must continue it."""
    # ZeRO-2: transformers' plain-DDP resume on CPU ranks fails to load the optimizer ("don't know how to restore data
    # location ... cpu:0"), apart from the plugin; DeepSpeed loads its own checkpoint
    settings = dict(kto_reference_point="reward_mean", gradient_accumulation_steps=2, save_strategy="steps", save_steps=2,
                    kto_class_balance="sampling")
    train_with_axolotl(tmp_path, "one", kto_config(tmp_path, "one", micro_batch_size=2, **settings), "--launcher", "python")
    config = kto_config(tmp_path, "two", micro_batch_size=1, deepspeed="kto_plugin:zero2", **settings)
    result = two_ranks(tmp_path, "two", config)
    # 107 accepted rows weighted 1.74 times (read 187 times) and 160 rejected ones once, on each rank
    assert (result.stdout + result.stderr).count("the 107 desirable rows are weighted 1.74 times the other 160") == 2
    # and the SFT term 1.75 times as strong (187 / 107 reads of each accepted row), on both ranks as in one process
    assert "the SFT term weighs kto_sft_weight 0.5 x 1.75 (each accepted row's reads an epoch) = 0.874" in result.stdout + result.stderr
    output_dir = tmp_path / "two"
    assert_same_run(output_dir, tmp_path / "one")
    z0 = [record["kl"] for record in step_records(output_dir)]
    # no earlier rows at the first step; at the second, the first step's rows, whose log-ratios are 0 (a fresh adapter
    # is the reference); from the third on, the rows of steps the policy had moved in
    assert z0[:2] == [0, 0] and all(value != 0 for value in z0[2:]), z0
    assert all(record["kl_raw"] == record["kl"] for record in step_records(output_dir))  # not clamped

    uninterrupted = adapter(output_dir)
    (output_dir / "adapter_model.safetensors").unlink()
    two_ranks(tmp_path, "two", config, "--resume-from-checkpoint", str(output_dir / "checkpoint-2"))
    assert [record["kl"] for record in step_records(output_dir)] == pytest.approx(z0, abs=1e-6)  # 0 without the sums
    assert max_weight_difference(adapter(output_dir), uninterrupted) < 1e-6
