"""Service processes for tests: started for real, waited on until ready, stopped or killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lorag_local.stack import free_port


@dataclass
class ServiceProcess:
    module: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

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

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory so far (VmHWM)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return 1024 * int(next(x.split()[1] for x in status.splitlines() if x.startswith("VmHWM")))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 35) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def start_service(
    module: str,
    log_dir: Path,
    *,
    cwd: Path | None = None,
    python: Path | None = None,
    **env: str,
) -> ServiceProcess:
    """Start `python -m module` with the session's endpoints plus `env` (in `cwd`, and with
    another environment's `python`, if given); wait until it is ready."""
    port = free_port()
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
    service.wait_ready()
    return service
