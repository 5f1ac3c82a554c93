"""The web console in headless Chromium against the real stack. The first test signs in, uploads a
dataset, sees the recommendation and a nested field error, submits a LOCAL_HYBRID through the
nested parameter form and watches its stages live to SUCCEEDED; the second uses what that job
made: asks its minion and compares variants, promotes its adapter, queries its knowledge base,
pages through a long job list, and checks that another owner sees none of it. Every page is
saved as a screenshot (folder printed) and audited with axe-core: no serious or critical
violation is allowed."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from axe_playwright_python import sync_playwright as axe
from playwright import sync_api as playwright
from psycopg.rows import dict_row

from lorag_core.contracts import JobRequested
from lorag_core.db import jobs as job_store
from lorag_core.db import tokens
from lorag_local.stack import free_port
from tests.integration.test_lora_helpers import lora_env, start_lora, tiny_models  # noqa: F401
from tests.support.browser import ARGS, chromium
from tests.support.gateway import service_urls, start_gateway
from tests.support.processes import start_service

pytestmark = pytest.mark.e2e
FACT = "The staging cluster is called harbor-seventeen."
QUESTION = "What is the staging cluster called?"
QA = [
    {"question": QUESTION, "answer": "harbor-seventeen"},
    {"question": "Who rotates on call?", "answer": "the platform team"},
    {"question": "When does the rotation change?", "answer": "every Tuesday"},
]
NOTES = "\n\n".join([FACT, "The production cluster is called lighthouse.", "Coffee is free."])
SMALL = {"lora.max_steps": "6", "lora.batch_size": "4", "lora.max_seq_len": "64",
         "rag.chunk_tokens": "64", "rag.chunk_overlap": "8"}  # fmt: skip
PAGE = 20  # the console's job-list page size
GRAVE = ("serious", "critical")
ERRORS: dict[Any, list[str]] = {}  # uncaught script errors by page


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
def stack(request, settings, logs_dir, tmp_path_factory):
    """rag-service, lora-service (the tiny local LLaMA), hybrid-orchestrator and the gateway."""
    chromium()  # before starting four services for a browser that is not there
    models = request.getfixturevalue("tiny_models")
    state = tmp_path_factory.mktemp("console")
    hybrid = {"LORAG_HYBRID_EVAL_PAIRS": "3", "LORAG_HYBRID_RETRY_BACKOFF_S": "0.5"}
    lora = start_lora(logs_dir, lora_env(models, state / "lora", free_port()))
    started = [lora]
    try:
        rag = start_service(
            "lorag_rag", logs_dir, LORAG_CHROMA_PATH=str(state / "chroma"), **service_urls(lora)
        )
        started.append(rag)
        orchestrator = start_service("lorag_hybrid", logs_dir, **hybrid, **service_urls(rag, lora))
        started.append(orchestrator)
        gateway = start_gateway(logs_dir, rag, lora, orchestrator)
        started.append(gateway.process)
        yield gateway.url
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture(scope="module")
def owners(settings):
    return {o: db(settings, lambda c, o=o: tokens.create(c, o))["token"] for o in ("alice", "bob")}


@pytest.fixture(scope="module")
def made() -> dict[str, str]:
    """What the first test's job made, for the second."""
    return {}


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-screenshots")
    print(f"\nconsole screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=ARGS)
        yield launched
        launched.close()


def new_page(browser):
    page = browser.new_page()
    page.set_default_timeout(90_000)  # a 2-core machine under load answers slowly, not wrongly
    page.on("pageerror", lambda error: ERRORS.setdefault(page, []).append(str(error)))
    return page


def sign_in(page, base: str, token: str) -> None:
    page.goto(base)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav:not([hidden])")


def seen(page, shots: Path, name: str) -> None:
    """Save the page as a screenshot; fail on a script error or a serious or critical axe-core
    violation (each page's violations of any impact are saved beside its screenshot)."""
    page.screenshot(path=shots / f"{name}.png", full_page=True)
    assert not ERRORS.get(page), f"{name}: script errors {ERRORS[page]}"
    assert page.locator("#view h2", has_text="Something went wrong").count() == 0, name
    results = axe.Axe().run(page)
    grave = [v for v in results.response["violations"] if v["impact"] in GRAVE]
    (shots / f"{name}.axe.json").write_text(json.dumps(results.response["violations"], indent=1))
    assert not grave, f"{name}: " + "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in grave
    )


