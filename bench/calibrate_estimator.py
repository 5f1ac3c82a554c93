"""Calibrate the estimator's CPU constants on one grid of LoRA runs; bench/estimator.py tests them
on another grid, so the errors it reports are out of sample.

    python -m bench.calibrate_estimator [MODELS_DIR]

Trains the tiny LLaMA (rank 8, q_proj/v_proj, STEPS steps) once per CALIBRATION_GRID point, each in
a fresh process with its own peak RSS, and prints the fitted constants of
services/hybrid-orchestrator/src/lorag_hybrid/recommend/estimate.py beside the current ones:
- memory: RUNTIME_OVERHEAD and ACTIVATION_BYTES. LOGIT_BYTES keeps its arithmetic value: with one
  model, activations and logits both grow with batch x seq and cannot be told apart;
- time: CPU_TRAIN_FLOPS and CPU_STEP_OVERHEAD_S.
Both fits minimise the relative error. Run it on an idle machine: under load the same runs take
2-10x longer. Copy the printed lines into estimate.py by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lorag_hybrid.recommend import estimate, models
from lorag_hybrid.recommend.models import ModelSpec
from lorag_hybrid.recommend.resources import Resources, detect

# The grid estimate.py's constants were fitted on (0ace0ff, a4df73b); bench/estimator.py tests on
# points outside it.
CALIBRATION_GRID = [(4, 64), (8, 128), (16, 256)]  # (batch, sequence)
STEPS, RANK = 20, 8
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    batch: int
    seq: int
    peak_bytes: int
    seconds: float
    tokens: int
    cpu_seconds: float = 0.0
    load_1m: float = 0.0  # the machine's load average as the run started


def cpu_machine() -> Resources:
    """This machine as the probe uses it: its CPU cores, no GPU (the probe trains on CPU)."""
    found = detect()
    return Resources(found.cpu_cores, found.memory_bytes)


def measure(folder: Path, batch: int, seq: int, threads: int) -> Run:
    """One training run in a fresh process (bench/_train_probe.py)."""
    load_1m = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, "-m", "bench._train_probe", str(folder), str(batch), str(seq),
         str(STEPS), str(RANK), str(threads)],
        capture_output=True, text=True, check=True, timeout=900, cwd=REPO,
    )  # fmt: skip
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return Run(batch, seq, found["peak_bytes"], found["seconds"], found["tokens"],
               found["cpu_seconds"], load_1m)  # fmt: skip


def predict(spec: ModelSpec, run: Run, machine: Resources) -> estimate.Estimate:
    """What estimate.py says of `run`'s configuration on `machine`."""
    return estimate.training(spec, run.tokens, r=RANK, batch=run.batch, seq=run.seq, full=False,
                             resources=machine, prices=estimate.Prices())  # fmt: skip


def _relative_fit(features: np.ndarray, target: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Least squares of target ≈ features @ x, each row divided by its run's measured total, so
    the fit minimises relative, not absolute, error (small runs count as much as large ones)."""
    x, *_ = np.linalg.lstsq(features / scale[:, None], target / scale, rcond=None)
    return x


def fit_memory(spec: ModelSpec, runs: list[Run]) -> tuple[int, float]:
    """RUNTIME_OVERHEAD and ACTIVATION_BYTES from the runs' peaks (LOGIT_BYTES held)."""
    # What the formula says apart from the two fitted terms (weights, optimizer state, logits),
    # taken from estimate.py itself so a term added there is not forgotten here.
    known = np.array([
        estimate.train_memory(spec, estimate.lora_params(spec, RANK), r.batch, r.seq, False)
        - estimate.RUNTIME_OVERHEAD
        - r.batch * r.seq * spec.hidden * spec.layers * estimate.ACTIVATION_BYTES
        for r in runs
    ], dtype=float)  # fmt: skip
    measured = np.array([r.peak_bytes for r in runs], dtype=float)
    units = np.array([r.batch * r.seq * spec.hidden * spec.layers for r in runs], dtype=float)
    overhead, per_unit = _relative_fit(np.column_stack([np.ones(len(runs)), units]),
                                       measured - known, measured)  # fmt: skip
    return int(overhead), float(per_unit)


def fit_time(spec: ModelSpec, runs: list[Run], cores: int) -> tuple[float, float]:
    """CPU_TRAIN_FLOPS and CPU_STEP_OVERHEAD_S (held at 0 if the fit would make it negative)."""
    work = np.array([4 * spec.params * r.tokens / (cores / 2) for r in runs], dtype=float)
    steps = np.array([r.tokens / (r.batch * r.seq) for r in runs], dtype=float)
    measured = np.array([r.seconds for r in runs])
    per_flop, per_step = _relative_fit(np.column_stack([work, steps]), measured, measured)
    if per_step < 0:
        per_step, per_flop = 0.0, float(_relative_fit(work[:, None], measured, measured)[0])
    return 1 / per_flop, float(per_step)


def main(argv: list[str]) -> int:
    from lorag_lora.tiny import ensure_tiny_llama

    models_dir = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="lorag-calibrate-"))
    folder = ensure_tiny_llama(models_dir)
    spec, machine = models.resolve(str(folder)), cpu_machine()
    runs = [measure(folder, b, s, machine.cpu_cores) for b, s in CALIBRATION_GRID]
    for run in runs:
        now = predict(spec, run, machine)
        print(f"{run.batch}x{run.seq}: peak {run.peak_bytes / 2**20:.0f} MiB "
              f"(estimate.py: {now.peak_memory_bytes / 2**20:.0f}), "
              f"{run.seconds:.2f} s (estimate.py: {now.seconds:.2f}), "
              f"load {run.load_1m:.1f}")  # fmt: skip
    overhead, activation = fit_memory(spec, runs)
    flops, step = fit_time(spec, runs, machine.cpu_cores)
    print(f"fitted on {CALIBRATION_GRID}, {STEPS} steps, rank {RANK}, {machine.cpu_cores} cores:")
    now_mib = estimate.RUNTIME_OVERHEAD / 2**20
    print(f"RUNTIME_OVERHEAD = {overhead / 2**20:.0f} * 2**20  # now {now_mib:.0f} * 2**20")
    print(f"ACTIVATION_BYTES = {activation:.0f}  # now {estimate.ACTIVATION_BYTES}")
    print(f"CPU_TRAIN_FLOPS = {flops:.2g}  # now {estimate.CPU_TRAIN_FLOPS:.2g}")
    print(f"CPU_STEP_OVERHEAD_S = {step:.3f}  # now {estimate.CPU_STEP_OVERHEAD_S}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
