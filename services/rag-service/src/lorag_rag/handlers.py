"""The EXTERNAL_RAG runner: run the ingest, turn dataset problems into a FAILED job's code."""

from __future__ import annotations

import logging

from lorag_core.contracts import JobResult
from lorag_core.service.worker import JobContext, JobFailed, Runner
from lorag_rag.deps import RagDeps
from lorag_rag.domain.documents import DatasetError
from lorag_rag.ingest import ingest

log = logging.getLogger(__name__)


def make_runner(get_deps: DepsProvider) -> Runner:
    """A runner for `register_worker`; dependencies come from the process's lifespan."""

    async def run(ctx: JobContext) -> JobResult:
        try:
            return await ingest(ctx, get_deps())
        except DatasetError as exc:
            log.warning("dataset refused: %s", exc)
            raise JobFailed(exc.code, exc.message) from None

    return run


class DepsProvider:
    """Hands out the dependencies built at start; the runner never builds its own."""

    def __init__(self) -> None:
        self.deps: RagDeps | None = None

    def __call__(self) -> RagDeps:
        if self.deps is None:
            raise RuntimeError("the rag-service's dependencies are built when it starts")
        return self.deps
