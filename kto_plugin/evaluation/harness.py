"""Evaluate the base model and the trained one on the same lm-eval tasks, and report both.

Writes `OUTPUT_DIR/eval/results.json` (lm-eval's raw results for both models) and
`OUTPUT_DIR/eval/report.md` (one table: task, metric, base, tuned, change). A LoRA run is
evaluated as base + adapter without merging; a full or merged model folder is evaluated
as it is.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from kto_plugin.errors import ConfigError
from kto_plugin.evaluation.trained_run import TrainedRun
from kto_plugin.log import get_logger

LOG = get_logger(__name__)

def shipped_tasks_dir() -> Path:
    """The folder of the shipped lm-eval tasks (package data: a checkout, an editable install or a wheel)."""
    from importlib import resources

    return Path(str(resources.files("kto_plugin.evaluation.lm_eval_tasks")))


def include_paths(cfg) -> list[str]:
    """The shipped tasks' folder and `kto_eval_include_path`."""
    extra = cfg.kto_eval_include_path or []
    return [str(shipped_tasks_dir())] + [str(Path(path).resolve()) for path in ([extra] if isinstance(extra, str) else extra)]


def check_task_names(task_manager, tasks: list[str]) -> None:
    known = set(task_manager.all_tasks)
    unknown = [task for task in tasks if task not in known]
    if unknown:
        hints = []
        for task in unknown:
            close = difflib.get_close_matches(task, known, n=5, cutoff=0.5)
            hints.append(f"{task!r} (closest: {', '.join(close) if close else 'none'})")
        raise ConfigError(
            f"unknown lm-eval task {'; '.join(hints)}. Tasks of your own go in a folder named by "
            "`kto_eval_include_path`."
        )


def _run(model_args: dict, tasks, task_manager, cfg) -> dict:
    import torch
    from lm_eval import simple_evaluate

    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = simple_evaluate(
        model="hf", model_args={**model_args, "device": device}, tasks=list(tasks),
        task_manager=task_manager, apply_chat_template=True, batch_size=cfg.kto_eval_batch_size or 8,
        limit=cfg.kto_eval_limit, log_samples=False, random_seed=0, numpy_random_seed=0, torch_random_seed=0,
    )
    return {"results": results["results"], "config": {"model_args": model_args, "limit": cfg.kto_eval_limit}}


def report_rows(base: dict, tuned: dict) -> list[tuple[str, str, float, float]]:
    rows = []
    for task, metrics in tuned["results"].items():
        for key, value in metrics.items():
            if not isinstance(value, (int, float)) or "stderr" in key or key == "alias":
                continue
            base_value = base["results"].get(task, {}).get(key)
            if isinstance(base_value, (int, float)):
                rows.append((task, key.split(",")[0], float(base_value), float(value)))
    return rows


def report_markdown(rows, base_args: dict, tuned_args: dict) -> str:
    lines = [
        "# Base vs tuned",
        "",
        f"- base: `{json.dumps(base_args)}`",
        f"- tuned: `{json.dumps(tuned_args)}`",
        "",
        "| task | metric | base | tuned | change |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {task} | {metric} | {base:.4f} | {tuned:.4f} | {tuned - base:+.4f} |" for task, metric, base, tuned in rows]
    return "\n".join(lines) + "\n"


def evaluate_run(cfg) -> Path:
    """Evaluate base and tuned on `kto_eval_tasks`; return the folder with results.json and report.md."""
    from lm_eval.tasks import TaskManager

    tasks = list(cfg.kto_eval_tasks or [])
    if not tasks:
        raise ConfigError("set `kto_eval_tasks:` to the lm-eval tasks to run, e.g. [kto_sample_en_preference]")
    output_dir = Path(cfg.output_dir)
    task_manager = TaskManager(include_path=include_paths(cfg))
    check_task_names(task_manager, tasks)
    run = TrainedRun.find(cfg.base_model, output_dir)
    run.check_adapter_matches()
    tuned_args = run.lm_eval_args()
    base_args = {"pretrained": run.base_model}
    LOG.info(f"evaluating the base model and the trained one on {', '.join(tasks)}")
    base = _run(base_args, tasks, task_manager, cfg)
    tuned = _run(tuned_args, tasks, task_manager, cfg)
    eval_dir = output_dir / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "results.json").write_text(
        json.dumps({"tasks": tasks, "base": base, "tuned": tuned}, indent=2, default=str), encoding="utf-8")
    (eval_dir / "report.md").write_text(report_markdown(report_rows(base, tuned), base_args, tuned_args),
                                        encoding="utf-8")
    LOG.info(f"wrote {eval_dir / 'results.json'} and {eval_dir / 'report.md'}")
    return eval_dir
