"""The cost of tracing (issue 12): the event round trip and LoRA training tokens/s with the span
exporter on (OTLP to the stack's Jaeger) and off, in one run. Target: at most 3% slower on.

Round trip: the job tracker (a real service process) started with LORAG_OTEL_ENDPOINT set to the
stack's Jaeger, then with `off`, alternately; a request is published and timed until its job is
QUEUED in Postgres (bench.events' measure). Training: the service's loop inside a
`lora.training` span whose progress reports add step/loss events (at the service's report
interval, as its JobHooks do), exported to Jaeger, against the same loop with no span; both in a
worker thread on one torch thread, as the service trains; interleaved in alternating order, best
of ROUNDS (the machine is shared).
"""

from __future__ import annotations

import asyncio
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.events import WARM_UP, lorag_round_trips
from bench.report import Figure, at_most, cpu_seconds, figure, percentile
from lorag_core.settings import Settings
from tests.support.processes import start_service

ROUND_TRIPS_PER_BLOCK = 50
BLOCKS = 8  # on, off, on, off…: drift in a shared machine's load hits both alike, and each
# block's own tracker process shifts its round trips a little (2 blocks of 200 gave 1.017-1.184
# over three quiet runs of the same code, 4 of 100 0.91-1.08: too few to hold 3% still)
ROUNDS = 4  # training: traced/untraced pairs, the order swapped every other round
# Issue 12: "Target: at most 3% slower with it on" (on / off, so lower is better for latency).
SLOWER_BY_AT_MOST = at_most(1.03, of="ratio", issue=12)


async def round_trips(settings: Settings, work: Path, endpoint: str) -> tuple[list[float], float]:
    """Round trips (ms) through a tracker exporting to `endpoint`, and its CPU seconds for them."""
    tracker = await asyncio.to_thread(
        start_service, "lorag_migration", work / f"logs-{endpoint.split(':')[0]}",
        LORAG_OTEL_ENDPOINT=endpoint,
    )  # fmt: skip
    try:
        before = cpu_seconds(tracker.process.pid)
        trips = await lorag_round_trips(settings, ROUND_TRIPS_PER_BLOCK)
        return trips, cpu_seconds(tracker.process.pid) - before
    finally:
        await asyncio.to_thread(tracker.stop)


def training_rates(base: Any, rows: list[Any], provider: Any) -> Rates:
    """Tokens/s with the training span and its events exported, and with no span (best of
    ROUNDS)."""
    import time

    from opentelemetry import trace

    from bench.lora import BATCH, STEPS, lora_model
    from lorag_lora.handlers import REPORT_EVERY_S
    from lorag_lora.training import Plan, train

    class SpanHooks:
        """What the service's hooks do for tracing: an event per progress report (throttled to
        one each REPORT_EVERY_S, and the last step), not one per step."""

        def __init__(self) -> None:
            self._last = 0.0

        def progress(self, figures: dict[str, float]) -> None:
            now = time.monotonic()
            if now - self._last < REPORT_EVERY_S and figures["percent"] < 100:
                return
            self._last = now
            trace.get_current_span().add_event(
                "training step", {"step": int(figures["step"]), "loss": figures["loss"]}
            )

        def should_stop(self) -> bool:
            return False

        def save_checkpoint(self, step: int, blob: bytes) -> None:
            pass

    plan = Plan(lr=2e-4, batch_size=BATCH, seed=0, max_steps=STEPS, eval_every=10**9,
                checkpoint_every=10**9, pad_id=base.tokenizer.pad_token_id)  # fmt: skip
    tracer = provider.get_tracer("lorag")  # its own: a library may have set the global one

    def measured(traced: bool) -> tuple[float, float]:
        """Tokens/s of the loop (wall), and the process's CPU seconds per token, counting the
        export of the span (flushed inside the window, so it is not billed to the next run)."""
        cpu = time.process_time()
        with tracer.start_as_current_span("lora.training") if traced else nullcontext():
            outcome = train(lora_model(base), rows, [], plan, SpanHooks())
        if traced:
            provider.force_flush()
        cpu = time.process_time() - cpu
        return float(outcome.metrics["tokens_per_s"]), cpu / outcome.metrics["tokens"]

    on, off = [], []
    for i in range(ROUNDS):  # whichever runs first in a pair must not always be the same
        for traced in (False, True) if i % 2 else (True, False):
            (on if traced else off).append(measured(traced))
    # Best of: the fastest wall rate, the least CPU per token.
    return Rates(max(r[0] for r in on), max(r[0] for r in off),
                 min(r[1] for r in on), min(r[1] for r in off))  # fmt: skip


