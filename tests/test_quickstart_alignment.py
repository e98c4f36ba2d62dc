"""A short version of the quickstart on a (shortened) warm model: KTO makes held-out answers better.

The warm-up is the real one (`axolotl train`, full fine-tune) on the refund-desk sample set only,
for fewer epochs; the KTO run is the shipped quickstart config on the refund desk's train split,
capped in steps. `axolotl kto before-after` scores both on the 48 held-out questions, whose
(product, days) combinations nothing trained on.

Thresholds are chosen from several runs (see the comments); they assert a change, not a value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import train_with_axolotl

REPO = Path(__file__).resolve().parents[1]
SHORT_WARM_UP = {"sample_sets": ["kto-sample-refunds"], "num_epochs": 4}  # 3 left its answers 99% garbled
KTO_STEPS = 60
# Seen on Python 3.11 / Axolotl 0.19: preference accuracy 0.43 -> 0.86, good answers 16% -> 36%,
# promises and rude refusals 22% -> 0%. The thresholds leave room for other stacks and float noise.
PREFERENCE_GAIN = 0.20
GOOD_GAIN = 0.05


# slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
pytestmark = pytest.mark.stack("py312")


@pytest.fixture(scope="module")
def quickstart_result(axolotl, tmp_path_factory, plugin_cache):
    from kto_plugin.cli import kto
    from kto_plugin.orchestration.warm_up import build_warm_model

    folder = tmp_path_factory.mktemp("quickstart-alignment")
    warm = build_warm_model(folder / "warm", SHORT_WARM_UP)
    config = yaml.safe_load((REPO / "yaml_examples" / "quickstart.yaml").read_text())
    config.update(base_model=str(warm), output_dir=str(folder / "out"), dataset_prepared_path=str(folder / "prepared"),
                  datasets=[{"path": "kto_plugin://kto-sample-refunds/train", "type": "kto_plugin.query_response"}],
                  max_steps=KTO_STEPS, val_set_size=0, eval_steps=None)
    train_with_axolotl(folder, "quickstart", config)
    result = CliRunner().invoke(kto, ["before-after", str(folder / "quickstart.yaml"), "--samples", "2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return json.loads((folder / "out" / "before_after.json").read_text()), result.output


def test_held_out_preference_accuracy_rises(quickstart_result):
    numbers, output = quickstart_result
    before = numbers["before"]["sets"]["kto-sample-refunds"]["preference_accuracy"]
    after = numbers["after"]["sets"]["kto-sample-refunds"]["preference_accuracy"]
    assert after >= before + PREFERENCE_GAIN, (before, after)
    reward_accuracy = numbers["after"]["sets"]["kto-sample-refunds"]["reward_accuracy"]
    assert reward_accuracy >= 0.5 + PREFERENCE_GAIN, reward_accuracy  # accepted rows gained more than rejected ones
    assert "reward accuracy, kto-sample-refunds" in output
    assert numbers["sets"]["kto-sample-refunds"]["pairs"] == 48 * 4  # both good wordings against both bad answers
    assert "preference accuracy, kto-sample-refunds" in output


def test_sampled_answers_get_better_and_break_fewer_rules(quickstart_result):
    numbers, output = quickstart_result
    before, after = numbers["before"]["refund_grades"], numbers["after"]["refund_grades"]
    assert after["good"] >= before["good"] + GOOD_GAIN, (before, after)
    assert after.get("promise", 0) + after.get("rude", 0) < before.get("promise", 0) + before.get("rude", 0)
    assert "refund desk: good answers" in output
