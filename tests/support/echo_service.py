"""A service whose worker counts to a number: exercises the shared worker without a model.

Run with `python -m tests.support.echo_service`. Parameters ride in the request's minion id as
`steps=N[,pause=S][,eager][,fail]`, so the test controls the work without a new contract: N steps
of S seconds (0.2), each reported (every one published when `eager`, not a few per second).
"""

from __future__ import annotations

import asyncio

from lorag_core.contracts import JobResult
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import TrainingType
from lorag_core.service.entry import serve
from lorag_core.service.host import ServiceHost
from lorag_core.service.worker import JobContext, JobFailed, register_worker
from lorag_core.settings import Settings


async def count(ctx: JobContext) -> JobResult:
    spec = dict(
        p.split("=") if "=" in p else (p, "1") for p in (ctx.request.minion_id or "").split(",")
    )
    steps, pause = int(spec.get("steps", "5")), float(spec.get("pause", "0.2"))
    await ctx.report(JobState.RUNNING, stage="counting", percent=0.0)
    for step in range(steps):
        await ctx.check_cancelled()
        await asyncio.sleep(pause)
        await ctx.report(
            stage="counting", percent=100.0 * (step + 1) / steps, metrics={"step": step},
            force="eager" in spec,
        )  # fmt: skip
    if "fail" in spec:
        raise JobFailed("ECHO_FAILED", "asked to fail")
    return JobResult(summary={"steps": steps, "attempt": ctx.attempt})


def register(host: ServiceHost) -> None:
    register_worker(host, frozenset({TrainingType.LOCAL_FINE_TUNING}), count)


if __name__ == "__main__":
    serve("echo-service", Settings(), register, health_port=0)
