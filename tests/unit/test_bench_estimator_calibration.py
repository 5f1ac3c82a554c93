"""The estimator's calibration fit recovers the constants that made its runs."""

from __future__ import annotations

import pytest

from bench.calibrate_estimator import CALIBRATION_GRID, RANK, STEPS, Run, fit_memory, fit_time
from bench.estimator import TEST_GRID
from lorag_hybrid.recommend import estimate
from lorag_hybrid.recommend.models import TINY
from lorag_hybrid.recommend.resources import Resources

TWO_CORES = Resources(cpu_cores=2, memory_bytes=8 * 2**30)


def runs_made_by(monkeypatch: pytest.MonkeyPatch, **constants: float) -> list[Run]:
    """Runs whose peaks and times are exactly the formulas with `constants`."""
    with monkeypatch.context() as patched:
        for name, value in constants.items():
            patched.setattr(estimate, name, value)
        runs = []
        for batch, seq in CALIBRATION_GRID:
            tokens = batch * seq * STEPS
            made = estimate.training(TINY, tokens, r=RANK, batch=batch, seq=seq, full=False,
                                     resources=TWO_CORES, prices=estimate.Prices())  # fmt: skip
            runs.append(Run(batch, seq, made.peak_memory_bytes, made.seconds, tokens))
    return runs


def test_the_fit_recovers_the_constants_that_made_the_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = runs_made_by(monkeypatch, RUNTIME_OVERHEAD=900 * 2**20, ACTIVATION_BYTES=150,
                        CPU_TRAIN_FLOPS=5e10, CPU_STEP_OVERHEAD_S=0.02)  # fmt: skip
    overhead, activation = fit_memory(TINY, runs)
    assert overhead == pytest.approx(900 * 2**20, rel=1e-6)
    assert activation == pytest.approx(150, rel=1e-6)
    flops, step = fit_time(TINY, runs, cores=2)
    assert flops == pytest.approx(5e10, rel=1e-6)
    assert step == pytest.approx(0.02, rel=1e-6)


def test_a_negative_step_cost_is_held_at_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = runs_made_by(monkeypatch, CPU_TRAIN_FLOPS=5e10, CPU_STEP_OVERHEAD_S=-0.01)
    flops, step = fit_time(TINY, runs, cores=2)
    assert step == 0.0 and flops > 0


def test_the_bench_tests_on_points_the_constants_were_not_fitted_on() -> None:
    assert not set(TEST_GRID) & set(CALIBRATION_GRID)
