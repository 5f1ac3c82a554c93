"""The resource estimator against measured LoRA runs: predicted vs measured peak memory and time.

Each configuration trains in a fresh process (bench/_train_probe.py), so its peak RSS is its own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from lorag_core.settings import Settings
from lorag_hybrid.recommend import estimate, models
from lorag_hybrid.recommend.resources import detect

GRID = [(4, 64), (8, 128), (16, 256)]  # (batch, sequence)
STEPS, RANK = 20, 8
PROBE = Path(__file__).with_name("_train_probe.py")


def measure(folder: Path, batch: int, seq: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(PROBE), str(folder), str(batch), str(seq), str(STEPS), str(RANK)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


async def run(settings: Settings, work: Path) -> list[dict[str, Any]]:
    from lorag_lora.tiny import ensure_tiny_llama

    folder = await asyncio.to_thread(ensure_tiny_llama, work / "models")
    spec = models.resolve(str(folder))
    machine = detect()
    figures = []
    for batch, seq in GRID:
        measured = await asyncio.to_thread(measure, folder, batch, seq)
        predicted = estimate.training(
            spec, measured["tokens"], r=RANK, batch=batch, seq=seq, full=False,
            resources=machine, prices=estimate.Prices(),
        )  # fmt: skip
        for figure, pred, meas, target in (
            ("peak_memory_bytes", predicted.peak_memory_bytes, measured["peak_bytes"], 0.25),
            ("seconds", predicted.seconds, measured["seconds"], 0.35),
        ):
            figures.append({
                "bench": "estimator", "figure": f"{figure}@batch{batch}x{seq}",
                "value": round(pred, 2), "baseline": "measured run",
                "baseline_value": round(meas, 2), "ratio": round(pred / meas, 3),
                "target": f"within ±{target:.0%}",
            })  # fmt: skip
    return figures
