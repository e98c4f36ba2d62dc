"""Write lm-eval tasks from KTO feedback: a preference task and a rule-scored generation task.

`<name>_preference`: for every prompt that has both an accepted and a rejected answer, one
document per (accepted, rejected) pair; the model is right when it gives the accepted
answer the higher log-likelihood (`acc`; `acc_norm` divides by the answer's length).

`<name>_rules`: every distinct prompt once; the model's answer is scored by the rules in
`lm_eval_tasks/utils.py` (`not_empty`, `no_absolute_promise`, `no_insult`,
`offers_alternative`), each reported as the share of answers that satisfy it.

The prompt is the last user message of the example (system prompt and history are not
part of the document); run the tasks with `--apply_chat_template` so the model sees it
in its chat format.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import yaml

from kto_plugin.data.formats import FORMATS, DroppedRow
from kto_plugin.data.labels import parse_label
from kto_plugin.errors import DataError

PREFERENCE_TEMPLATE = {
    "output_type": "multiple_choice",
    "custom_dataset": "!function utils.load_docs",
    "test_split": "test",
    "doc_to_text": "{{query}}",
    "doc_to_choice": "{{[accepted, rejected]}}",
    "doc_to_target": 0,
    "target_delimiter": "",
    "metric_list": [
        {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
    ],
    "metadata": {"version": 1.0},
}
RULES_TEMPLATE = {
    "output_type": "generate_until",
    "custom_dataset": "!function utils.load_docs",
    "test_split": "test",
    "doc_to_text": "{{query}}",
    "doc_to_target": "",
    "generation_kwargs": {"until": ["<|im_end|>", "<|eot_id|>", "</s>"], "max_gen_toks": 128, "do_sample": False},
    "process_results": "!function utils.process_results_rules",
    "metric_list": [
        {"metric": rule, "aggregation": "mean", "higher_is_better": True}
        for rule in ("not_empty", "no_absolute_promise", "no_insult", "offers_alternative")
    ],
    "metadata": {"version": 1.0},
}


def examples_by_prompt(rows: list[dict], format_name: str, fields: dict | None = None) -> dict[str, dict]:
    """{last user message: {"accepted": [...], "rejected": [...]}} in first-seen order."""
    fmt = FORMATS[format_name]
    settings = fmt.field_settings(fields or {})
    grouped: dict[str, dict] = {}
    for row in rows:
        result = fmt.to_examples(row, settings)
        if isinstance(result, DroppedRow):
            continue
        for example in result:
            user_turns = [message["content"] for message in example.prompt_messages if message["role"] == "user"]
            if not user_turns or not example.completion.strip():
                continue
            entry = grouped.setdefault(user_turns[-1], {"accepted": [], "rejected": []})
            side = "accepted" if parse_label(example.label) else "rejected"
            if example.completion not in entry[side]:
                entry[side].append(example.completion)
    return grouped


def preference_docs(grouped: dict[str, dict]) -> list[dict]:
    return [
        {"query": query, "accepted": accepted, "rejected": rejected}
        for query, answers in grouped.items()
        for accepted in answers["accepted"]
        for rejected in answers["rejected"]
    ]


def _yaml_text(task: str, template: dict, data_file: str) -> str:
    config = {"task": task, **template, "dataset_kwargs": {"data_file": data_file}}
    text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    # `!function` is a YAML tag lm-eval resolves; safe_dump would quote it as a string.
    return text.replace("'!function utils.load_docs'", "!function utils.load_docs").replace(
        "'!function utils.process_results_rules'", "!function utils.process_results_rules")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def write_eval_tasks(rows: list[dict], format_name: str, name: str, output_dir: Path,
                     fields: dict | None = None) -> dict[str, int]:
    """Write `<name>_preference` and `<name>_rules` into `output_dir`; return docs per task."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    grouped = examples_by_prompt(rows, format_name, fields)
    preference = preference_docs(grouped)
    prompts = [{"query": query} for query in grouped]
    if not preference:
        raise DataError(
            "no prompt has both an accepted and a rejected answer, so no preference task can be made"
        )
    counts = {}
    for task, template, docs in ((f"{name}_preference", PREFERENCE_TEMPLATE, preference),
                                 (f"{name}_rules", RULES_TEMPLATE, prompts)):
        _write_jsonl(output_dir / f"{task}.jsonl", docs)
        (output_dir / f"{task}.yaml").write_text(_yaml_text(task, template, f"{task}.jsonl"), encoding="utf-8")
        counts[task] = len(docs)
    with resources.as_file(resources.files("kto_plugin.evaluation.lm_eval_tasks") / "utils.py") as source:
        shutil.copyfile(source, output_dir / "utils.py")
    return counts
