"""The shape of a real deployment on one machine: every service runs as its own process, in its
own working folder with its own LORAG_STATE_DIR and ports, Chroma is a real server, and nothing
is shared but network addresses. A LOCAL_HYBRID submitted from the CLI must succeed, and its
minion, knowledge base and console must answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from lorag_local.stack import free_port
from tests.support.gateway import service_urls, start_gateway
from tests.support.processes import ServiceProcess, start_service

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "deploy" / "demo" / "corpus"
QUESTION = "When does the on-call rotation change?"
CHROMIUM = Path("/usr/bin/chromium")


def wait_http(url: str, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not up at {url}:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.3)


def host(root: Path, name: str) -> tuple[Path, dict[str, str]]:
    """A folder of the service's own, as its working folder and LORAG_STATE_DIR."""
    folder = root / name
    (folder / "state").mkdir(parents=True)
    return folder, {"LORAG_STATE_DIR": str(folder / "state"), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def deployment(settings, logs_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("hosts")
    started: list[ServiceProcess] = []
    chroma_port = free_port()
    chroma_dir, _ = host(root, "chroma")
    chroma_log = logs_dir / "chroma-server.log"
    chroma = subprocess.Popen(
        [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(chroma_dir / "data"),
         "--port", str(chroma_port)],
        stdout=chroma_log.open("wb"), stderr=subprocess.STDOUT, cwd=chroma_dir,
    )  # fmt: skip
    try:
        wait_http(f"http://localhost:{chroma_port}/api/v2/heartbeat", "chroma", chroma_log)
        lora_dir, lora_env = host(root, "lora-service")
        api_port = free_port()  # the base model is built on first use, on this host only
        lora = start_service(
            "lorag_lora", logs_dir, cwd=lora_dir, **lora_env,
            LORAG_LORA_MODELS_DIR=str(lora_dir / "models"),
            LORAG_LORA_WORK_DIR=str(lora_dir / "work"),
            LORAG_LORA_API_PORT=str(api_port), LORAG_LORA_TORCH_THREADS="1",
        )  # fmt: skip
        lora.api_port = api_port  # type: ignore[attr-defined]
        started.append(lora)
        wait_http(f"http://127.0.0.1:{api_port}/v1/models", "inference API", lora.log_path, 120)
        rag_dir, rag_env = host(root, "rag-service")
        rag = start_service(
            "lorag_rag", logs_dir, cwd=rag_dir, **rag_env, **service_urls(lora),
            LORAG_CHROMA_URL=f"http://localhost:{chroma_port}",
        )  # fmt: skip
        started.append(rag)
        hybrid_dir, hybrid_env = host(root, "hybrid-orchestrator")
        orchestrator = start_service(
            "lorag_hybrid", logs_dir, cwd=hybrid_dir, **hybrid_env, **service_urls(rag, lora),
            LORAG_HYBRID_EVAL_PAIRS="3",
        )  # fmt: skip
        started.append(orchestrator)
        gateway_dir, gateway_env = host(root, "gateway")
        gateway = start_gateway(logs_dir, rag, lora, orchestrator, cwd=gateway_dir, **gateway_env)
        started.append(gateway.process)
        yield {"root": root, "gateway": gateway}
    finally:
        for service in reversed(started):
            service.stop()
        chroma.terminate()
        chroma.wait(timeout=30)


def test_a_local_hybrid_from_the_cli_runs_across_hosts(settings, deployment):
    gateway, root = deployment["gateway"], deployment["root"]
    minion = f"hosts-{uuid.uuid4().hex[:6]}"
    done = gateway.cli(
        "submit", "LOCAL_HYBRID", "--dataset", str(CORPUS), "--param", f"minion={minion}",
        "--param", "lora.max_steps=6", "--param", "lora.max_seq_len=64",
        "--param", "rag.chunk_tokens=64", "--param", "rag.chunk_overlap=8",
        "--wait", "--json", "--timeout", "600", timeout=700,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job = json.loads(done.stdout)
    assert job["state"] == "SUCCEEDED" and job["effective_type"] == "LOCAL_HYBRID"

    asked = gateway.cli("ask", minion, QUESTION, "--variant", "rag", "--json")
    assert asked.returncode == 0, asked.stderr
    reply = json.loads(asked.stdout)
    assert any("Tuesday" in s["text"] for s in reply["sources"]), reply

    found = gateway.cli("kb", "query", minion, QUESTION, "--json")
    assert found.returncode == 0, found.stderr
    assert any("Tuesday" in h["text"] for h in json.loads(found.stdout)["hits"])

    # Knowledge bases live in the Chroma server's folder; no service opened an embedded Chroma.
    assert list((root / "chroma").rglob("chroma.sqlite3"))
    assert [p for p in root.rglob("chroma.sqlite3") if not p.is_relative_to(root / "chroma")] == []


def test_the_consoles_kb_page_answers_across_hosts(settings, deployment):
    if not CHROMIUM.exists():
        pytest.fail("needs Debian's chromium: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    gateway = deployment["gateway"]
    kbs = gateway.cli("kb", "ls", "--json")
    assert kbs.returncode == 0, kbs.stderr
    # The database is shared with other tests: take the KB this deployment's hybrid built.
    kb = next(k["name"] for k in json.loads(kbs.stdout) if k["name"].startswith("hosts-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.set_default_timeout(90_000)
        page.goto(gateway.url)
        page.get_by_label("API token").fill(gateway.token("default"))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#nav:not([hidden])")
        page.goto(f"{gateway.url}/#/kbs")
        page.select_option("#kb-name", kb)
        page.fill("#kb-question", QUESTION)
        page.get_by_role("button", name="Query").click()
        page.wait_for_function(
            "!document.querySelector('#kb-hits').textContent.includes('Searching')"
            " && document.querySelector('#kb-hits').textContent.trim()"
        )
        assert "Tuesday" in page.inner_text("#kb-hits"), page.inner_text("#view")
        pages = {"#/new": "New job", "#/jobs": "Jobs", "#/adapters": "Adapters",
                 "#/minions": "Minions", "#/kbs": "Knowledge bases"}  # fmt: skip
        job_id = json.loads(gateway.cli("jobs", "ls", "--json", "--limit", "1").stdout)[0]["job_id"]
        pages[f"#/jobs/{job_id}"] = job_id
        for view, heading in pages.items():
            page.goto(f"{gateway.url}/{view}")
            page.locator("#view h2", has_text=heading).wait_for()  # the view drew, not an error
        browser.close()


def test_the_gateway_stays_light_across_queries_asks_and_pages(settings, deployment):
    """It loads no model: its peak memory stays under 300 MiB after everything above."""
    gateway = deployment["gateway"]
    minion = json.loads(gateway.cli("minions", "--json").stdout)[0]["name"]
    for _ in range(3):
        assert gateway.cli("ask", minion, QUESTION, "--json").returncode == 0
        assert gateway.cli("kb", "query", minion, QUESTION, "--json").returncode == 0
    status = Path(f"/proc/{gateway.process.process.pid}/status").read_text()
    peak_kib = int(
        next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
    )
    assert peak_kib < 300 * 1024, f"gateway peak RSS {peak_kib / 1024:.0f} MiB"
    modules = Path(f"/proc/{gateway.process.process.pid}/maps").read_text()
    assert "libtorch" not in modules and "onnxruntime" not in modules
