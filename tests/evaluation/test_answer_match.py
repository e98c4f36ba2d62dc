"""`answer_match`: the kind of a sampled answer to a free-text held-out prompt, told by the rows' own answers."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import yaml
from click.testing import CliRunner

from kto_plugin.evaluation.answer_match import KINDS, answer_kind, answer_kinds, closeness
from kto_plugin.evaluation.before_after import BeforeAfterResult, answer_kind_rows

ACCEPTED = ["Air molecules scatter blue light more than red light, so blue light comes at us from all over the sky."]
REJECTED = [ACCEPTED[0] + " I guarantee 100% this will never happen again.", "No idea, sorry."]
OTHERS = ["Thanks for your message. Our office is closed on public holidays.",
          "Use 'Forgot password' on the sign-in page and follow the emailed link."]


@pytest.mark.parametrize(("answer", "kind"), [
    (ACCEPTED[0], "accepted"),
    (ACCEPTED[0].replace("all over", "all around"), "accepted"),  # a near copy
    (ACCEPTED[0] + " I guarantee 100% this will never happen again.", "rejected"),
    ("No idea, sorry!", "rejected"),
    ("Thanks for your message. Our office is closed on public holidays.", "another question's"),
    ("Air molecules scatter interest you VPN long with the ge summeralan less.", "garbled"),
    ("", "garbled"),
])
def test_each_answer_takes_the_kind_of_the_closest_written_answer(answer, kind):
    assert answer_kind(answer, ACCEPTED, REJECTED, OTHERS) == kind


def test_an_answer_cut_at_the_token_limit_is_compared_with_as_much_of_each_answer():
    cut_answer = ACCEPTED[0][:40]
    assert answer_kind(cut_answer, ACCEPTED, REJECTED, OTHERS) == "garbled"  # whole, it is a fragment
    assert answer_kind(cut_answer, ACCEPTED, REJECTED, OTHERS, cut=True) == "accepted"  # a tie: the accepted answer wins
    promise = REJECTED[0][:130]  # past the accepted answer's end, into the promise
    assert answer_kind(promise, ACCEPTED, REJECTED, OTHERS, cut=True) == "rejected"
    assert closeness(" a  b ", "a b") == 1.0  # whitespace does not count


def test_shares_follow_the_questions_and_their_rows():
    rows = [("Why is the sky blue?", ACCEPTED[0], True), ("Why is the sky blue?", REJECTED[1], False),
            ("How do I reset my password?", OTHERS[1], True)]
    answers = [ACCEPTED[0], "No idea, sorry.", OTHERS[1], "zzz qqq", OTHERS[1], ACCEPTED[0]]
    shares = answer_kinds(["Why is the sky blue?", "Why is the sky blue?", "How do I reset my password?"], answers, 2, rows)
    # sky: accepted, rejected, another question's (the password answer), garbled; password: accepted, another question's
    assert shares == {"accepted": 2 / 6, "rejected": 1 / 6, "another question's": 2 / 6, "garbled": 1 / 6}
    assert list(shares) == list(KINDS)
    assert answer_kinds(["Unknown?"], ["x"], 1, rows) is None  # no row asks it: nothing to tell answers by


def test_before_after_gives_the_free_text_sets_answer_kinds_and_the_refund_desk_its_grades(tmp_path, tiny_model):
    """The real command on the tiny model (random weights: every answer is garbled) as its own trained run."""
    trained = tmp_path / "out"
    shutil.copytree(tiny_model, trained)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "base_model": "kto_plugin://tiny-model", "output_dir": str(trained), "sequence_len": 256,
        "datasets": [{"path": f"kto_plugin://{name}/train", "type": "kto_plugin.query_response"}
                     for name in ("kto-sample-en", "kto-sample-refunds")]}))
    from kto_plugin.cli import kto

    result = CliRunner().invoke(kto, ["before-after", str(config), "--samples", "2", "--max-new-tokens", "8"],
                                terminal_width=250)
    assert result.exit_code == 0, result.output
    numbers = json.loads((trained / "before_after.json").read_text())
    for side in ("before", "after"):
        sets = numbers[side]["sets"]
        assert "answer_kinds" not in sets["kto-sample-refunds"] and numbers[side]["refund_grades"]
        for name in ("kto-sample-en", "kto-sample-en reworded"):
            assert sets[name]["answer_kinds"]["garbled"] == 1.0, sets[name]["answers"][:4]
    assert "garbled" in result.output
    result_object = BeforeAfterResult(**numbers)
    assert answer_kind_rows(result_object) == [  # the table's rows: the refund desk has its grades instead
        ("kto-sample-en: answers accepted / rejected / another question's / garbled", "0% / 0% / 0% / 100%",
         "0% / 0% / 0% / 100%"),
        ("kto-sample-en reworded: answers accepted / rejected / another question's / garbled", "0% / 0% / 0% / 100%",
         "0% / 0% / 0% / 100%")]


def test_the_quick_upper_bounds_spare_most_comparisons_the_slow_ratio(plugin_cache, monkeypatch):
    """Every sampled answer is compared with every distinct answer of its sample set (100 x 182 here): difflib's cheap upper
    bounds must rule out most pairs before its quadratic `ratio` runs. Counted, not timed."""
    import kto_plugin.evaluation.answer_match as answer_match
    from kto_plugin.embedded.samples import sample_dataset_path

    calls = {"compared": 0, "ratio": 0}

    class CountingMatcher(answer_match.SequenceMatcher):
        def real_quick_ratio(self):
            calls["compared"] += 1
            return super().real_quick_ratio()

        def ratio(self):
            calls["ratio"] += 1
            return super().ratio()

    monkeypatch.setattr(answer_match, "SequenceMatcher", CountingMatcher)
    rows = [json.loads(line) for line in sample_dataset_path("kto-sample-en").read_text(encoding="utf-8").splitlines()]
    texts = [row["response"] for row in rows]
    rng = random.Random(0)
    answers = ["".join(rng.sample(text, len(text))) for text in rng.sample(texts, 100)]  # shuffled letters: garbled
    shares = answer_kinds([rows[0]["query"]] * 100, answers, 1, [(rows[0]["query"], rows[0]["response"], True)], texts)
    assert shares["garbled"] == 1.0
    assert calls["compared"] >= 100 * (len(set(texts)) - 1)  # every answer met every other answer of the set
    assert calls["ratio"] * 10 < calls["compared"]  # 1,063 of 18,200 on 2026-12-05
