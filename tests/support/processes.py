"""Service processes for tests: started for real, waited on until ready, stopped or killed."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lorag_local.stack import free_port

# A machine shared by many runs can take longer than a minute to import torch: this raises
# every readiness wait's floor (seconds) without changing what any test asserts.
MIN_READY_S = float(os.environ.get("LORAG_TEST_MIN_READY_S", "0"))


@dataclass
class ServiceProcess:
    module: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    instance_id: str | None = None  # its LORAG_INSTANCE_ID, when the test named it

    @property
    def url(self) -> str:
        """Its API (health, readiness and its routes), for LORAG_*_SERVICE_URL and clients."""
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.module} exited {self.process.returncode}:\n{self.log()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.module} not ready in {timeout}s:\n{self.log()}")

    def wait_log(self, text: str, timeout: float = 60) -> None:
        """Wait until the process has logged `text` (a moment it cannot be asked about)."""
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise TimeoutError(f"{self.module} did not log {text!r}:\n{self.log()}")
            time.sleep(0.2)

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory so far (VmHWM)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return 1024 * int(next(x.split()[1] for x in status.splitlines() if x.startswith("VmHWM")))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 35) -> int:
        """SIGTERM, and wait for the exit code; one that does not stop in `timeout` seconds is
        killed (left running, it would take other tests' jobs and partitions) and reported."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            stuck = f"{self.module} did not stop within {timeout:.0f} s of SIGTERM; killed"
            raise AssertionError(f"{stuck}:\n{self.log()}") from None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def start_service(
    module: str,
    log_dir: Path,
    *,
    cwd: Path | None = None,
    python: Path | None = None,
    ready_timeout: float = 60,
    port: int | None = None,
    **env: str,
) -> ServiceProcess:
    """Start `python -m module` with the session's endpoints plus `env` (in `cwd`, and with
    another environment's `python`, if given, on `port` if given); wait until it is ready."""
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{module}-{port}.log"
    process = subprocess.Popen(
        [str(python or sys.executable), "-m", module],
        env={**os.environ, "LORAG_HEALTH_PORT": str(port), **env},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=cwd,
    )
    service = ServiceProcess(module, port, process, log_path)
    service.wait_ready(max(ready_timeout, MIN_READY_S))
    return service


def start_replicas(
    module: str, log_dir: Path, count: int, *, name: str, ready_timeout: float = 60, **env: str
) -> list[ServiceProcess]:
    """Start `count` instances of a service side by side, named NAME-1..NAME-count
    (LORAG_INSTANCE_ID), each on its own port; wait until all are ready."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        futures = [
            pool.submit(
                start_service,
                module,
                log_dir,
                ready_timeout=ready_timeout,
                **env,
                LORAG_INSTANCE_ID=f"{name}-{k}",
            )
            for k in range(1, count + 1)
        ]
        concurrent.futures.wait(futures)
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:  # stop the ones that did start, then say why the others did not
        for future in futures:
            if future.exception() is None:
                future.result().kill()
        raise failed[0]  # type: ignore[misc]
    replicas = [future.result() for future in futures]
    for k, replica in enumerate(replicas, 1):
        replica.instance_id = f"{name}-{k}"
    return replicas