@dataclass(frozen=True)
class Rates:
    on: float
    off: float
    cpu_per_token_on: float
    cpu_per_token_off: float


async def run(settings: Settings, work: Path) -> list[Figure]:
    import torch

    from bench.lora import BATCH, SEQ, TORCH_THREADS, packed_rows, token_rows
    from lorag_core.settings import TelemetrySettings
    from lorag_core.telemetry import setup_tracing
    from lorag_lora.adapters.models import ModelManager
    from lorag_lora.config import LoraSettings

    endpoint = os.environ.get("LORAG_OTEL_ENDPOINT") or "off"
    if endpoint == "off":
        raise RuntimeError("no trace backend: run the bench on the stack it starts (Jaeger)")
    on, off, cpu = [], [], {"on": 0.0, "off": 0.0}
    for _ in range(BLOCKS):
        for mode, trips in (("on", on), ("off", off)):
            block, spent = await round_trips(settings, work, endpoint if mode == "on" else "off")
            trips += block
            cpu[mode] += spent
    provider = setup_tracing(TelemetrySettings(endpoint=endpoint), "bench-tracing")
    torch.set_num_threads(TORCH_THREADS)  # why one: bench.lora
    base = ModelManager(LoraSettings(models_dir=work / "models")).load(None)
    rows = packed_rows(token_rows(base, [SEQ] * 400), SEQ, 0)
    rates = await asyncio.to_thread(training_rates, base, rows, provider)
    provider.shutdown()
    p50_on, p50_off = percentile(on, 0.5), percentile(off, 0.5)
    requests = BLOCKS * (ROUND_TRIPS_PER_BLOCK + WARM_UP)
    return [
        figure("tracing.event_round_trip_p50_ms", p50_on, "ms", baseline=p50_off,
               baseline_is="the same tracker with LORAG_OTEL_ENDPOINT=off",
               target=SLOWER_BY_AT_MOST, n=len(on)),
        # The tracker's CPU for the same round trips (and the warm-ups before each block's
        # figures): what the spans and their export cost, whatever the load does to the wall.
        figure("tracing.event_cpu_ms_per_request", cpu["on"] * 1000 / requests, "ms",
               baseline=cpu["off"] * 1000 / requests,
               baseline_is="the same tracker with LORAG_OTEL_ENDPOINT=off: CPU per request",
               target=None, n=requests),
        figure("tracing.lora_tokens_per_s", rates.on, "tokens/s", baseline=rates.off,
               baseline_is=f"the same loop, no span (batch {BATCH}x{SEQ})",
               ratio=rates.off / rates.on if rates.on else None,
               ratio_is="untraced / traced (slowdown)", target=SLOWER_BY_AT_MOST, n=ROUNDS),
        # The same runs by CPU: what tracing adds to the work, whatever the machine's load does
        # to the wall clock (on a shared machine the wall figure moves by more than 3% alone).
        figure("tracing.lora_cpu_us_per_token", rates.cpu_per_token_on * 1e6, "us",
               baseline=rates.cpu_per_token_off * 1e6,
               baseline_is="the same loop, no span: process CPU per token",
               target=SLOWER_BY_AT_MOST, n=ROUNDS),
    ]  # fmt: skip
