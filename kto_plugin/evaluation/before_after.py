"""`axolotl kto before-after CONFIG`: the config's base model and its trained result, scored on held-out prompts.

Both models are scored by `held_out_probe.probe` on rows whose prompts were never trained
on: preference accuracy (accepted answer more likely than a rejected one to the same
prompt), the mean log-likelihood of accepted and of rejected answers, and, from
`samples_per_prompt` sampled answers per prompt (seeded, the same seed for both models),
the shares that break the rules of `eval/` (an absolute promise, an insult) and that offer
an alternative (`lm_eval_tasks.utils.score_answer`); the refund desk's answers get its grades
(`refund_desk.grade`), every other set's the kind of each answer (`answer_match`: like an accepted answer
of its question, like a rejected one, like another question's, or garbled). The trained model's sets also get the
reward accuracy: of every (accepted, rejected) pair of rows, the share whose accepted row gained
more log-likelihood from base to trained (KTO's implicit reward; chance is 0.5, and each row's
length cancels, which a summed-likelihood preference accuracy between a long answer and a short
refusal does not).

The held-out rows are `--held-out` files, or, for a config trained on the shipped sample
sets' `train` splits (`kto_plugin://kto-sample-en/train`), their `held-out` splits (new
questions) and, where a set has one, its `reworded` split (trained questions asked in words
nothing trained on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from kto_plugin.embedded.uris import URI_PREFIX, is_plugin_uri, resolve_dataset_uri
from kto_plugin.errors import ConfigError
from kto_plugin.evaluation.held_out_probe import held_out_from_files, probe, reward_accuracy_and_margin
from kto_plugin.evaluation.trained_run import TrainedRun, load_model

SHARES = (  # (row title, rule in lm_eval_tasks.utils.RULES, True when the share counts answers that break the rule)
    ("answers with an absolute promise", "no_absolute_promise", True),
    ("answers with an insult", "no_insult", True),
    ("answers offering an alternative", "offers_alternative", False),
    ("empty answers", "not_empty", True),
)


@dataclass
class BeforeAfterResult:
    """What `axolotl kto before-after` measured; `to_json()` is `OUTPUT_DIR/before_after.json`.

    `before` and `after` each hold `sets` (per held-out set: the probe's numbers and answers), `answers`
    (every sampled answer), `rules` (the share of answers keeping each rule) and `refund_grades`."""

    config: str
    held_out: list[str]
    sets: dict  # per held-out set: rows, pairs, prompts
    base_model: str
    trained: str
    sampling: dict
    before: dict
    after: dict

    def to_json(self) -> dict:
        return asdict(self)


def default_held_out(cfg: dict) -> list[str]:
    """The `held-out` splits of the config's `kto_plugin://NAME/train` datasets, then the `reworded` splits of
    those that have one; an error names the key otherwise."""
    from kto_plugin.embedded.samples import reworded_prompts

    paths, reworded, with_rewordings = [], [], reworded_prompts()
    for entry in cfg.get("datasets") or []:
        path = str(entry.get("path", ""))
        if is_plugin_uri(path) and path.endswith("/train"):
            name = path.removesuffix("/train")
            paths.append(resolve_dataset_uri(name + "/held-out"))
            if name.removeprefix(URI_PREFIX) in with_rewordings:
                reworded.append(resolve_dataset_uri(name + "/reworded"))
    paths += reworded
    if not paths:
        raise ConfigError("the config's datasets are not the sample sets' train splits "
                         f"({URI_PREFIX}kto-sample-en/train), so there is no known held-out set: "
                         "pass --held-out FILE with rows whose prompts were never trained on")
    return paths


def set_name(path: str) -> str:
    """`.../sample_splits/kto-sample-en.held-out.jsonl` -> `kto-sample-en`, `....reworded.jsonl` -> `kto-sample-en
    reworded`; other files by their name."""
    name = Path(path).name
    if name.endswith(".held-out.jsonl"):
        return name.removesuffix(".held-out.jsonl")
    return name.removesuffix(".reworded.jsonl") + " reworded" if name.endswith(".reworded.jsonl") else name


def refund_grades(previews: list[str], answers: list[str], per_prompt: int) -> dict[str, float] | None:
    """Shares of the refund desk's grades (good, each bad kind, other) over the answers to refund-desk prompts."""
    from kto_plugin.embedded.refund_desk import grade, question_of

    grades = []
    for index, preview in enumerate(previews):
        question = question_of(preview)
        if question is not None:
            grades.extend(grade(question, text) for text in answers[index * per_prompt:(index + 1) * per_prompt])
    if not grades:
        return None
    return {kind: grades.count(kind) / len(grades) for kind in dict.fromkeys(["good", *sorted(set(grades) - {"good"})])}


def score_sets(model, tokenizer, held_out_sets: dict, max_new_tokens: int, desc: str, sampling: dict,
               set_answers: dict[str, list[str]] | None = None) -> dict:
    """`probe` on each held-out set, then the rule shares over all sampled answers and the refund grades; each
    set without refund-desk prompts gets the kinds of its answers (`answer_match`), told apart with the help of
    `set_answers[name]` (the answers of its whole sample set, for answers to another question)."""
    from kto_plugin.evaluation.answer_match import held_out_answer_kinds
    from kto_plugin.evaluation.held_out_probe import rule_shares

    per_set, answers = {}, []
    refunds = {}
    for name, held_out in held_out_sets.items():
        measured = probe(model, tokenizer, held_out, max_new_tokens, f"{desc} {name}", **sampling)
        per_set[name] = measured
        answers.extend(measured["answers"])
        graded = refund_grades(held_out.distinct_previews(), measured["answers"], sampling["samples_per_prompt"])
        if graded:
            refunds = graded
        else:
            measured["answer_kinds"] = held_out_answer_kinds(held_out, measured["answers"], sampling["samples_per_prompt"],
                                                             tokenizer, max_new_tokens, (set_answers or {}).get(name, []))
    return {"sets": per_set, "answers": answers, "rules": rule_shares(answers), "refund_grades": refunds or None}


def sample_set_answers(names) -> dict[str, list[str]]:
    """For each held-out set that is a split of a shipped sample set (`kto-sample-en reworded`), every answer of that set."""
    import json

    from kto_plugin.embedded.samples import sample_dataset_names, sample_dataset_path

    shipped, answers = sample_dataset_names(), {}
    for name in names:
        base = name.split(" ")[0]
        if base in shipped:
            answers[name] = [json.loads(line)["response"]
                             for line in sample_dataset_path(base).read_text(encoding="utf-8").splitlines()]
    return answers


def run_before_after(config: Path, held_out_paths: list[Path] | None = None, samples_per_prompt: int = 8,
                     max_new_tokens: int = 48, temperature: float = 0.7, seed: int = 0) -> BeforeAfterResult:
    import gc

    from transformers import AutoTokenizer

    from kto_plugin.embedded.uris import resolve_model_uri

    cfg = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    if not cfg.get("base_model"):
        raise ConfigError(f"{config} has no base_model: add `base_model: <model folder or kto_plugin://tiny-model>`")
    paths = [str(path) for path in held_out_paths] if held_out_paths else default_held_out(cfg)
    base_path = resolve_model_uri(cfg["base_model"]) if is_plugin_uri(cfg["base_model"]) else cfg["base_model"]
    tokenizer = AutoTokenizer.from_pretrained(cfg.get("tokenizer_config") or base_path)
    held_out_sets = {set_name(path): held_out_from_files([path], tokenizer, cfg.get("sequence_len")) for path in paths}
    sampling = {"samples_per_prompt": samples_per_prompt, "temperature": temperature, "seed": seed}
    run = TrainedRun.from_config(cfg, Path(config).parent)
    after_model, after_path = run.load_tuned(), str(run.output_dir)
    set_answers = sample_set_answers(held_out_sets)
    after = score_sets(after_model, tokenizer, held_out_sets, max_new_tokens, "after", sampling, set_answers)
    del after_model
    gc.collect()
    before = score_sets(load_model(base_path), tokenizer, held_out_sets, max_new_tokens, "before", sampling, set_answers)
    for name, held_out in held_out_sets.items():  # KTO's implicit reward: chance is 0.5, answer lengths cancel
        after["sets"][name]["reward_accuracy"], after["sets"][name]["reward_margin"] = reward_accuracy_and_margin(
            before["sets"][name]["logps"], after["sets"][name]["logps"], held_out.labels)
    sets = {name: {"rows": len(held_out.labels), "pairs": len(held_out.pairs()), "prompts": held_out.distinct_previews()}
            for name, held_out in held_out_sets.items()}
    return BeforeAfterResult(str(config), paths, sets, base_path, after_path, sampling, before, after)


def share_rows(result: BeforeAfterResult) -> list[tuple[str, float, float]]:
    """(title, before, after) for each share of sampled answers in `SHARES`."""
    rows = []
    for title, rule, breaks in SHARES:
        before, after = result.before["rules"][rule], result.after["rules"][rule]
        rows.append((title, 1 - before if breaks else before, 1 - after if breaks else after))
    return rows


def answer_kind_rows(result: BeforeAfterResult) -> list[tuple[str, str, str]]:
    """(title, before, after) for each set whose answers have kinds (`answer_match.KINDS`), the shares in one cell."""
    from kto_plugin.evaluation.answer_match import KINDS

    rows = []
    for name in result.sets:
        kinds = [side["sets"][name].get("answer_kinds") for side in (result.before, result.after)]
        if all(kinds):
            rows.append((f"{name}: answers {' / '.join(KINDS)}",
                         *(" / ".join(f"{shares[kind]:.0%}" for kind in KINDS) for shares in kinds)))
    return rows
