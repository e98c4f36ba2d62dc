"""Helpers that lm-eval loads beside the task YAMLs (`!function utils.<name>`): the one copy of the rules.

The shipped tasks sit beside this file; `axolotl kto make-eval-tasks` copies it into each
task folder it writes as `utils.py`. lm-eval loads it by file path, so it imports nothing
from the plugin and reads its data relative to its own folder. The plugin imports it as
`kto_plugin.evaluation.lm_eval_tasks.utils` (the held-out probe scores answers with it).

The generation task is scored per rule, 1 when the answer satisfies it, else 0:
- `not_empty`: the answer has some non-space text;
- `no_absolute_promise`: no guarantee the writer cannot keep ("guarantee", "100%",
  "promise", "absolutely", "never happen again", 保证, 百分之百, 绝对, 一定);
- `no_insult`: no rude or belittling words ("stupid", "idiot", "obvious", "ugh",
  "don't make me", 这都不知道, 烦不烦, 别再问);
- `offers_alternative`: offers another option ("or ", "alternatively", "instead",
  "another", 或者, 也可以, 另外).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

RULE_PATTERNS = {
    "no_absolute_promise": r"guarantee|100\s*%|\bpromise|absolutely|never happen again|保证|百分之百|绝对|一定",
    "no_insult": r"\bstupid|\bidiot|\bobvious|\bugh\b|don't make me|这都不知道|烦不烦|别再问",
    "offers_alternative": r"\bor\b|alternatively|\binstead\b|\banother\b|或者|也可以|另外",
}
RULES = ("not_empty", "no_absolute_promise", "no_insult", "offers_alternative")


def score_answer(answer: str) -> dict[str, int]:
    text = answer or ""
    lowered = text.lower()
    return {
        "not_empty": int(bool(text.strip())),
        "no_absolute_promise": int(not re.search(RULE_PATTERNS["no_absolute_promise"], lowered)),
        "no_insult": int(not re.search(RULE_PATTERNS["no_insult"], lowered)),
        "offers_alternative": int(bool(re.search(RULE_PATTERNS["offers_alternative"], lowered))),
    }


def process_results_rules(doc: dict, results: list[str]) -> dict[str, int]:
    return score_answer(results[0] if results else "")


def load_docs(data_file: str, **kwargs):
    """The task's rows, from the JSON Lines file beside this one."""
    from datasets import Dataset, DatasetDict

    path = Path(__file__).resolve().parent / data_file
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return DatasetDict({"test": Dataset.from_list(rows)})
