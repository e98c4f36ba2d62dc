"""The displacement guard: one warning, when the accepted answers fall below the reference in two logging windows in a
row while the margin grows."""

from __future__ import annotations

import logging

from kto_plugin.training.displacement import (
    DISPLACEMENT_NATS_PER_TOKEN,
    FALLEN_SHARE,
    MARGIN,
    NLL_CHOSEN,
    REFERENCE_NLL_CHOSEN,
    DisplacementGuard,
    first_displacement,
)


def window(nll: float, reference_nll: float, margin: float) -> dict:
    return {NLL_CHOSEN: [nll - 0.01, nll + 0.01], REFERENCE_NLL_CHOSEN: [reference_nll] * 2, MARGIN: [margin]}


def test_warns_once_with_the_numbers_and_the_keys_to_change(caplog):
    guard = DisplacementGuard()
    caplog.set_level(logging.WARNING, logger="axolotl.kto_plugin")
    assert guard.check(window(2.00, 2.00, 0.1), 10, 0.0, 2e-3, 0.1) is None  # nothing lost yet
    assert guard.check(window(2.05, 2.00, 0.3), 20, 0.0, 2e-3, 0.1) is None  # lost less than the threshold
    assert guard.check(window(2.40, 2.00, 0.6), 30, 0.0, 2e-3, 0.1) is None  # one window shows it: not yet
    message = guard.check(window(2.60, 2.00, 0.9), 40, 0.0, 2e-3, 0.1)  # the second in a row
    assert message is not None and guard.warned_at_step == 40
    # the two windows' mean: NLL 2.50, margin 0.75
    for text in ("step 40", "fell 0.50 nats per token", "2.50 against 2.00", "grew to 0.750", "`kto_sft_weight` (in force 0",
                 "`learning_rate` (now 0.002)", "`rl_beta` (now 0.1)"):
        assert text in message, text
    assert guard.check(window(3.50, 2.00, 1.5), 50, 0.0, 2e-3, 0.1) is None  # once
    assert [record.getMessage() for record in caplog.records] == [message]


def test_no_warning_while_the_margin_does_not_grow_or_nothing_accepted_was_seen():
    guard = DisplacementGuard()
    assert guard.observe(window(3.0, 2.0, -0.5)) is None  # both fall, margin negative: not a growing margin
    assert guard.observe(window(3.0, 2.0, -0.2)) is None
    assert guard.observe(window(3.0, 2.0, 0.4)) is None  # positive now: the first window that shows it
    assert guard.observe(window(3.0, 2.0, 0.1)) is not None  # two in a row, their mean margin above -0.2
    shrinking = DisplacementGuard()
    assert shrinking.observe(window(2.0, 2.0, 0.8)) is None
    assert shrinking.observe(window(3.0, 2.0, 0.5)) is None
    assert shrinking.observe(window(3.0, 2.0, 0.4)) is None  # two in a row, but the margin fell from 0.8
    assert DisplacementGuard().observe({MARGIN: [1.0]}) is None  # no desirable row in the window
    assert DisplacementGuard().observe({NLL_CHOSEN: [5.0], REFERENCE_NLL_CHOSEN: [1.0]}) is None  # no margin yet


def test_first_displacement_of_a_finished_runs_records():
    threshold = DISPLACEMENT_NATS_PER_TOKEN
    records = [
        {"step": 5, "loss": 0.5},
        {"step": 10, NLL_CHOSEN: 2.0, REFERENCE_NLL_CHOSEN: 2.0, MARGIN: 0.1},
        {"step": 20, NLL_CHOSEN: 2.0 + threshold / 2, REFERENCE_NLL_CHOSEN: 2.0, MARGIN: 0.2},
        {"step": 30, NLL_CHOSEN: 2.0 + 2 * threshold, REFERENCE_NLL_CHOSEN: 2.0, MARGIN: 0.4},
        {"step": 40, NLL_CHOSEN: 5.0, REFERENCE_NLL_CHOSEN: 2.0, MARGIN: 0.9},
        {"step": 40, "eval_" + NLL_CHOSEN: 9.0},
    ]
    assert first_displacement(records)["step"] == 40
    assert first_displacement(records[:4]) is None


