"""Conversion runs in the service: a dry run answers at once; a real run is a job of its own,
one at a time per process (the conversion lock in Postgres guards across processes)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker

from lorag_api.migration import Conversion, ConversionReport, RolledBack
from lorag_core.service.api import Conflict, NotFound
from lorag_migration import conversion
from lorag_migration.adapters.legacy_store import ConversionBusy
from lorag_migration.reporting import JobReporter

KEEP_FINISHED = 20  # reports of the last runs, for `lorag migrate` to fetch when its job ended
T = TypeVar("T")
log = logging.getLogger(__name__)


class ConversionRuns:
    """Starts conversions and keeps what became of the recent ones."""

    def __init__(self, dsn: str, broker: KafkaBroker) -> None:
        self.dsn, self.broker = dsn, broker
        self.runs: OrderedDict[str, Conversion] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._reporter: JobReporter | None = None

    async def dry_run(self, batch_size: int) -> Conversion:
        """What a real run would do now; changes nothing."""
        report = await _off_loop(
            conversion.convert_legacy_jobs, self.dsn, batch_size=batch_size, dry_run=True
        )
        return Conversion(report=ConversionReport.model_validate(report.as_dict()))

    async def start(self, batch_size: int) -> Conversion:
        """Start a real run as a job; 409 while another runs in this service."""
        self._refuse_while_running()
        job_id = f"migration-{uuid.uuid4().hex[:12]}"
        self._reporter = JobReporter(self.broker, job_id, stage="converting")
        self._remember(Conversion(job_id=job_id, state="RUNNING"))
        self._task = asyncio.create_task(self._run(job_id, batch_size, self._reporter))
        return self.runs[job_id]

    def get(self, job_id: str) -> Conversion:
        """A run's state and, once it ended, its report."""
        found = self.runs.get(job_id)
        if found is None:
            raise NotFound(f"no conversion {job_id}", code="CONVERSION_NOT_FOUND",
                           hint="the service keeps its recent runs only, not across restarts; "
                           f"the job's summary: `lorag jobs show {job_id}`")  # fmt: skip
        return found

    async def rollback(self) -> RolledBack:
        """Undo every conversion; 409 while one runs."""
        self._refuse_while_running()
        return RolledBack.model_validate(await _off_loop(conversion.rollback, self.dsn))

    async def stop(self) -> None:
        """End a running conversion after its current batch: each batch commits whole, so
        nothing is lost and the next run resumes there."""
        if self._task is not None and self._reporter is not None:
            self._reporter.stop()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, job_id: str, batch_size: int, reporter: JobReporter) -> None:
        try:
            report = await _off_loop(
                conversion.convert_legacy_jobs, self.dsn, batch_size=batch_size, progress=reporter
            )
            self._remember(Conversion(job_id=job_id, state="SUCCEEDED",
                           report=ConversionReport.model_validate(report.as_dict())))  # fmt: skip
            await reporter.succeed({"converted": report.converted,
                                    "unconvertible": len(report.unconvertible),
                                    "already_converted": report.already_converted})  # fmt: skip
        except Exception as exc:
            message = str(exc)
            log.warning("conversion %s failed: %s", job_id, message)
            self._remember(Conversion(job_id=job_id, state="FAILED", error=message))
            await reporter.fail(message)
        finally:
            self._task = self._reporter = None

    def _remember(self, outcome: Conversion) -> None:
        assert outcome.job_id is not None
        self.runs[outcome.job_id] = outcome
        self.runs.move_to_end(outcome.job_id)
        while len(self.runs) > KEEP_FINISHED:
            self.runs.popitem(last=False)

    def _refuse_while_running(self) -> None:
        if self._reporter is not None:
            job_id = self._reporter.job_id
            raise Conflict(f"conversion {job_id} is running", code="CONVERSION_RUNNING",
                           hint=f"follow it: `lorag jobs show {job_id}`")  # fmt: skip


async def _off_loop(work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a conversion step on a worker thread; another holder of the lock is a 409."""
    try:
        return await asyncio.to_thread(work, *args, **kwargs)
    except ConversionBusy as exc:
        raise Conflict(str(exc), code="CONVERSION_BUSY", hint="retry once it ended") from None
