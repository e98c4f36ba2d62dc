"""The refund desk: a generated feedback task whose good answer needs two facts, shipped as `kto-sample-refunds`.

A customer asks whether a product bought `days` ago can still be returned. The shop's rule:
digital goods within 14 days, physical goods within 30. A *good* answer gives the right
decision (days <= window) with the product's category and window, politely, in one of two
wordings per decision:

    Can I return my backpack? I bought it 25 days ago.
    Yes, you are in time: physical items can be returned within 30 days. Start the return under Orders, or ask for an exchange instead.
    I bought the e-book 20 days ago and want my money back. Can I?
    Sorry, digital items can only be returned within 14 days, so it is too late for a refund. You could ask for a repair instead.

*Bad* answers come in four kinds, two of them worded exactly like good ones:
- `wrong_decision`: the other decision with the right category (yes when too late, no when in time);
- `wrong_window`: the right decision with the other category and its window;
- `promise`: an absolute promise ("I guarantee a full refund, 100%");
- `rude`: a rude refusal ("Obviously not").

So a good answer is learnable (product -> category -> window, then days against the window)
but not separable by style: half the bad answers read like good ones. Held-out questions
(`split_questions`) are (product, days) combinations never trained on, in every phrasing, so
a model that learned the rule can answer them and one that memorised answers cannot.

`grade(question, answer)` sorts an answer into good, a bad kind, or other: neither (garbled
text, a category with another's window). Other rising while preference accuracy rises
is the likelihood displacement reported for DPO.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

WINDOWS = {"digital": 14, "physical": 30}
PRODUCTS = {
    "e-book": "digital", "music album": "digital", "game code": "digital", "photo app": "digital",
    "video course": "digital",
    "desk lamp": "physical", "backpack": "physical", "kettle": "physical", "blender": "physical",
    "jacket": "physical",
}
DAYS = (2, 5, 9, 12, 20, 25, 40, 60)
PHRASINGS = (
    "Can I return my {product}? I bought it {days} days ago.",
    "My {product} arrived {days} days ago. Is a refund still possible?",
    "I bought the {product} {days} days ago and want my money back. Can I?",
)
SYSTEM = "You answer refund questions for an online shop."
BAD_KINDS = ("wrong_decision", "wrong_window", "promise", "rude")
WORDINGS = 2  # of each decision answer
HELD_OUT_SHARE = 0.2


@dataclass(frozen=True)
class Question:
    product: str
    days: int
    phrasing: int

    @property
    def window(self) -> int:
        return WINDOWS[PRODUCTS[self.product]]

    @property
    def in_time(self) -> bool:
        return self.days <= self.window

    @property
    def prompt(self) -> str:
        return PHRASINGS[self.phrasing].format(product=self.product, days=self.days)


_TEMPLATES = {  # (decision, wording) -> answer template
    (True, 0): "Yes, you are in time: {category} items can be returned within {window} days. "
               "Start the return under Orders, or ask for an exchange instead.",
    (True, 1): "Yes. {Category} items can be returned within {window} days, so you can still send it back, "
               "or ask for an exchange instead.",
    (False, 0): "Sorry, {category} items can only be returned within {window} days, so it is too late for a refund. "
                "You could ask for a repair instead.",
    (False, 1): "I'm sorry, the return window for {category} items is {window} days and it has passed. "
                "You could ask for a repair instead.",
}
PROMISE = "Yes, I guarantee a full refund, 100%, no questions asked."
RUDE = "Obviously not. Read the policy before asking."


def _decision_answer(yes: bool, category: str, wording: int) -> str:
    return _TEMPLATES[(yes, wording)].format(category=category, Category=category.capitalize(), window=WINDOWS[category])


def answer(question: Question, kind: str, wording: int = 0) -> str:
    """The answer of one kind (`good` or one of `BAD_KINDS`); `wording` picks one of the decision answers' wordings."""
    category = PRODUCTS[question.product]
    other_category = next(name for name in WINDOWS if name != category)
    if kind == "good":
        return _decision_answer(question.in_time, category, wording)
    if kind == "wrong_decision":
        return _decision_answer(not question.in_time, category, wording)
    if kind == "wrong_window":
        return _decision_answer(question.in_time, other_category, wording)
    if kind == "promise":
        return PROMISE
    if kind == "rude":
        return RUDE
    raise ValueError(f"unknown answer kind {kind!r}: good or one of {', '.join(BAD_KINDS)}")


