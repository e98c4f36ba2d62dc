"""The real `axolotl train` on the shipped quickstart config: adapter saved, metrics logged, rewards moved."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from helpers import train_with_axolotl

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "yaml_examples" / "quickstart.yaml"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def completion_logps(model, tokenizer, prompt: str, completion: str) -> float:
    """Sum of log-probabilities of the completion tokens given the prompt."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    input_ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits[0, :-1].float()
    targets = input_ids[0, 1:]
    logps = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]
    return float(logps[len(prompt_ids) - 1:].sum())


@pytest.fixture(scope="module")
def trained_run(axolotl, tmp_path_factory, tiny_model):
    run_dir = tmp_path_factory.mktemp("quickstart")
    weights = tiny_model / "model.safetensors"
    weights_before = sha256(weights)
    # The shipped quickstart, capped at 60 steps, written to a temp folder.
    # (At 5x its learning rate the random tiny model's run diverged differently run to run.)
    config = yaml.safe_load(QUICKSTART.read_text())
    # The plumbing on the random tiny model (the warm model's behaviour: test_quickstart_alignment.py).
    # The English and Chinese sets only: the refund desk's 768 rows would add minutes of reference pass and evaluation.
    config["datasets"] = [entry for entry in config["datasets"] if "refunds" not in entry["path"]]
    config.update(base_model=str(tiny_model), output_dir=str(run_dir / "out"), dataset_prepared_path=str(run_dir / "prepared"),
                  max_steps=60, eval_steps=30,
                  kto_eval_post_train=True, kto_eval_limit=20,
                  kto_eval_tasks=["kto_sample_en_preference", "kto_sample_zh_rules"])
    result = train_with_axolotl(run_dir, "quickstart", config, "--launcher", "accelerate")  # as a user types it
    return run_dir / "out", result, weights_before


def test_adapter_is_saved(trained_run):
    out, _, _ = trained_run
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "LORA"


def test_kto_metrics_are_logged(trained_run):
    out, result, _ = trained_run
    records = [json.loads(line) for line in (out / "kto_metrics.jsonl").read_text().splitlines()]
    train = [record for record in records if "rewards/margins" in record]
    evals = [record for record in records if "eval_rewards/margins" in record]
    assert len(train) >= 5 and len(evals) >= 2
    for key in ("loss", "kl", "rewards/chosen", "rewards/rejected"):
        assert key in train[-1]
    assert evals[0]["step"] == 0 and evals[0]["eval_rewards/margins"] == 0
    assert "KTO data (train): read 480 rows" in result.stdout + result.stderr
    # the eval split's accepted answers are logged for the held-out guard, which warned exactly where its records say
    assert all("eval_nll/chosen" in record and "eval_nll_ref/chosen" in record for record in evals)
    from kto_plugin.training.displacement import first_held_out_displacement

    found = first_held_out_displacement(records)
    warning = "KTO: the held-out accepted answers are falling at step"
    output = result.stdout + result.stderr
    assert (f"{warning} {found['step']}:" in output) if found else (warning not in output)


def test_training_moves_rewards_toward_desirable_and_keeps_the_reference(trained_run, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kto_plugin.data.formats import FORMATS
    from kto_plugin.data.rendering import render_example
    from kto_plugin.embedded.samples import sample_dataset_path

    out, _, weights_before = trained_run
    assert sha256(tiny_model / "model.safetensors") == weights_before

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    policy = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(out)).eval()

    fmt = FORMATS["query_response"]
    rows = [json.loads(line) for name in ("kto-sample-en", "kto-sample-zh")
            for line in sample_dataset_path(name).read_text(encoding="utf-8").splitlines()]
    rewards = {True: [], False: []}
    for row in rows:
        (example,) = fmt.to_examples(row, fmt.field_settings(None))
        prompt, completion = render_example(tokenizer, example.prompt_messages, example.completion)
        implied = completion_logps(policy, tokenizer, prompt, completion) - completion_logps(
            reference, tokenizer, prompt, completion)
        rewards[bool(example.label)].append(implied)
    desirable = sum(rewards[True]) / len(rewards[True])
    undesirable = sum(rewards[False]) / len(rewards[False])
    assert desirable > undesirable, (desirable, undesirable)

    # The reference the trainer used is the base model with the adapter switched off.
    probe = tokenizer("<|im_start|>user\n退款要多久？<|im_end|>\n", return_tensors="pt")["input_ids"]
    with torch.no_grad(), policy.disable_adapter():
        assert torch.allclose(policy(input_ids=probe).logits, reference(input_ids=probe).logits)
        # and the trained adapter does change the outputs
    with torch.no_grad():
        assert not torch.allclose(policy(input_ids=probe).logits, reference(input_ids=probe).logits)


def test_summary_prints_margins_before_and_after(trained_run):
    from click.testing import CliRunner

    from kto_plugin.cli import kto

    out, _, _ = trained_run
    result = CliRunner().invoke(kto, ["summary", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "kto_metrics.jsonl").read_text().splitlines()]
    after = [record for record in records if "eval_rewards/margins" in record][-1]["eval_rewards/margins"]
    assert f"+0.0000 before training -> {after:+.4f} after" in " ".join(result.output.split())
    # the accepted answers' likelihood, policy and reference, logged at every logging step and in the summary
    logged = [record for record in records if "loss" in record]
    assert logged and all(record["nll/chosen"] > 0 and record["nll_ref/chosen"] > 0 for record in logged)
    assert "NLL/token, accepted" in result.output and "the reference's" in result.output


def test_post_train_evaluation_writes_base_and_tuned_results(trained_run):
    out, _, _ = trained_run
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["tasks"] == ["kto_sample_en_preference", "kto_sample_zh_rules"]
    for model in ("base", "tuned"):
        assert set(results[model]["results"]) == {"kto_sample_en_preference", "kto_sample_zh_rules"}
    assert results["tuned"]["config"]["model_args"]["peft"] == str(out)
    assert "peft" not in results["base"]["config"]["model_args"]
    report = (out / "eval" / "report.md").read_text().splitlines()
    assert "| task | metric | base | tuned | change |" in report
    rows = [line for line in report if line.startswith("| kto_")]
    assert {row.split(" | ")[1] for row in rows} == {
        "acc", "acc_norm", "not_empty", "no_absolute_promise", "no_insult", "offers_alternative"}


def test_kto_eval_command_reevaluates_a_finished_run(trained_run):
    from click.testing import CliRunner

    from kto_plugin.cli import kto

    out, _, _ = trained_run
    (out / "eval" / "report.md").unlink()
    result = CliRunner().invoke(kto, ["eval", str(out.parent / "quickstart.yaml")])
    assert result.exit_code == 0, result.output
    assert "| task | metric | base | tuned | change |" in result.output
    assert (out / "eval" / "report.md").exists()
