"""What a sampled answer to a held-out prompt is, told by the answers its feedback rows already hold.

No rule grades the free-text answers of the en/zh sample sets (the refund desk has `refund_desk.grade`),
but their rows say which answers people accepted and which they rejected. A sampled answer is:

- `accepted`: close to an accepted answer of its own prompt;
- `rejected`: close to a rejected answer of its own prompt;
- `another question's`: close to an answer, accepted or rejected, of another prompt (fluent, but not
  an answer to this question: a canned reply, or what the model learned for something else);
- `garbled`: close to no answer anybody wrote (where likelihood displacement puts probability).

Close means difflib's ratio of the two texts (whitespace collapsed) is at least `CLOSE` (0.8); an
answer that generation cut at `max_new_tokens` is compared with as many characters of each answer as
it has. The closest answer decides; on a tie its own prompt's accepted answers win, then its rejected ones.
"""

from __future__ import annotations

from difflib import SequenceMatcher

CLOSE = 0.8
KINDS = ("accepted", "rejected", "another question's", "garbled")


def _normalise(text: str) -> str:
    return " ".join(text.split())


def closeness(answer: str, reference: str, cut: bool = False) -> float:
    """difflib's ratio of `answer` to `reference`, or to its first len(answer) characters when `answer` was `cut`."""
    answer, reference = _normalise(answer), _normalise(reference)
    if not answer:
        return 0.0
    if cut and len(answer) < len(reference):
        reference = reference[:len(answer)]
    matcher = SequenceMatcher(None, answer, reference, autojunk=False)
    if matcher.real_quick_ratio() < CLOSE or matcher.quick_ratio() < CLOSE:  # upper bounds: skip the slow ratio
        return 0.0
    return matcher.ratio()


def answer_kind(answer: str, accepted: list[str], rejected: list[str], others: list[str], cut: bool = False) -> str:
    """The kind (`KINDS`) of one sampled answer, given its own prompt's accepted and rejected answers and `others`."""
    best, kind = 0.0, "garbled"
    for candidate_kind, references in (("accepted", accepted), ("rejected", rejected), ("another question's", others)):
        for reference in references:
            score = closeness(answer, reference, cut)
            if score >= CLOSE and score > best:  # a tie keeps the earlier kind
                best, kind = score, candidate_kind
    return kind


def answer_kinds(questions: list[str], answers: list[str], per_prompt: int, rows: list[tuple[str, str, bool]],
                 other_answers: list[str] = (), cut: list[bool] | None = None) -> dict[str, float] | None:
    """Shares of `KINDS` over `answers` (`per_prompt` per sampled prompt; `questions[i]` is prompt i's question,
    its last user turn, so rows asking it under another system prompt or history count as its own), graded by
    `rows` (question, answer, accepted?) and `other_answers` (answers to other questions, e.g. a whole sample
    set's); None when no row asks one of the questions. `cut[i]`: answer i stopped at the token limit."""
    own: dict[str, tuple[list[str], list[str]]] = {}
    for question, text, label in rows:
        own.setdefault(question, ([], []))[0 if label else 1].append(text)
    if not own.keys() & set(questions):
        return None
    every_answer = list(dict.fromkeys([text for _, text, _ in rows] + list(other_answers)))
    counts = dict.fromkeys(KINDS, 0)
    for index, question in enumerate(questions):
        accepted, rejected = own.get(question, ([], []))
        own_texts = set(accepted) | set(rejected)
        others = [text for text in every_answer if text not in own_texts]
        for offset in range(per_prompt):
            position = index * per_prompt + offset
            counts[answer_kind(answers[position], accepted, rejected, others, bool(cut and cut[position]))] += 1
    total = sum(counts.values())
    return {kind: count / total for kind, count in counts.items()} if total else None


def held_out_answer_kinds(held_out, answers: list[str], per_prompt: int, tokenizer, max_new_tokens: int,
                          other_answers: list[str] = ()) -> dict[str, float] | None:
    """`answer_kinds` of the sampled answers to a `held_out_probe.HeldOutSet`'s distinct prompts: its rows by
    question (their completions without the end-of-turn token), an answer cut when it reached `max_new_tokens`."""
    eos = tokenizer.eos_token or ""
    rows = [(question, completion.strip().removesuffix(eos).strip(), label)
            for question, completion, label in zip(held_out.previews or held_out.prompts, held_out.completions,
                                                   held_out.labels)]
    cut = [len(tokenizer(answer, add_special_tokens=False)["input_ids"]) >= max_new_tokens - 2 for answer in answers]
    return answer_kinds(held_out.distinct_previews(), answers, per_prompt, rows, other_answers, cut)
