"""The steps of one `axolotl kto iterate` round, each writing its files in the round's folder (`iterate_folder`).

sample (answers from the round's model) -> label (a judge's scores, or a person in the studio)
-> check (the `clean` rules: duplicates, low-information answers removed, conflicting labels set
aside) -> train (`axolotl train` on the kept rows, the round's model as base and so as KTO's
reference; an adapter is merged into `merged/` for the next round) -> score (answers to the
held-out prompts, judged).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

from kto_plugin.data.feedback_files import write_text_atomically
from kto_plugin.data.label_log import Decision, LabelLog, append_rows_durably, item_key
from kto_plugin.errors import DataError
from kto_plugin.evaluation.generation import GenerationSettings, generate_answers, render_chat
from kto_plugin.evaluation.judges import labels_from_scores
from kto_plugin.orchestration.axolotl_jobs import run_axolotl_logged, train_command
from kto_plugin.orchestration.prompt_pool import PoolPrompt

ANSWERS, JUDGE_SCORES, LABELS = "answers.jsonl", "judge-scores.jsonl", "labels.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(rows: list[dict], path: Path) -> None:
    write_text_atomically("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), path)


def sample_answers(model, tokenizer, prompts: list[PoolPrompt], settings, seed: int, progress: str) -> list[dict]:
    """`answers_per_prompt` answers to each prompt, as rows `{system?, query, response}` in prompt order; `model` is a
    Transformers model or a `VLLMSampler`."""
    from kto_plugin.evaluation.vllm_sampling import VLLMSampler

    generation = GenerationSettings(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                                    seed=seed, answers_per_prompt=settings.answers_per_prompt)
    rendered = [render_chat(tokenizer, prompt.messages()) for prompt in prompts]
    if isinstance(model, VLLMSampler):
        answers = model.generate(rendered, generation, progress=progress)
    else:
        answers = generate_answers(model, tokenizer, rendered, generation, progress=progress)
    per_prompt = settings.answers_per_prompt
    return [{**prompts[index // per_prompt].to_json(), "response": answer} for index, answer in enumerate(answers)]


def judge_scores(judge, rows: list[dict], scores_path: Path, batch: int = 16) -> list[float | bool]:
    """The judge's score of every row; scores already in `scores_path` (a killed run's) are kept, the rest appended
    a batch at a time, so a kill loses at most one batch of judging and nothing is judged twice."""
    done = {entry["index"]: entry["score"] for entry in read_jsonl(scores_path) if entry["index"] < len(rows)}
    missing = [index for index in range(len(rows)) if index not in done]
    for start in range(0, len(missing), batch):
        chunk = missing[start:start + batch]
        found = judge.scores([rows[i]["query"] for i in chunk], [rows[i]["response"] for i in chunk],
                             progress=None)
        append_rows_durably(scores_path, [{"index": i, "score": score} for i, score in zip(chunk, found)])
        done.update(zip(chunk, found))
    return [done[index] for index in range(len(rows))]


def write_labels(rows: list[dict], scores: list[float | bool], threshold: float | None, labels_path: Path,
                 round_number: int) -> dict:
    """Each distinct (prompt, answer) labelled once in `labels_path` (`LabelLog`: a resume writes none twice)."""
    log = LabelLog(labels_path)
    for row, score, label in zip(rows, scores, labels_from_scores(scores, threshold)):
        log.record(Decision(row["query"], row["response"], "accept" if label else "reject", system=row.get("system"),
                            extra={"score": score, "round": round_number}))
    log.refresh()
    return {"desirable": log.counts["accepted"], "undesirable": log.counts["rejected"],
            "threshold": threshold}


def labelled_counts(labels_path: Path) -> dict:
    """Desirable, undesirable and skipped answers in a labelled file (a person's, from the studio)."""
    counts = LabelLog(labels_path).counts
    return {"desirable": counts["accepted"], "undesirable": counts["rejected"], "skipped": counts["skipped"]}


def distinct_answers(rows: list[dict]) -> set[str]:
    """The keys (`label_log.item_key`) of the distinct (prompt, answer) pairs of `rows`: what gets one label each."""
    return {item_key(row["query"], row["response"]) for row in rows}


def undecided(rows: list[dict], labels_path: Path) -> int:
    """Distinct answers of `rows` that have no decision (label or skip) in the labelled file yet."""
    return len(distinct_answers(rows) - LabelLog(labels_path).decided)


def replay_rows(earlier_label_files: list[Path], share: float, seed: int) -> list[dict]:
    """`share` of the rows the earlier rounds labelled (each round's own, not what it replayed), drawn with `seed`."""
    earlier = [row for path in earlier_label_files for row in read_jsonl(path)]
    if share <= 0 or not earlier:
        return []
    return random.Random(seed).sample(earlier, round(share * len(earlier)))


def check_labelled(labelled: list[dict], round_dir: Path) -> dict:
    """The `clean` rules on the labelled rows: kept rows to `train.jsonl`, conflicting or unusable ones to
    `review.jsonl`, every decision in `check.json`; returns the counts."""
    from kto_plugin.data.cleaning import clean_report, plan_clean
    from kto_plugin.data.feedback_examples import examples_from_file

    candidates = round_dir / "candidates.jsonl"
    write_jsonl(labelled, candidates)
    feedback, _, examples, unusable = examples_from_file(candidates, "query_response", progress=False)
    plan = plan_clean(len(feedback.rows), examples, unusable)
    kept = [feedback.rows[index] for index in plan.keep]
    write_jsonl([feedback.rows[index] for index in plan.indices("review")], round_dir / "review.jsonl")
    report = clean_report(plan, feedback.rows, {"input": str(candidates), "output": str(round_dir / "train.jsonl")})
    write_text_atomically(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", round_dir / "check.json")
    write_jsonl(kept, round_dir / "train.jsonl")
    desirable = sum(1 for row in kept if row.get("label") is True)
    if not kept:
        raise DataError(f"round {round_dir.name}: the check kept no labelled rows ({len(labelled)} checked; see "
                        f"{round_dir / 'check.json'}): sample more answers (answers_per_prompt, more prompts)")
    return {"checked": len(labelled), "kept": len(kept), "desirable": desirable, "undesirable": len(kept) - desirable,
            "removed": dict(plan.counts("removed")), "review": dict(plan.counts("review"))}


def round_config(user_config: dict, model_in: str, round_dir: Path) -> dict:
    """The user's config for one round: the round's model as `base_model` (and so as the reference), the round's
    checked rows as the only dataset, the round's folder for outputs."""
    config = {key: value for key, value in user_config.items()
              if key not in ("kto_iterate", "lora_model_dir", "test_datasets", "resume_from_checkpoint")}
    config.update({
        "base_model": model_in,
        "datasets": [{"path": str((round_dir / "train.jsonl").resolve()), "type": "kto_plugin.query_response"}],
        "output_dir": str((round_dir / "model").resolve()),
        "dataset_prepared_path": str((round_dir / "prepared").resolve()),
    })
    return config


def train_round(user_config: dict, model_in: str, round_dir: Path, tokenizer) -> str:
    """`axolotl train` of the round (log: `train.log`); returns the folder of the model the next round starts from."""
    from kto_plugin.evaluation.trained_run import TrainedRun

    config = round_config(user_config, model_in, round_dir)
    (round_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    run_axolotl_logged(train_command(round_dir / "config.yaml"), round_dir / "train.log")
    run = TrainedRun.find(model_in, config["output_dir"])
    if run.kind == "full":
        return config["output_dir"]
    return merge_adapter(run, round_dir / "merged", tokenizer)


def merge_adapter(run, merged: Path, tokenizer) -> str:
    """The run's adapter merged into its base weights (PEFT's merge_and_unload), saved with `tokenizer`."""
    from kto_plugin.data.feedback_files import atomic_path

    model = run.load_tuned().merge_and_unload()
    with atomic_path(merged, directory=True) as temporary:
        model.save_pretrained(str(temporary))
        tokenizer.save_pretrained(str(temporary))
    return str(merged.resolve())


def judged(judge, rows: list[dict]) -> list[float | bool] | None:
    """The judge's scores of held-out answers (None for a person: held-out answers are not labelled)."""
    if judge is None:
        return None
    return judge.scores([row["query"] for row in rows], [row["response"] for row in rows], progress=None)


def held_out_summary(scores: list[float | bool] | None, threshold: float | None) -> dict:
    """The share of held-out answers desirable at the run's fixed threshold, and their mean score."""
    if scores is None:
        return {"judged": False}
    labels = labels_from_scores(scores, threshold)
    return {"judged": True, "desirable_share": sum(labels) / len(labels),
            "mean_score": sum(float(score) for score in scores) / len(scores), "threshold": threshold}
