"""Schemathesis against the gateway's OpenAPI, with a token: no 5xx, and every answer (status,
content type, headers, body) is one the document declares.

`positive_data_acceptance` is left out on purpose: the schema cannot say which s3:// URIs are the
caller's uploads or which names exist, so a schema-valid body may rightly get its documented 422.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_lora_helpers import lora_env
from tests.support.gateway import start_gateway
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
READY_S = 300  # model-loading services on a loaded machine take more than the usual minute
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXCLUDED_CHECKS = "positive_data_acceptance"


@pytest.fixture(scope="module")
def gateway(settings, logs_dir, tmp_path_factory):
    """The gateway in front of the services its routes forward to (no model needed)."""
    work = tmp_path_factory.mktemp("fuzz")
    rag = start_service(
        "lorag_rag",
        logs_dir,
        ready_timeout=READY_S,
        LORAG_CHROMA_PATH=str(work / "chroma"),
        HF_HUB_OFFLINE="1",
    )
    lora_vars = lora_env(work / "models", work / "lora", 0, LORAG_LORA_SERVE="false")
    lora = start_service("lorag_lora", logs_dir, ready_timeout=READY_S, **lora_vars)
    hybrid = start_service(
        "lorag_hybrid",
        logs_dir,
        ready_timeout=READY_S,
        HF_HUB_OFFLINE="1",
        LORAG_RAG_SERVICE_URL=rag.url,
    )
    running = start_gateway(
        logs_dir, rag, lora, hybrid,
        LORAG_GATEWAY_RATE_LIMIT_PER_S="10000", LORAG_GATEWAY_RATE_LIMIT_BURST="10000",
        LORAG_GATEWAY_MAX_UPLOAD_BYTES="65536",
    )  # fmt: skip
    yield running
    for service in (running.process, hybrid, lora, rag):
        service.stop()


def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(gateway, tmp_path):
    token = gateway.token("fuzzer")
    command = [
        str(SCHEMATHESIS), "run", f"{gateway.url}/api/openapi.json",
        "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", "30", "--workers", "1", "--request-timeout", "60",
        "--phases", "examples,coverage,fuzzing", "--no-color", "--seed", "16",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    report = run.stdout[-20000:] + run.stderr[-4000:]
    assert run.returncode == 0, report
    assert "No issues found" in report or " passed" in report, report
