"""`make demo`: bring up the local servers and the services, submit the main job, show it.

What runs end to end grows with each service; the script says what it shows and what it does not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LORAG = [sys.executable, "-m", "lorag_cli"]
CORPUS = ROOT / "deploy" / "demo" / "corpus"
HEALTH_PORTS = {
    "rag-service": 8101,
    "lora-service": 8112,
    "hybrid-orchestrator": 8103,
    "migration-service": 8104,
    "gateway": 8105,
}


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def lorag(*args: str, capture: bool = False) -> str:
    done = subprocess.run([*LORAG, *args], check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def wait_ready(timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(HEALTH_PORTS)
    while pending and time.monotonic() < deadline:
        for name, port in list(pending.items()):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                    print(f"   {name} ready on :{port}")
                    del pending[name]
            except OSError:
                pass
        time.sleep(0.5)
    if pending:
        raise SystemExit(
            f"services not ready in {timeout:.0f}s: {', '.join(pending)}; see their output above"
        )


def main() -> int:
    say("starting local Kafka, Postgres and S3 (the first run downloads and builds them)")
    lorag("up")
    say("starting every service as its own process: lorag serve all")
    services = subprocess.Popen([*LORAG, "serve", "all"], env=os.environ.copy())
    try:
        wait_ready()
        say(f"submitting a legacy RAG job over {CORPUS.relative_to(ROOT)} (uploaded to S3)")
        job_id = json.loads(
            lorag("submit", "RAG", "--dataset", str(CORPUS), "--json", capture=True)
        )["job_id"]
        print(f"   job id: {job_id}")
        time.sleep(1.5)
        say("the job as recorded: requested RAG, effective EXTERNAL_RAG, a deprecation notice")
        lorag("jobs", "show", job_id)
        say("cancelling it")
        lorag("jobs", "cancel", job_id)
        time.sleep(1.0)
        lorag("jobs", "ls", "--limit", "5")
        say("not yet in this build: the RAG, LoRA and hybrid workers (jobs stay QUEUED)")
    finally:
        services.send_signal(signal.SIGTERM)
        services.wait(timeout=60)
    say("services stopped; the local servers keep running (`make down` stops them)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
