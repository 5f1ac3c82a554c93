"""The web console in headless Chromium against the real stack: sign in, upload, recommendation,
field errors, submit an EXTERNAL_RAG job and watch it succeed live, ask a minion, and see that
another owner's job is not found. Every page is saved as a screenshot (path printed)."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_gateway import tokens
from lorag_hybrid.saga import store
from lorag_local.stack import free_port
from tests.integration.test_gateway_api import wait_for_api
from tests.support.openai_stub import openai_stub
from tests.support.processes import start_service

pytestmark = pytest.mark.e2e
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
FACTS = [
    {"question": "What is the production cluster called?", "answer": "It is called lighthouse."},
    {"question": "When does on-call rotate?", "answer": "Every Tuesday at 09:00 UTC."},
    {"question": "What is the office cat named?", "answer": "The office cat is named Pixel."},
]


def db(settings, fn):
    """Run fn(conn) on its own thread: the sync Playwright API keeps this thread's loop busy."""

    async def go():
        async with await psycopg.AsyncConnection.connect(
            settings.postgres_dsn, autocommit=True, row_factory=dict_row
        ) as conn:
            return await fn(conn)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


@pytest.fixture(scope="module")
def stack(settings, logs_dir, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    chroma = str(tmp_path_factory.mktemp("console-chroma"))
    with openai_stub() as (llm_url, _seen):
        rag = start_service("lorag_rag", logs_dir, LORAG_CHROMA_PATH=chroma)
        port = free_port()
        gateway = start_service(
            "lorag_gateway", logs_dir, LORAG_GATEWAY_PORT=str(port), LORAG_CHROMA_PATH=chroma,
            LORAG_LLM_BASE_URL=llm_url, HF_HUB_OFFLINE="1",
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_for_api(base, gateway)
        try:
            yield base
        finally:
            gateway.stop()
            rag.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-screenshots")
    print(f"\nconsole screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def sign_in(page, base: str, token: str) -> None:
    page.goto(base)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav:not([hidden])")
    # Let the landing page finish rendering: a view still loading when the test navigates away
    # would overwrite the next one (see the note on issue 7).
    page.wait_for_selector("#view h2")


def test_console_submits_watches_and_asks(settings, stack, shots, browser, tmp_path):
    alice = db(settings, lambda c: tokens.create(c, "alice"))["token"]
    bob = db(settings, lambda c: tokens.create(c, "bob"))["token"]
    dataset = tmp_path / "facts.jsonl"
    dataset.write_text("".join(json.dumps(f) + "\n" for f in FACTS))

    page = browser.new_page()
    page.set_default_timeout(90_000)  # a 2-core machine under load answers slowly, not wrongly
    page.goto(stack)
    page.wait_for_selector("#signin:not([hidden])")
    page.get_by_label("API token").fill("lrg_wrong")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("document.querySelector('#token-error').textContent.includes('token')")
    page.screenshot(path=shots / "01-signin-rejected.png", full_page=True)

    sign_in(page, stack, alice)
    page.set_input_files("#files", str(dataset))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector("#recommendation-table tbody tr")
    assert "EXTERNAL_RAG" in page.inner_text("#recommendation-table")
    assert "GB" in page.inner_text("#recommendation-table")
    page.screenshot(path=shots / "02-recommendation.png", full_page=True)

    page.select_option("#training_type", "EXTERNAL_RAG")
    page.fill("#param-chunk_tokens", "2")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_function("document.querySelector('#param-chunk_tokens-error')?.textContent")
    assert page.get_attribute("#param-chunk_tokens", "aria-invalid") == "true"
    page.screenshot(path=shots / "03-field-error.png", full_page=True)

    page.fill("#param-chunk_tokens", "64")
    page.fill("#param-chunk_overlap", "8")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url("**/#/jobs/job-*")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_function(
        "document.querySelector('#job-state')?.textContent === 'SUCCEEDED'", timeout=180_000
    )
    assert page.inner_text("#job-percent") == "100%"
    assert page.locator("#job-log li").count() >= 2
    page.screenshot(path=shots / "04-job-succeeded.png", full_page=True)

    page.goto(f"{stack}/#/jobs")
    page.wait_for_selector(f"#jobs-table a[href='#/jobs/{job_id}']")
    page.screenshot(path=shots / "05-jobs.png", full_page=True)
    page.goto(f"{stack}/#/kbs")
    page.wait_for_selector("#kbs-table tbody tr")
    page.screenshot(path=shots / "06-kbs.png", full_page=True)

    minion = f"helper-{uuid.uuid4().hex[:6]}"
    db(settings, lambda c: store.save_minion(c, {
        "name": minion, "owner": "alice", "job_id": job_id, "training_type": "EXTERNAL_HYBRID",
        "kb": job_id, "adapter": None, "llm": {}, "scores": {"rag": 0.9}, "best_variant": "rag",
    }))  # fmt: skip
    page.goto(f"{stack}/#/minions")
    page.wait_for_selector(f"#minions-table td:text('{minion}')")
    page.select_option("#minion", minion)
    page.fill("#question", "What is the production cluster called?")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.wait_for_selector("#answers .answer")
    assert "lighthouse" in page.inner_text("#answers")  # the stub LLM echoes retrieved context
    page.get_by_role("button", name="Compare variants").click()
    page.wait_for_function("document.querySelectorAll('#answers .card').length === 3")
    page.screenshot(path=shots / "07-minion.png", full_page=True)

    other = browser.new_page()
    other.set_default_timeout(90_000)
    sign_in(other, stack, bob)
    other.goto(f"{stack}/#/jobs/{job_id}")
    other.wait_for_selector("#view .error:has-text('no job')")
    other.goto(f"{stack}/#/minions")
    other.wait_for_selector("#minions-table")
    assert minion not in other.inner_text("#minions-table")
    other.screenshot(path=shots / "08-other-owner.png", full_page=True)