def param(page, path: str):
    """The form field of a parameter by its path (rag.chunk_tokens): ids hold the dots."""
    return page.locator(f"[id='param-{path}']")


def test_console_trains_a_hybrid_and_watches_its_stages(
    stack, owners, shots, browser, made, tmp_path
):
    files = {"qa.jsonl": "".join(json.dumps(r) + "\n" for r in QA), "notes.md": NOTES}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    page = new_page(browser)
    page.goto(stack)
    page.wait_for_selector("#signin:not([hidden])")
    page.get_by_label("API token").fill("lrg_wrong")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("document.querySelector('#token-error').textContent.includes('token')")
    seen(page, shots, "01-signin-rejected")

    sign_in(page, stack, owners["alice"])
    page.set_input_files("#files", [str(tmp_path / name) for name in files])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector("#recommendation-table tbody tr")
    table = page.inner_text("#recommendation-table")
    assert "LOCAL_HYBRID" in table and "GB" in table
    page.get_by_role("button", name="Use LOCAL_HYBRID").click()
    lora = page.get_by_role("group", name="LoRA stage parameters")
    assert lora.get_by_label("Max Steps").count() == 1  # nested fields, labelled in their group
    assert page.get_by_role("group", name="RAG stage parameters").is_visible()
    assert page.get_by_label("LLM model").count() == 0  # it applies to EXTERNAL_HYBRID only
    page.select_option("#training_type", "EXTERNAL_HYBRID")
    assert page.get_by_label("LLM model").count() == 1
    page.select_option("#training_type", "LOCAL_HYBRID")
    seen(page, shots, "02-recommendation-and-nested-form")

    minion = f"ada-{uuid.uuid4().hex[:6]}"
    param(page, "minion").fill(minion)
    for path, value in SMALL.items():
        param(page, path).fill(value)
    param(page, "rag.chunk_tokens").fill("2")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_function("document.getElementById('param-rag.chunk_tokens-error').textContent")
    assert "greater than or equal to 16" in page.inner_text("[id='param-rag.chunk_tokens-error']")
    assert param(page, "rag.chunk_tokens").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "param-rag.chunk_tokens"
    seen(page, shots, "03-nested-field-error")

    param(page, "rag.chunk_tokens").fill(SMALL["rag.chunk_tokens"])
    page.keyboard.press("Enter")  # submit from the keyboard, as from the field in error
    page.wait_for_url("**/#/jobs/job-*")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#job-stages li[data-stage='lora']")  # the stages, live
    assert page.locator("#job-stages li[data-stage='rag'] progress").count() == 1
    page.wait_for_function(
        "document.querySelector('#job-state')?.textContent === 'SUCCEEDED'", timeout=280_000
    )
    assert page.inner_text("#job-percent") == "100%"
    assert "rag succeeded, lora succeeded" in page.inner_text("#job-log")
    assert page.locator("#loss-chart polyline").count() == 1  # the LoRA stage's loss, live
    seen(page, shots, "04-hybrid-succeeded")
    made.update(job_id=job_id, minion=minion)