def _pattern(template: str) -> re.Pattern:
    escaped = re.escape(template)
    for field, group in (("\\{category\\}", r"(?P<category>[a-z]+)"), ("\\{Category\\}", r"(?P<category>[A-Z][a-z]+)"),
                         ("\\{window\\}", r"(?P<window>\d+)")):
        escaped = escaped.replace(field, group)
    return re.compile(f"^{escaped}$")


_PARSERS = [(yes, _pattern(template)) for (yes, _), template in _TEMPLATES.items()]


def grade(question: Question, text: str) -> str:
    """`good`, a bad kind, or `other` (neither: garbled, a category and window that do not belong together)."""
    text = " ".join(text.split())
    if text == PROMISE:
        return "promise"
    if text == RUDE:
        return "rude"
    for said_yes, pattern in _PARSERS:
        match = pattern.match(text)
        if not match:
            continue
        category = match["category"].lower()
        if WINDOWS.get(category) != int(match["window"]):
            return "other"  # a category with another's window: nothing the data ever showed
        right_decision, right_category = said_yes == question.in_time, category == PRODUCTS[question.product]
        if right_decision and right_category:
            return "good"
        if right_category:
            return "wrong_decision"
        return "wrong_window" if right_decision else "other"
    return "other"


_PROMPTS = [re.compile("^" + re.escape(phrasing).replace(r"\{product\}", "(?P<product>.+?)")
                       .replace(r"\{days\}", r"(?P<days>\d+)") + "$") for phrasing in PHRASINGS]


def question_of(prompt: str) -> Question | None:
    """The question a prompt asks, or None when it is not a refund-desk prompt."""
    for phrasing, pattern in enumerate(_PROMPTS):
        match = pattern.match(prompt.strip())
        if match and match["product"] in PRODUCTS and int(match["days"]) in DAYS:
            return Question(match["product"], int(match["days"]), phrasing)
    return None


def split_questions(seed: int = 0) -> tuple[list[Question], list[Question]]:
    """(train, held-out) questions: `HELD_OUT_SHARE` of the (product, days) combinations held out, in every phrasing."""
    rng = random.Random(seed)
    combos = sorted((product, days) for product in PRODUCTS for days in DAYS)
    held = set(rng.sample(combos, round(HELD_OUT_SHARE * len(combos))))
    train, held_out = [], []
    for product, days in combos:
        for phrasing in range(len(PHRASINGS)):
            (held_out if (product, days) in held else train).append(Question(product, days, phrasing))
    return train, held_out


def feedback_rows(questions: list[Question], seed: int = 0) -> list[dict]:
    """Per question: its good answer in both wordings (accepted) and two bad answers of different kinds (rejected),
    as rows of the plugin's `query_response` format."""
    rng = random.Random(seed)
    rows = []
    for question in questions:
        answers = [(answer(question, "good", wording), True) for wording in range(WORDINGS)]
        for kind in rng.sample(BAD_KINDS, 2):
            answers.append((answer(question, kind, rng.randrange(WORDINGS)), False))
        rows.extend({"system": SYSTEM, "query": question.prompt, "response": text, "label": label}
                    for text, label in answers)
    return rows


def judge(prompt: str, answer_text: str) -> bool:
    """The refund desk's grader as an `axolotl kto iterate` judge (`--judge kto_plugin.embedded.refund_desk:judge`):
    True for a good answer; any other prompt than the desk's is refused, not guessed."""
    question = question_of(prompt)
    if question is None:
        raise ValueError(f"{prompt!r} is not a refund-desk question; this judge grades only those")
    return grade(question, answer_text) == "good"


def prompt_rows(questions: list[Question]) -> list[dict]:
    """The questions as a prompt pool for `axolotl kto iterate` (rows with `system` and `query`)."""
    return [{"system": SYSTEM, "query": question.prompt} for question in questions]
