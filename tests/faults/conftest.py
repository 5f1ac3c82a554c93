"""Fault drills: real services and servers, killed and restarted on a seeded schedule.

One pool of services serves every drill module (started once for the package): the tracker's
host (migration-service), two rag-service replicas sharing a Chroma server, a lora-service and
a hybrid-orchestrator. A killed service comes back on its own port, as a Kubernetes Service would.

CI runs the issue's full schedule, 20 SIGKILLs per job type (about 15 s each on 2 cores):
LORAG_DRILL_KILLS sets the SIGKILLs per job type (default 20; 3 for a quick local look),
LORAG_DRILL_JOBS the jobs per job type (default 2), LORAG_DRILL_SEED the schedule.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lorag_local.stack import free_port
from tests.support.chroma import chroma_server
from tests.support.processes import ServiceProcess, start_service

KILLS = int(os.environ.get("LORAG_DRILL_KILLS", "20"))
JOBS = int(os.environ.get("LORAG_DRILL_JOBS", "2"))
SEED = int(os.environ.get("LORAG_DRILL_SEED", "16"))
LEASE_S = 3
# A drill kills workers on purpose, and a server outage costs an attempt per lease (3 s) while
# it lasts: the attempt cap (ATTEMPTS_EXHAUSTED) must not end the drill's jobs.
WORKER_ENV = {"LORAG_WORKER_LEASE_S": str(LEASE_S), "LORAG_WORKER_MAX_ATTEMPTS": str(KILLS + 20)}
READY_S = 300  # a service start on a loaded 2-core machine (the embedding model is the slow part)

MODULES = {"tracker": "lorag_migration", "rag-1": "lorag_rag", "rag-2": "lorag_rag",
           "lora": "lorag_lora", "hybrid": "lorag_hybrid"}  # fmt: skip


@dataclass
class Pool:
    """The drills' services by slot; `kill` SIGKILLs one and starts it again in the background."""

    logs_dir: Path
    ports: dict[str, int]
    envs: dict[str, dict[str, str]]
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    pending: dict[str, concurrent.futures.Future] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    restarter: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(len(MODULES))
    )

    def start(self, slot: str) -> ServiceProcess:
        """Start the slot's service on its own port and wait until it is ready."""
        env = self.envs[slot]
        service = start_service(
            MODULES[slot], self.logs_dir, ready_timeout=READY_S, port=self.ports[slot], **env
        )
        service.instance_id = env.get("LORAG_INSTANCE_ID")
        if slot == "lora":  # its inference API (the hybrid's and the rag's LLM) must answer too
            from tests.integration.test_lora_helpers import wait_api

            service.api_port = int(env["LORAG_LORA_API_PORT"])  # type: ignore[attr-defined]
            wait_api(service, timeout=READY_S)
        self.services[slot] = service
        return service

    def alive(self, slots: tuple[str, ...]) -> list[str]:
        """The slots whose service runs now (not killed and not yet back)."""
        return [s for s in slots if s not in self.pending and self._running(s)]

    def _running(self, slot: str) -> bool:
        service = self.services.get(slot)
        return service is not None and service.process.poll() is None

    def kill(self, slot: str) -> None:
        """SIGKILL the slot's service (a LoRA job ignores SIGTERM) and restart it meanwhile."""
        self.services[slot].kill()
        future = self.restarter.submit(self.start, slot)
        self.pending[slot] = future
        future.add_done_callback(lambda f: self._restarted(slot, f))

    def _restarted(self, slot: str, future: concurrent.futures.Future) -> None:
        self.pending.pop(slot, None)
        if future.exception() is not None:
            self.failed.append(f"{slot}: {future.exception()}")

    def settle(self, timeout: float = READY_S + 60) -> None:
        """Wait until every killed service is back; fail if one did not come back."""
        deadline = time.monotonic() + timeout
        for future in list(self.pending.values()):
            future.result(timeout=max(1.0, deadline - time.monotonic()))
        assert not self.failed, f"services that did not come back: {self.failed}"
        missing = [s for s in MODULES if not self._running(s)]
        assert not missing, f"services not running after the drill: {missing}"

    def stop_all(self) -> None:
        for future in list(self.pending.values()):
            future.result(timeout=READY_S)
        for service in self.services.values():
            if service.process.poll() is None:
                try:
                    service.stop(timeout=20)
                except Exception:  # a LoRA job in training ignores SIGTERM
                    service.kill()
        self.restarter.shutdown()


@pytest.fixture(scope="package")
def pool(settings, logs_dir, tmp_path_factory) -> Iterator[Pool]:
    """Every service the drills kill, started once (in parallel) for the whole package."""
    from lorag_lora.tiny import ensure_tiny_llama
    from tests.integration.test_lora_helpers import lora_env

    state = tmp_path_factory.mktemp("drill")
    models = state / "models"
    models.mkdir()
    ensure_tiny_llama(models)
    ports = {slot: free_port() for slot in MODULES}
    api_port = free_port()
    llm = {"LORAG_LORA_OPENAI_URL": f"http://127.0.0.1:{api_port}/v1"}
    with chroma_server(state / "chroma", logs_dir) as chroma_url:
        rag = dict(
            WORKER_ENV, **llm, LORAG_CHROMA_URL=chroma_url, LORAG_RAG_TORCH_THREADS="1",
            LORAG_STATE_DIR=str(state), HF_HUB_OFFLINE="1",
        )  # fmt: skip
        envs = {
            "tracker": {},
            "rag-1": {**rag, "LORAG_INSTANCE_ID": "drill-rag-1"},
            "rag-2": {**rag, "LORAG_INSTANCE_ID": "drill-rag-2"},
            "lora": {**lora_env(models, state / "lora", api_port), **WORKER_ENV,
                     "LORAG_INSTANCE_ID": "drill-lora-1"},
            "hybrid": {**WORKER_ENV, **llm, "LORAG_INSTANCE_ID": "drill-hybrid-1",
                       "LORAG_RAG_SERVICE_URL": f"http://127.0.0.1:{ports['rag-1']}",
                       "LORAG_HYBRID_EVAL_PAIRS": "2", "LORAG_HYBRID_RETRY_BACKOFF_S": "0.5"},
        }  # fmt: skip
        running = Pool(logs_dir, ports, envs)
        started = time.monotonic()
        try:
            starts = [running.restarter.submit(running.start, slot) for slot in MODULES]
            for future in starts:
                future.result(timeout=READY_S + 60)
            for slot in ("rag-1", "rag-2", "lora", "hybrid"):
                service = running.services[slot]
                service.wait_log(f"worker {service.instance_id} claiming", timeout=120)
            print(f"\ndrill pool ({', '.join(MODULES)}) ready in {time.monotonic() - started:.1f}s")
            yield running
        finally:
            running.stop_all()
