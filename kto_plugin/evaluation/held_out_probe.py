"""Score a model on held-out feedback examples: likelihoods of accepted and rejected answers, and sampled answers.

Three measures, each on examples whose prompts were never trained on:

- preference accuracy: for every held-out prompt that has both an accepted answer `a`
  and a rejected answer `r`, the model is right when log p(a | x) > log p(r | x)
  (summed over the answer's tokens, as lm-eval's `acc`);
- reward accuracy and margin (needs a "before" and an "after" model): the implicit KTO
  reward of an example is r = log p_after(y | x) - log p_before(y | x); the margin is
  mean r(accepted) - mean r(rejected), and the accuracy is the share of
  (accepted, rejected) example pairs, across prompts, with r(accepted) > r(rejected).
  It works on unpaired feedback, where no prompt has both labels; chance is 0.5;
- rule shares: greedy answers to the held-out prompts, scored by the rules of the
  generation task (`lm_eval_tasks.utils.score_answer`): not empty, no absolute promise, no
  insult, offers an alternative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kto_plugin.evaluation.generation import GenerationSettings, generate_answers
from kto_plugin.evaluation.lm_eval_tasks.utils import RULES, score_answer


@dataclass
class HeldOutSet:
    """Rendered held-out examples: `prompts[i]` with `completions[i]` labelled `labels[i]`."""

    prompts: list[str] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    previews: list[str] = field(default_factory=list)  # the last user turn of each prompt, for people

    def pairs(self, per_prompt: int = 4) -> list[tuple[int, int]]:
        """(accepted index, rejected index) for prompts with both labels, at most `per_prompt` each."""
        by_prompt: dict[str, dict[bool, list[int]]] = {}
        for i, (prompt, label) in enumerate(zip(self.prompts, self.labels)):
            by_prompt.setdefault(prompt, {True: [], False: []})[label].append(i)
        pairs = []
        for groups in by_prompt.values():
            combos = [(a, r) for a in groups[True] for r in groups[False]]
            pairs.extend(combos[:per_prompt])
        return pairs

    def distinct_prompts(self) -> list[str]:
        return list(dict.fromkeys(self.prompts))

    def distinct_previews(self) -> list[str]:
        first = {}
        for prompt, preview in zip(self.prompts, self.previews or self.prompts):
            first.setdefault(prompt, preview)
        return list(first.values())


def render_examples(examples, tokenizer, sequence_len: int | None = None) -> HeldOutSet:
    """Feedback examples rendered with the tokenizer's chat template (a prompt from Axolotl's own
    types is already rendered), fitted to `sequence_len` as training fits them when it is given."""
    from kto_plugin.data.feedback_examples import prompt_preview
    from kto_plugin.data.loading import Rows, SplitReport, fit_lengths, render_located

    rows = Rows()
    for example in examples:
        rows.add(*render_located(example, tokenizer), example.label, example.where)
    if sequence_len:
        rows = fit_lengths(rows, tokenizer, sequence_len, "truncate", SplitReport("held-out"))
    return HeldOutSet(rows.prompt, rows.completion, rows.label, [prompt_preview(example) for example in examples])


def completion_logps(model, tokenizer, held_out: HeldOutSet, desc: str = "Scoring") -> list[float]:
    """log p(completion | prompt) summed over the completion's tokens, one example at a time."""
    import torch
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    logps = []
    with torch.no_grad():
        for prompt, completion in tqdm(list(zip(held_out.prompts, held_out.completions)), desc=desc, leave=False):
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt_ids + completion_ids], device=device)
            logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()
            target = ids[0, len(prompt_ids):]
            logps.append(float(torch.log_softmax(logits, -1).gather(-1, target[:, None]).sum()))
    return logps


def preference_accuracy(logps: list[float], pairs: list[tuple[int, int]]) -> float | None:
    if not pairs:
        return None
    return sum(logps[a] > logps[r] for a, r in pairs) / len(pairs)


def reward_accuracy_and_margin(before: list[float], after: list[float], labels: list[bool]) -> tuple[float | None, float | None]:
    rewards = [b - a for a, b in zip(before, after)]
    accepted = [reward for reward, label in zip(rewards, labels) if label]
    rejected = [reward for reward, label in zip(rewards, labels) if not label]
    if not accepted or not rejected:
        return None, None
    wins = sum(1 for a in accepted for r in rejected if a > r)
    margin = sum(accepted) / len(accepted) - sum(rejected) / len(rejected)
    return wins / (len(accepted) * len(rejected)), margin


def sampled_answers(model, tokenizer, prompts: list[str], max_new_tokens: int = 48, samples_per_prompt: int = 1,
                    temperature: float = 0.7, seed: int = 0) -> list[str]:
    """Answers to rendered prompts (already in the chat template): one greedy answer each, or
    `samples_per_prompt` sampled ones (temperature, seeded), by `generation.generate_answers`."""
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature if samples_per_prompt > 1 else 0.0,
                                  seed=seed, answers_per_prompt=samples_per_prompt)
    return generate_answers(model, tokenizer, prompts, settings)


def rule_shares(answers: list[str]) -> dict[str, float]:
    scores = [score_answer(answer) for answer in answers]
    return {rule: sum(score[rule] for score in scores) / max(len(scores), 1) for rule in RULES}


def probe(model, tokenizer, held_out: HeldOutSet, max_new_tokens: int = 48, desc: str = "",
          samples_per_prompt: int = 1, temperature: float = 0.7, seed: int = 0) -> dict:
    """Log-likelihoods (each example's, and the means per label), preference accuracy, answers and their rule shares."""
    logps = completion_logps(model, tokenizer, held_out, desc=f"Scoring {desc}".strip())
    answers = sampled_answers(model, tokenizer, held_out.distinct_prompts(), max_new_tokens, samples_per_prompt,
                              temperature, seed)

    def mean(label: bool) -> float:
        values = [logp for logp, is_accepted in zip(logps, held_out.labels) if is_accepted == label]
        return sum(values) / max(len(values), 1)

    return {
        "logps": logps,
        "preference_accuracy": preference_accuracy(logps, held_out.pairs()),
        "logp_accepted": mean(True),
        "logp_rejected": mean(False),
        "answers": answers,
        "rules": rule_shares(answers),
    }


def held_out_from_files(paths, tokenizer, sequence_len: int | None = None) -> HeldOutSet:
    """Held-out rows from files in any format `check` reads, rendered with the tokenizer's chat template."""
    from kto_plugin.data.feedback_examples import examples_from_file

    examples = []
    for path in paths:
        examples.extend(examples_from_file(Path(path), progress=False)[2])
    return render_examples(examples, tokenizer, sequence_len)
