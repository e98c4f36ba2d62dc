"""Score a model on the refund desk's held-out questions (never trained on).

- preference accuracy: for every held-out question, its good answer (both wordings) against
  a bad answer of each kind: 8 pairs per question; right when log p(good) > log p(bad),
  summed over the answer's tokens;
- sampled answers: `samples` per question at temperature 1 (the policy as it is), graded by
  `refund_desk.grade`: the shares of good, bad (any kind) and other (neither: the likelihood
  displacement that preference accuracy cannot see);
- mean log p of the good answers: falling while accuracy rises is displacement too;
- the grades of each held-out (product, days) combination, over its phrasings and samples
  (`grades_by_combination`): which rule a run gets wrong, where the shares only say how often.
"""

from __future__ import annotations

from kto_plugin.data.rendering import render_example
from kto_plugin.embedded.refund_desk import BAD_KINDS, SYSTEM, WORDINGS, answer, grade, split_questions
from kto_plugin.evaluation.held_out_probe import HeldOutSet, completion_logps, sampled_answers


def held_out_set(tokenizer) -> tuple[HeldOutSet, list[tuple[int, int]], list]:
    """(rendered rows, (good, bad) index pairs, questions) of the held-out questions."""
    held_out, pairs, questions = HeldOutSet(), [], split_questions()[1]
    for question in questions:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question.prompt}]
        good = []
        for kind, wording in [("good", w) for w in range(WORDINGS)] + [(kind, 0) for kind in BAD_KINDS]:
            prompt, completion = render_example(tokenizer, messages, answer(question, kind, wording))
            if kind == "good":
                good.append(len(held_out.prompts))
            else:
                pairs.extend((index, len(held_out.prompts)) for index in good)
            held_out.prompts.append(prompt)
            held_out.completions.append(completion)
            held_out.labels.append(kind == "good")
    return held_out, pairs, questions


def score_model(model, tokenizer, samples: int = 4, seed: int = 0, max_new_tokens: int = 48) -> dict:
    held_out, pairs, questions = held_out_set(tokenizer)
    logps = completion_logps(model, tokenizer, held_out, desc="Scoring")
    prompts = held_out.distinct_prompts()
    answers = sampled_answers(model, tokenizer, prompts, max_new_tokens, samples, temperature=1.0, seed=seed)
    grades = [grade(questions[index // samples], text) for index, text in enumerate(answers)]
    good_logps = [logp for logp, label in zip(logps, held_out.labels) if label]
    return {
        "preference_accuracy": sum(logps[good] > logps[bad] for good, bad in pairs) / len(pairs),
        "good": grades.count("good") / len(grades),
        "bad": sum(grades.count(kind) for kind in BAD_KINDS) / len(grades),
        "other": grades.count("other") / len(grades),
        "bad_kinds": {kind: grades.count(kind) / len(grades) for kind in BAD_KINDS},
        "logp_good": sum(good_logps) / len(good_logps),
        "grades_by_combination": grades_by_combination(questions, grades, samples),
        "answers": answers[:8],
    }


def grades_by_combination(questions: list, grades: list[str], samples: int) -> dict[str, dict[str, int]]:
    """`{"backpack, 25 days": {"good": 10, "wrong_decision": 2}, ...}`: each (product, days) combination's answers
    (`samples` per question, in question order) counted by grade."""
    counts: dict[str, dict[str, int]] = {}
    for index, grade_of_answer in enumerate(grades):
        question = questions[index // samples]
        combination = counts.setdefault(f"{question.product}, {question.days} days", {})
        combination[grade_of_answer] = combination.get(grade_of_answer, 0) + 1
    return counts