def test_the_message_points_below_the_default_weight_to_it_and_at_it_higher():
    from kto_plugin.training.displacement import displacement_message
    from kto_plugin.training.loss import SFT_WEIGHT_DEFAULT

    below = displacement_message(30, 0.6, 2.6, 2.0, 0.9, SFT_WEIGHT_DEFAULT / 3, 2e-3, 0.1)
    at_default = displacement_message(30, 0.6, 2.6, 2.0, 0.9, SFT_WEIGHT_DEFAULT, 2e-3, 0.1)
    assert f"the default {SFT_WEIGHT_DEFAULT:g} pulls the accepted answers up" in below
    assert f"(in force {SFT_WEIGHT_DEFAULT:g}; higher pulls the accepted answers up harder)" in at_default


def test_a_minority_of_accepted_answers_falling_far_is_not_displacement():
    """Mislabelled accepted rows that the SFT term lets go (`kto_sft_gce_q`) lift the mean NLL while most accepted
    answers keep their likelihood: no warning, whose advice (raise the SFT weight) would imitate them again. Most
    of them falling is displacement, and the message says how many did."""
    def with_share(nll, share, margin):
        return {**window(nll, 2.0, margin), FALLEN_SHARE: [share, share]}

    minority = DisplacementGuard()
    assert minority.observe(with_share(2.2, 0.2, 0.3)) is None
    assert minority.observe(with_share(2.4, 0.5, 0.6)) is None  # half is not a majority
    assert minority.observe(with_share(2.4, 0.3, 0.9)) is None
    assert minority.warned_at_step is None
    majority = DisplacementGuard()
    assert majority.check(with_share(2.2, 0.9, 0.2), 40, 3.0, 2e-3, 0.1) is None
    message = majority.check(with_share(2.2, 0.8, 0.3), 50, 3.0, 2e-3, 0.1)
    assert message is not None and "85% of them fell" in message  # the two windows' mean
    records = [{"step": 10, NLL_CHOSEN: 2.5, REFERENCE_NLL_CHOSEN: 2.0, MARGIN: 0.3, FALLEN_SHARE: 0.2},
               {"step": 20, NLL_CHOSEN: 2.5, REFERENCE_NLL_CHOSEN: 2.0, MARGIN: 0.4, FALLEN_SHARE: 0.7},
               {"step": 30, NLL_CHOSEN: 2.5, REFERENCE_NLL_CHOSEN: 2.0, MARGIN: 0.5, FALLEN_SHARE: 0.6}]
    assert first_displacement(records)["step"] == 30


def _record(step, drop, fallen, margin):
    return {"step": step, NLL_CHOSEN: 0.1 + drop, REFERENCE_NLL_CHOSEN: 0.1, MARGIN: margin, FALLEN_SHARE: fallen}


def test_one_noisy_window_is_not_displacement_and_a_run_of_them_is():
    """Windows of the quickstart (2026-12-05): one window over the threshold between two under it, the run ending with
    its accepted answers at the reference's NLL, does not warn; the same run without the SFT term, over it from step 65
    in window after window, warns at the second."""
    with_sft_term = [_record(135, 0.03, 0.2, 0.46), _record(140, 0.19, 0.6, 0.91), _record(145, 0.06, 0.3, 0.52),
                     _record(150, 0.19, 0.4, 0.88), _record(155, 0.15, 0.6, 1.1), _record(160, 0.05, 0.2, 1.2)]
    assert first_displacement(with_sft_term) is None
    without = [_record(60, 0.06, 0.34, 0.28), _record(65, 0.13, 0.70, 0.91), _record(70, 0.36, 0.64, 0.27),
               _record(75, 0.25, 0.74, 1.26)]
    assert first_displacement(without)["step"] == 70  # mean margin of 65 and 70 (0.59) above 60's 0.28
    assert first_displacement(without[:2]) is None


def evaluation(step: int, nll: float, reference_nll: float, margin: float, fallen: float | None = 0.8) -> dict:
    record = {"step": step, "eval_loss": 0.5, "eval_nll/chosen": nll, "eval_nll_ref/chosen": reference_nll,
              "eval_rewards/margins": margin}
    return record if fallen is None else {**record, "eval_nll_fallen/chosen": fallen}


