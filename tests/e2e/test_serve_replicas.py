"""`lorag serve all --replicas rag-service=2`: two rag-service instances, each with its own id
and port, beside one of every other service."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from lorag_cli.replicas import REPLICA_PORT_STEP
from lorag_cli.services import SERVICES
from lorag_local.stack import free_port

pytestmark = pytest.mark.e2e
RAG_INDEX = list(SERVICES).index("rag-service")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def health(port: int) -> dict | None:
    """The /health answer once /ready says the instance is ready; None before."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
            if r.status != 200:
                return None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return json.load(r)
    except OSError:
        return None


def test_serve_all_with_two_rag_replicas_starts_two_named_instances(settings, logs_dir, tmp_path):
    base = free_port()
    while not all(port_free(base + i + d) for i in range(8) for d in (0, REPLICA_PORT_STEP)):
        base = free_port()
    rag_ports = [base + RAG_INDEX, base + RAG_INDEX + REPLICA_PORT_STEP]
    log_path = logs_dir / "serve-replicas.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lorag_cli", "serve", "all", "--replicas", "rag-service=2"],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "LORAG_HEALTH_PORT_BASE": str(base),
             "LORAG_STATE_DIR": str(tmp_path / "state"), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        answers = [health(p) for p in rag_ports]
        while not all(answers) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            answers = [health(p) for p in rag_ports]
        assert all(answers), log_path.read_text()[-5000:]
        assert [a["instance"] for a in answers] == ["rag-service-1", "rag-service-2"]
        assert all(a["service"] == "rag-service" for a in answers)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0
    printed = " ".join(log_path.read_text().split())  # the console wraps long lines
    assert "rag-service-1 (pid" in printed and "rag-service-2 (pid" in printed
    assert "LORAG_CHROMA_URL" in printed  # the warning about sharing embedded Chroma
