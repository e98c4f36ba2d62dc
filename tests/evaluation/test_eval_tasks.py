"""The project's lm-eval tasks: found by lm-eval, generated from user data, and measuring preference."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import REPO_ROOT, write_jsonl

from kto_plugin.cli import kto
from kto_plugin.evaluation.lm_eval_tasks.utils import score_answer

EVAL_DIR = REPO_ROOT / "kto_plugin" / "evaluation" / "lm_eval_tasks"
SHIPPED = ["kto_sample_en_preference", "kto_sample_en_rules", "kto_sample_zh_preference", "kto_sample_zh_rules"]


def test_every_shipped_task_yaml_is_found_by_lm_eval():
    from lm_eval.tasks import TaskManager

    yaml_tasks = sorted(path.stem for path in EVAL_DIR.glob("*.yaml"))
    assert yaml_tasks == sorted(SHIPPED)
    known = set(TaskManager(include_path=str(EVAL_DIR)).all_tasks)
    assert set(yaml_tasks) <= known  # a YAML that fails to parse would be missing here


def test_shipped_tasks_are_what_make_eval_tasks_writes(tmp_path):
    for language in ("en", "zh"):
        result = CliRunner().invoke(kto, ["make-eval-tasks", f"kto_plugin://kto-sample-{language}",
                                          "--name", f"kto_sample_{language}", "--output", str(tmp_path)])
        assert result.exit_code == 0, result.output
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(path.name for path in EVAL_DIR.iterdir() if path.name not in ("__pycache__", "__init__.py"))
    _, mismatch, errors = filecmp.cmpfiles(tmp_path, EVAL_DIR, written, shallow=False)
    assert mismatch == [] and errors == []


def test_tasks_from_user_data_with_custom_fields(tmp_path):
    from lm_eval.tasks import TaskManager

    data = write_jsonl(tmp_path / "mine.jsonl", [
        {"q": "Refund?", "a": "Within 5 days, or store credit today.", "ok": "good"},
        {"q": "Refund?", "a": "No.", "ok": "bad"},
        {"q": "Refund?", "a": "Figure it out.", "ok": "bad"},
        {"q": "Hours?", "a": "9 to 5.", "ok": "good"},
    ])
    result = CliRunner().invoke(kto, ["make-eval-tasks", str(data), "--name", "kto_mine", "--output",
                                      str(tmp_path / "tasks"), "--field", "query=q", "--field", "response=a",
                                      "--field", "label=ok"])
    assert result.exit_code == 0, result.output
    assert "kto_mine_preference: 2 documents" in result.output and "kto_mine_rules: 2 documents" in result.output
    docs = [json.loads(line) for line in (tmp_path / "tasks" / "kto_mine_preference.jsonl").read_text().splitlines()]
    assert {doc["rejected"] for doc in docs} == {"No.", "Figure it out."}
    assert {"kto_mine_preference", "kto_mine_rules"} <= set(TaskManager(include_path=str(tmp_path / "tasks")).all_tasks)


def test_data_without_both_labels_for_any_prompt_is_refused(tmp_path):
    data = write_jsonl(tmp_path / "one.jsonl", [{"query": "a", "response": "b", "label": True}])
    result = CliRunner().invoke(kto, ["make-eval-tasks", str(data), "--name", "kto_x", "--output", str(tmp_path / "t")])
    assert result.exit_code != 0 and "both an accepted and a rejected answer" in result.output


@pytest.mark.parametrize("answer,failed", [
    ("I'm sorry. You can get a refund or store credit.", set()),
    ("", {"not_empty", "offers_alternative"}),
    ("Honestly, this is obvious. Click reset.", {"no_insult", "offers_alternative"}),
    ("I guarantee 100% it will arrive tomorrow.", {"no_absolute_promise", "offers_alternative"}),
    ("这都不知道？我保证明天到。", {"no_insult", "no_absolute_promise", "offers_alternative"}),
    ("可以退款，或者换成店铺余额。", set()),
])
def test_generation_rules(answer, failed):
    scores = score_answer(answer)
    assert {rule for rule, value in scores.items() if value == 0} == failed


def test_unknown_task_lists_the_closest_names():
    from lm_eval.tasks import TaskManager

    from kto_plugin.evaluation.harness import check_task_names

    with pytest.raises(ValueError) as err:
        check_task_names(TaskManager(include_path=str(EVAL_DIR)), ["kto_sample_en_preferense"])
    assert "closest: kto_sample_en_preference" in str(err.value)


def sft_toward_accepted(base: Path, output: Path, steps: int = 200) -> Path:
    """A copy of the tiny model trained with plain next-token loss on the accepted answers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kto_plugin.embedded.samples import sample_dataset_path

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    rows = [json.loads(line) for line in sample_dataset_path("kto-sample-en").read_text().splitlines()]
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": row["query"]},
                                            {"role": "assistant", "content": row["response"]}], tokenize=False)
             for row in rows if row["label"]]
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    torch.manual_seed(0)
    model.train()
    for step in range(steps):
        batch = tokenizer(texts[(step * 8) % len(texts):][:8], return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output


def test_preference_task_scores_a_model_trained_toward_accepted_answers_higher(tmp_path, tiny_model):
    from axolotl.utils.dict import DictDefault

    from kto_plugin.evaluation.harness import evaluate_run

    tuned = sft_toward_accepted(tiny_model, tmp_path / "run")
    cfg = DictDefault({"base_model": str(tiny_model), "output_dir": str(tuned),
                       "kto_eval_tasks": ["kto_sample_en_preference"], "kto_eval_limit": 150,
                       "kto_eval_batch_size": 32})
    eval_dir = evaluate_run(cfg)
    results = json.loads((eval_dir / "results.json").read_text())
    base_acc = results["base"]["results"]["kto_sample_en_preference"]["acc,none"]
    tuned_acc = results["tuned"]["results"]["kto_sample_en_preference"]["acc,none"]
    assert tuned_acc > base_acc + 0.1, (base_acc, tuned_acc)
    report = (eval_dir / "report.md").read_text()
    assert "| task | metric | base | tuned | change |" in report
    assert f"| kto_sample_en_preference | acc | {base_acc:.4f} | {tuned_acc:.4f} | {tuned_acc - base_acc:+.4f} |" in report


def test_adapter_for_another_base_model_is_named(tmp_path, tiny_model):
    from axolotl.utils.dict import DictDefault
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from kto_plugin.embedded.tiny_model import build_tiny_model
    from kto_plugin.evaluation.harness import evaluate_run

    other = build_tiny_model(tmp_path / "wider", hidden_size=96)
    adapter = get_peft_model(AutoModelForCausalLM.from_pretrained(other),
                             LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    adapter.save_pretrained(tmp_path / "run")
    cfg = DictDefault({"base_model": str(tiny_model), "output_dir": str(tmp_path / "run"),
                       "kto_eval_tasks": ["kto_sample_en_preference"]})
    with pytest.raises(ValueError) as err:
        evaluate_run(cfg)
    assert f"does not match the base model {tiny_model}" in str(err.value)