def test_console_uses_what_its_job_made(settings, stack, owners, shots, browser, made):
    if not made:
        pytest.fail("the first console test made no minion (see its failure); nothing to use")
    page = new_page(browser)
    sign_in(page, stack, owners["alice"])
    minion = made["minion"]
    page.goto(f"{stack}/#/minions")
    page.wait_for_selector(f"#minions-table td:text-is('{minion}')")
    page.select_option("#minion", minion)
    page.fill("#question", QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    page.wait_for_selector("#answers .card .answer")
    assert "harbor-seventeen" in page.inner_text("#answers .sources")  # only the dataset says so
    page.get_by_role("button", name="Compare variants").click()
    page.wait_for_function("document.querySelectorAll('#answers .card').length === 4")
    assert {page.get_attribute(f"#answers .card >> nth={n}", "data-variant") for n in range(4)} == {
        "extractive", "rag", "lora", "lora+rag",
    }  # fmt: skip
    assert page.locator("#answers .card .error").count() == 0
    seen(page, shots, "05-minion-compare")

    page.goto(f"{stack}/#/adapters")
    row = page.locator("#adapters-table tr", has_text=minion)
    row.get_by_label(f"alias for {minion}").fill("stable")
    row.get_by_role("button", name="Promote").click()
    page.wait_for_function(
        "document.querySelector('#adapters-status').textContent.includes('stable')"
    )
    assert "stable" in page.locator("#adapters-table tr", has_text=minion).inner_text()
    seen(page, shots, "06-adapter-promoted")

    page.goto(f"{stack}/#/kbs")
    page.select_option("#kb-name", minion)
    page.fill("#kb-question", QUESTION)
    page.get_by_role("button", name="Query").click()
    page.wait_for_selector("#kb-hits li")
    assert "harbor-seventeen" in page.inner_text("#kb-hits")
    seen(page, shots, "07-kb-query")

    page.goto(f"{stack}/#/jobs")
    page.wait_for_selector(f"#jobs-table a[href='#/jobs/{made['job_id']}']")
    types = "#jobs-table tbody td:nth-child(2)"
    assert set(page.locator(types).all_inner_texts()) > {"LOCAL_HYBRID"}  # its sub-jobs too
    page.select_option("#f-type", "LOCAL_HYBRID")
    page.get_by_role("button", name="Filter").click()
    # The filtered table replaces the whole one once its request answers: until then the old
    # table (the job's link included) is still there, so wait for the rows themselves.
    page.wait_for_function(
        """([types, job]) => {
            const cells = [...document.querySelectorAll(types)];
            return cells.length > 0 && cells.every((td) => td.textContent === "LOCAL_HYBRID")
                && document.querySelector(`#jobs-table a[href='#/jobs/${job}']`) !== null;
        }""",
        arg=[types, made["job_id"]],
    )  # the sub-jobs (EXTERNAL_RAG, LOCAL_LORA) are filtered out
    assert set(page.locator(types).all_inner_texts()) == {"LOCAL_HYBRID"}
    assert page.evaluate("document.activeElement.id") == "filter"  # redrawn, focus kept
    seen(page, shots, "08-jobs-filtered")


def test_console_pages_through_older_jobs(settings, stack, shots, browser):
    owner = f"carol-{uuid.uuid4().hex[:6]}"

    async def seed(conn: Any) -> str:
        for n in range(PAGE + 5):
            await job_store.record_requested(conn, JobRequested(
                job_id=f"job-page-{owner}-{n:02d}", training_type="EXTERNAL_RAG", owner=owner,
                datasets=[{"uri": f"s3://lorag-datasets/{owner}/"}],
            ))  # fmt: skip
        return str((await tokens.create(conn, owner))["token"])

    page = new_page(browser)
    sign_in(page, stack, db(settings, seed))
    page.goto(f"{stack}/#/jobs")
    page.wait_for_selector("#jobs-table tbody tr")
    assert page.locator("#jobs-table tbody tr").count() == PAGE
    page.get_by_role("button", name="Older jobs").click()
    page.wait_for_function(f"document.querySelectorAll('#jobs-table tbody tr').length > {PAGE}")
    ids = [r.get_attribute("data-job") for r in page.locator("#jobs-table tbody tr").all()]
    assert sorted(ids) == [f"job-page-{owner}-{n:02d}" for n in range(PAGE + 5)]  # no repeats
    assert page.get_by_role("button", name="Older jobs").is_hidden()  # the last page was short
    seen(page, shots, "09-jobs-older")


def test_another_owner_sees_nothing_and_a_slow_view_never_covers_a_newer_one(
    stack, shots, browser, owners, made
):
    other = new_page(browser)
    # Hold the landing view's datasets request for a while: the test navigates on before it
    # answers, and that late view must not replace the page shown by then.
    other.add_init_script("""(() => { const real = window.fetch;
      window.fetch = async (url, options) => {
        if (String(url).startsWith('/api/datasets')) await new Promise((r) => setTimeout(r, 1500));
        return real(url, options);
      }; })()""")
    sign_in(other, stack, owners["bob"])
    job_id = made.get("job_id", "job-000000000000")
    other.goto(f"{stack}/#/jobs/{job_id}")
    other.wait_for_selector("#view .error:has-text('no job')")
    other.wait_for_timeout(2_500)  # the slow landing view has answered by now
    assert other.inner_text("#view h2") == "Not found"  # not "New job"
    assert other.locator("#view .error:has-text('no job')").count() == 1
    other.goto(f"{stack}/#/minions")
    other.wait_for_selector("#no-minions")
    seen(other, shots, "10-other-owner")
