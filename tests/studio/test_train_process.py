"""The Train tab's child process and plots: one run at a time, Stop ends its whole process group, metrics as frames."""

from __future__ import annotations

import os
import time

import pytest

from kto_plugin.studio.train_process import TrainProcess, metric_frames


def test_one_run_at_a_time_and_stop_ends_it(axolotl, tmp_path):
    config = tmp_path / "kto.yaml"
    config.write_text("base_model: nowhere\n", encoding="utf-8")
    run = TrainProcess()
    assert run.status() == "no run started yet" and run.stop() == "no run is going"
    message = run.start(config, tmp_path / "out")
    assert "started `axolotl train" in message and (tmp_path / "out" / "studio-train.log").exists()
    assert run.status().startswith("running for")
    with pytest.raises(RuntimeError, match="already going"):
        run.start(config, tmp_path / "out")
    pid = run.process.pid
    assert "stopped the run" in run.stop()
    assert run.status() == "stopped" and not run.running()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole group is gone
    run.start(config, tmp_path / "out")  # a new run may start once the last is over
    deadline = time.monotonic() + 300
    while run.running() and time.monotonic() < deadline:
        time.sleep(1)
    assert run.status().startswith("failed (exit ")  # Axolotl refuses this config; the page says so


def test_the_log_tail_keeps_each_progress_bar_s_last_drawing(tmp_path):
    run = TrainProcess()
    run.log_path = tmp_path / "studio-train.log"
    run.log_path.write_text("start\nstep 1/3\rstep 2/3\rstep 3/3\ndone\n", encoding="utf-8")
    assert run.log_tail(3) == "start\nstep 3/3\ndone"
    assert run.log_tail(1) == "done"


def test_metric_frames_name_the_series_and_skip_missing_keys():
    records = [
        {"step": 1, "loss": 0.5, "rewards/chosen": 0.0, "kl": 0.0, "beta": 0.1},
        {"step": 2, "loss": 0.49, "rewards/chosen": 0.1, "rewards/rejected": -0.1, "rewards/margins": 0.2, "beta": 0.1,
         "nll/chosen": 0.9, "nll_ref/chosen": 0.7},
    ]
    frames = metric_frames(records)
    assert frames["loss"]["value"].tolist() == [0.5, 0.49]
    rewards = frames["rewards"]
    assert rewards[rewards.step == 2].set_index("series")["value"].to_dict() == {
        "desirable": 0.1, "undesirable": -0.1, "margin": 0.2}
    assert frames["kl"]["step"].tolist() == [1] and frames["beta"]["series"].unique().tolist() == ["beta"]
    accepted = frames["accepted"].set_index("series")["value"].to_dict()
    assert accepted == {"policy": 0.9, "reference": 0.7} and frames["accepted"]["step"].tolist() == [2, 2]
    assert metric_frames([])["loss"].empty
    # an evaluation's record adds the eval split's accepted answers to their plot, and nothing to the others
    with_eval = metric_frames([*records, {"step": 2, "eval_loss": 0.6, "eval_kl": 0.0, "eval_nll/chosen": 1.1,
                                          "eval_nll_ref/chosen": 0.8}])
    accepted = with_eval["accepted"].set_index("series")["value"].to_dict()
    assert accepted == {"policy": 0.9, "reference": 0.7, "held-out policy": 1.1, "held-out reference": 0.8}
    assert with_eval["loss"]["value"].tolist() == [0.5, 0.49] and with_eval["kl"]["step"].tolist() == [1]
