"""The run-time estimate: its arithmetic (never a timing), final evaluation included."""

import pytest

from bookcover.estimate import RunEstimate, estimate_line, remaining_seconds


def test_estimate_line_mentions_quick_only_for_long_paper_runs():
    long = estimate_line(33 * 3600, "train", "paper", 200, 200)
    assert "33.0 h" in long and "whole run" in long and "--preset quick" in long
    assert "final evaluation included" in long
    assert "--preset quick" not in estimate_line(33 * 3600, "train", "quick", 200, 200)
    assert "--preset quick" not in estimate_line(600, "train", "paper", 200, 200)
    assert "remaining 4 epochs" in estimate_line(60, "train", "paper", 4, 10)


def test_remaining_seconds_counts_every_phase_once():
    # 2 s a step: 10 s spent, 1 untimed step, 40 steps left, 3 epoch ends of 1.5 steps, final 12 steps.
    got = remaining_seconds(per_step=2.0, elapsed=10.0, untimed=1, steps_left=40, epoch_ends_left=3,
                            epoch_overhead_steps=1.5, final_steps=12.0)
    assert got == pytest.approx(10 + 2 * (1 + 40 + 4.5 + 12))


def _drive(est, clock, steps, per_step=2.0):
    for step in range(steps):
        est(0, step)
        clock["t"] += per_step


def test_run_estimate_extrapolates_the_timed_steps(capsys):
    now = {"t": 0.0}
    est = RunEstimate("train", "paper", 0, epochs=10, steps_per_epoch=100, probe=5, clock=lambda: now["t"])
    _drive(est, now, 7)
    assert est.seconds == pytest.approx(1000 * 2.0)  # 1000 steps x 2 s
    assert est.line is not None and "33 min" in est.line
    assert capsys.readouterr().err.strip() == est.line
    quiet = RunEstimate("train", "paper", 0, 10, 100, quiet=True, clock=lambda: now["t"])
    _drive(quiet, now, 7)
    assert quiet.line is None


def test_run_estimate_adds_the_epoch_extras_and_the_final_evaluation():
    """The final evaluation counts once, after the last epoch (issue 18: it was left out)."""
    now = {"t": 0.0}
    est = RunEstimate("gan train", "quick", 0, epochs=4, steps_per_epoch=50, epoch_overhead_steps=2.5,
                      final_steps=30.0, probe=5, clock=lambda: now["t"])
    _drive(est, now, 7)
    assert est.seconds == pytest.approx(2.0 * (4 * 50 + 4 * 2.5 + 30.0))
    resumed = RunEstimate("gan train", "quick", 2, epochs=4, steps_per_epoch=50, epoch_overhead_steps=2.5,
                          final_steps=30.0, probe=5, clock=lambda: now["t"])
    for step in range(7):
        resumed(2, step)
        now["t"] += 2.0
    assert resumed.seconds == pytest.approx(2.0 * (2 * 50 + 2 * 2.5 + 30.0))
    assert "remaining 2 epochs" in resumed.line


def test_the_final_evaluations_host_seconds_are_added_once_whatever_the_step_time():
    now = {"t": 0.0}
    est = RunEstimate("train", "quick", 0, epochs=2, steps_per_epoch=10, final_steps=4.0, final_seconds=7.5,
                      probe=3, clock=lambda: now["t"])
    _drive(est, now, 5, per_step=0.5)
    assert est.seconds == pytest.approx(0.5 * (2 * 10 + 4.0) + 7.5)
    assert remaining_seconds(1.0, 0.0, 0, 0, 0, 0.0, 0.0, final_seconds=3.0) == 3.0
