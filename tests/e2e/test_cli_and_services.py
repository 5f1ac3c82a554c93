"""The lorag command and `lorag serve all` against the real servers, as a person would use them."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from lorag_cli.services import SERVICES, shifted_ports
from lorag_core.storage import ObjectStore
from lorag_local.stack import free_port
from tests.support.db import wait_for_job

pytestmark = pytest.mark.e2e


CLI_ENV: dict[str, str] = {}  # where `lorag serve all` put the gateway, once it runs


def lorag(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lorag_cli", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
        env={**os.environ, **CLI_ENV, **env},
    )


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
            return r.status == 200 and json.load(r)["checks"] == {
                "kafka": True,
                "started": True,
                "postgres": True,
            }
    except OSError:
        return False


@pytest.fixture(scope="module")
def serve_all(settings, logs_dir, tmp_path_factory):
    base = free_port()
    while any(free_port() == base + i for i in range(1, 8)):
        base = free_port()
    # The CLI's first user command makes a local token and saves it in its own config folder.
    CLI_ENV.update(
        LORAG_URL=f"http://127.0.0.1:{shifted_ports(base)['LORAG_GATEWAY_PORT']}",
        XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("cli-config")),
    )
    log = (logs_dir / "serve-all.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "lorag_cli", "serve", "all"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LORAG_HEALTH_PORT_BASE": str(base)},
    )
    ports = [base + i for i in range(len(SERVICES))]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(ready(p) for p in ports):
        time.sleep(0.5)
    assert all(ready(p) for p in ports), (logs_dir / "serve-all.log").read_text()[-5000:]
    deadline = time.monotonic() + 30
    while lorag("jobs", "ls", check=False).returncode != 0:  # the API follows /ready
        assert time.monotonic() < deadline, (logs_dir / "serve-all.log").read_text()[-5000:]
        time.sleep(0.5)
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_status_reports_every_component(settings):
    if os.environ.get("LORAG_TEST_USE_ENV") == "1":
        pytest.skip("the servers were given by environment, not started by lorag")
    report = json.loads(lorag("status", "--json").stdout)
    services = report.pop("services")  # the lorag services answering here, with /metrics URLs
    assert set(report) == {"kafka", "postgres", "s3", "jaeger"}
    assert all(component["ready"] is True for component in report.values()), report
    assert all(s["metrics"].endswith("/metrics") for s in services.values()), services


async def test_submit_list_show_cancel(settings, serve_all, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\nalpha")
    (tmp_path / "docs" / "b.txt").write_text("beta")
    submitted = json.loads(
        lorag(
            "submit", "RAG", "--dataset", str(tmp_path / "docs"), "--param", "kb=e2e", "--json"
        ).stdout
    )
    job_id = submitted["job_id"]
    job = await wait_for_job(settings.postgres_dsn, job_id)  # recorded (it may be done already)
    assert (job["requested_type"], job["effective_type"]) == ("RAG", "EXTERNAL_RAG")
    assert job["request"]["parameters"]["kb"] == "e2e"
    uri = job["request"]["datasets"][0]["uri"]
    bucket, prefix = uri[5:].split("/", 1)
    keys = sorted(ObjectStore.from_settings(settings.s3).list_keys(bucket, prefix))
    assert prefix.startswith("uploads/default/")  # uploaded through the gateway, as its owner
    assert keys == [f"{prefix}a.md", f"{prefix}b.txt"]

    listed = json.loads(lorag("jobs", "ls", "--json", "--limit", "500").stdout)
    assert job_id in {row["job_id"] for row in listed}

    done = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=180)
    assert done["result"]["summary"]["chunks"] >= 2  # the rag-service ran it


async def test_cancel_stops_a_running_job(settings, serve_all, tmp_path):
    (tmp_path / "notes.txt").write_text("a line of text to learn from\n" * 200)
    submitted = lorag("submit", "LORA", "--dataset", str(tmp_path / "notes.txt"),
                      "--param", "max_steps=100000", "--json")  # fmt: skip
    job_id = json.loads(submitted.stdout)["job_id"]
    await wait_for_job(settings.postgres_dsn, job_id, state="RUNNING", timeout=180)
    cancelled = json.loads(lorag("jobs", "cancel", job_id, "--json").stdout)
    assert cancelled["cancel_requested"] is True
    job = await wait_for_job(settings.postgres_dsn, job_id, state="CANCELLED", timeout=30)
    assert job["cancel_reason"] == "cancelled by user"
    again = lorag("jobs", "cancel", job_id, check=False)
    assert again.returncode == 2 and "already ended CANCELLED" in " ".join(again.stderr.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["submit", "QUANTUM", "--dataset", "."],
            "unknown training type 'QUANTUM'; valid types: EXTERNAL_RAG",
        ),
        (
            ["submit", "LOCAL_LORA", "--dataset", ".", "--param", "r=0"],
            "invalid parameters for LOCAL_LORA",
        ),
        (
            ["submit", "LOCAL_LORA", "--dataset", ".", "--param", "colour=red"],
            "valid keys: base_model",
        ),
        (
            ["submit", "EXTERNAL_RAG", "--dataset", "/no/such/dir"],
            "dataset /no/such/dir does not exist",
        ),
        (["jobs", "show", "job-does-not-exist"], "no job 'job-does-not-exist'"),
        (["jobs", "cancel", "job-does-not-exist"], "no job 'job-does-not-exist'"),
        (["serve", "chat-service"], "unknown service 'chat-service'"),
        (
            ["submit", "LOCAL_HYBRID", "--dataset", ".", "--param", "max_steps=30"],
            "use --param lora.max_steps=30",
        ),
        (
            ["submit", "EXTERNAL_RAG", "--dataset", ".", "--param", "eval_file=/no/such.jsonl"],
            "--param eval_file=/no/such.jsonl: no such file",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(settings, serve_all, args, message):
    done = lorag(*args, check=False)
    assert done.returncode != 0
    assert message in " ".join(done.stderr.split()), done.stderr


def test_a_missing_or_wrong_token_says_what_to_do(settings, serve_all, tmp_path):
    elsewhere = lorag("jobs", "ls", check=False, LORAG_URL="http://lorag.invalid:8000",
                      XDG_CONFIG_HOME=str(tmp_path))  # fmt: skip
    assert elsewhere.returncode == 1
    said = " ".join(elsewhere.stderr.split())
    assert "no token for the gateway at http://lorag.invalid:8000" in said
    assert "lorag login --token TOKEN" in said and "LORAG_TOKEN" in said
    wrong = lorag("kb", "ls", check=False, LORAG_TOKEN="lrg_wrong")
    said = " ".join(wrong.stderr.split())
    assert wrong.returncode == 1 and "the gateway refused the token" in said
    assert "lorag tokens create OWNER" in said


def test_eval_file_named_in_a_parameter_is_uploaded(settings, serve_all, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("# Ops\nThe cluster is called lighthouse.")
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "What is the cluster called?", "answer": "lighthouse"}\n')
    done = lorag("submit", "EXTERNAL_RAG", "--dataset", str(tmp_path / "docs"),
                 "--param", f"eval_file={qa}", "--wait", "--json", "--timeout", "180")  # fmt: skip
    job = json.loads(done.stdout)
    uri = job["request"]["parameters"]["eval_file"]
    assert uri.startswith("s3://lorag-datasets/uploads/default/") and uri.endswith("/qa.jsonl")
    assert job["state"] == "SUCCEEDED" and job["result"]["summary"]["eval_pairs"] == 1


def test_every_command_has_help():
    for command in (
        ["--help"],
        ["up", "--help"],
        ["down", "--help"],
        ["status", "--help"],
        ["serve", "--help"],
        ["submit", "--help"],
        ["jobs", "ls", "--help"],
        ["jobs", "show", "--help"],
        ["jobs", "cancel", "--help"],
        ["db", "upgrade", "--help"],
        ["db", "status", "--help"],
        ["login", "--help"],
        ["kb", "query", "--help"],
        ["adapters", "show", "--help"],
        ["ask", "--help"],
        ["recommend", "--help"],
        ["tokens", "create", "--help"],
    ):
        assert "Usage" in lorag(*command).stdout


def test_serve_all_stops_cleanly_on_sigterm(serve_all):
    serve_all.send_signal(signal.SIGTERM)
    assert serve_all.wait(timeout=60) == 0