def test_the_held_out_guard_needs_a_fall_past_the_threshold_by_most_answers_and_a_positive_margin():
    from kto_plugin.training.displacement import first_held_out_displacement, held_out_displacement

    assert held_out_displacement(evaluation(30, 0.07, 0.07, 0.0)) is None  # the first evaluation: nothing moved
    assert held_out_displacement(evaluation(60, 0.15, 0.07, 0.7)) is None  # 0.08 nat: under the threshold
    assert held_out_displacement(evaluation(60, 0.45, 0.07, -0.2)) is None  # the margin is not positive
    assert held_out_displacement(evaluation(60, 0.45, 0.07, 0.7, fallen=0.3)) is None  # a minority fell: flipped labels
    assert held_out_displacement({"step": 5, "loss": 0.6, NLL_CHOSEN: 0.9, REFERENCE_NLL_CHOSEN: 0.1, MARGIN: 1.0}) is None
    found = held_out_displacement(evaluation(90, 0.45, 0.07, 1.2, fallen=None))  # a run logged before the share
    assert found is not None and abs(found.drop - 0.38) < 1e-9
    records = [evaluation(30, 0.07, 0.07, 0.1), evaluation(60, 0.45, 0.07, 1.2), evaluation(90, 0.60, 0.07, 1.5)]
    assert first_held_out_displacement(records)["step"] == 60


def test_the_held_out_callback_warns_once_on_the_main_process_with_what_to_change(caplog):
    from types import SimpleNamespace

    from kto_plugin.training.displacement import HeldOutDisplacementCallback

    caplog.set_level(logging.WARNING, logger="axolotl.kto_plugin")
    callback = HeldOutDisplacementCallback(SimpleNamespace(sft_weight=40.8))
    args = SimpleNamespace(num_train_epochs=4.0, learning_rate=2e-3)

    def log(step, record, main=True):
        state = SimpleNamespace(global_step=step, is_world_process_zero=main)
        callback.on_log(args, state, None, logs=record)

    log(30, evaluation(30, 0.45, 0.07, 1.2), main=False)  # another rank: it says nothing
    log(40, {"loss": 0.4, NLL_CHOSEN: 0.9, REFERENCE_NLL_CHOSEN: 0.1, MARGIN: 1.0})  # a training record
    log(60, evaluation(60, 0.10, 0.07, 0.8))
    assert callback.warned_at_step is None and not caplog.records
    log(90, evaluation(90, 0.45, 0.07, 1.2))
    log(120, evaluation(120, 0.60, 0.07, 1.5))
    assert callback.warned_at_step == 90 and len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    for text in ("held-out accepted answers are falling at step 90", "0.38 nats per token below the reference's",
                 "(NLL per token 0.45 against 0.07; 80% of them fell)", "eval reward margin is +1.200",
                 "`num_epochs`, now 4", "`learning_rate` (now 0.002)", "`kto_sft_weight` (the SFT term's weight in force: 40.8)"):
        assert text in message, text


def test_the_plugin_registers_the_held_out_callback_for_its_own_trainer_only(tmp_path):
    from types import SimpleNamespace

    from axolotl.utils.dict import DictDefault

    from kto_plugin.plugin import KTOPlugin
    from kto_plugin.training.displacement import HeldOutDisplacementCallback

    cfg = DictDefault({"output_dir": str(tmp_path), "rl_beta": 0.1, "kto_beta_schedule": None})
    plugin_trainer = SimpleNamespace(displacement_guard=DisplacementGuard(), set_beta=lambda beta: None, sft_weight=3.0)
    callbacks = KTOPlugin().add_callbacks_post_trainer(cfg, plugin_trainer)
    held_out = [callback for callback in callbacks if isinstance(callback, HeldOutDisplacementCallback)]
    assert len(held_out) == 1 and held_out[0].trainer is plugin_trainer
    other = KTOPlugin().add_callbacks_post_trainer(cfg, SimpleNamespace())  # not the plugin's trainer (SFT, DPO)
    assert not any(isinstance(callback, HeldOutDisplacementCallback) for callback in other)
