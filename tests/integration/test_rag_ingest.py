"""rag-service end to end: a real service process, real Kafka, Postgres and S3, embedded Chroma.

One service process serves the module (the model load is the slow part); the crash test kills it
and its survivor serves whatever runs after.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from lorag_core.contracts import DatasetRef, JobRequested, RagParameters
from lorag_core.storage import ObjectStore
from tests.support.db import fetch_all, wait_for_job
from tests.support.gateway import start_gateway
from tests.support.kafka import publish_raw
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
WORDS = [
    "amber",
    "basil",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kestrel",
    "lumen",
]
PARAMS = {"chunk_tokens": 64, "chunk_overlap": 8}


def fact(i: int) -> tuple[str, str]:
    return f"What is the call sign of station {i}?", f"Station {i} answers to {WORDS[i % 12]}-{i}"


def prose(seed: int, sentences: int) -> str:
    return " ".join(
        f"Paragraph {seed}.{n} notes that the {WORDS[(seed + n) % 12]} valve of unit {seed * 7 + n}"
        f" was inspected and logged by crew {n % 5}."
        for n in range(sentences)
    )


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with a line of Helvetica text, built by hand (no writer library needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def mixed_dataset(changed: int = 0, csv_swapped: int = 0) -> dict[str, bytes]:
    """~1,100 chunks at 64 tokens: JSONL Q/A, CSV, Markdown, text, HTML and a PDF.

    `changed` FAQ answers are reworded; `csv_swapped` CSV rows are removed and as many added.
    """
    faq = []
    for i in range(300):
        question, answer = fact(i)
        if i < changed:
            answer = f"Station {i} now answers to relay-{i}"
        faq.append(json.dumps({"question": question, "answer": answer}))
    rows = [f"Logbook entry {i}: the {WORDS[i % 12]} crew moved crate {i * 3}." for i in range(300)]
    rows = rows[csv_swapped:] + [f"Late entry {i}: a fresh crate." for i in range(csv_swapped)]
    files = {
        "faq.jsonl": "\n".join(faq).encode(),
        "log.csv": (
            "text,shift\n" + "".join(f'"{r}",{i % 3}\n' for i, r in enumerate(rows))
        ).encode(),
        "manual.pdf": tiny_pdf("The emergency hatch code is four four two."),
    }
    for d in range(10):
        sections = "".join(f"\n## Section {d}.{s}\n\n{prose(d * 10 + s, 6)}\n" for s in range(4))
        files[f"docs/guide-{d}.md"] = f"# Guide {d}\n{sections}".encode()
    for d in range(22):
        files[f"notes/note-{d}.txt"] = prose(100 + d, 30).encode()
    for h in range(5):
        body = "".join(f"<p>{prose(200 + h * 5 + p, 4)}</p>" for p in range(5))
        page = f"<html><title>Page {h}</title><body>{body}</body></html>"
        files[f"site/page-{h}.html"] = page.encode()
    return files


def upload(objects: ObjectStore, files: dict[str, bytes]) -> str:
    prefix = f"test-rag-{uuid.uuid4().hex[:10]}"
    for name, data in files.items():
        objects.put_bytes("lorag-datasets", f"{prefix}/{name}", data)
    return f"s3://lorag-datasets/{prefix}/"


async def submit(settings, uri: str, *, training_type: str = "EXTERNAL_RAG", **params) -> str:
    job_id = f"job-rag-{uuid.uuid4().hex[:10]}"
    event = JobRequested(
        job_id=job_id,
        training_type=training_type,
        datasets=(DatasetRef(uri=uri),),
        parameters=RagParameters(**params),
    )
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    return job_id


async def wait_stage(settings, job_id: str, min_percent: float, timeout: float = 60) -> None:
    """Wait until the job is embedding and past `min_percent`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        rows = await fetch_all(
            settings.postgres_dsn, "SELECT stage, percent FROM jobs WHERE job_id = %s", job_id
        )
        if rows and rows[0]["stage"] == "embedding" and (rows[0]["percent"] or 0) >= min_percent:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{job_id} did not reach embedding {min_percent}% in {timeout}s: {rows}")


@pytest.fixture
def rag_gateway(rag, logs_dir):
    """A gateway in front of the module's current rag-service, for `lorag` user commands."""
    running = start_gateway(logs_dir, rag.process)
    yield running
    running.process.stop()


def chroma_count(chroma_path: Path, kb: str) -> int | None:
    import chromadb

    from lorag_rag.adapters.chroma_store import collection_name

    client = chromadb.PersistentClient(path=str(chroma_path))
    names = {c.name for c in client.list_collections()}
    if collection_name(kb) not in names:
        return None
    return client.get_collection(collection_name(kb)).count()


class Rag:
    """The module's rag-service process; replaced by the survivor of the crash test."""

    def __init__(self, logs_dir: Path, state: Path) -> None:
        self.logs_dir, self.state = logs_dir, state
        self.allowed = state / "allowed"
        self.allowed.mkdir(parents=True, exist_ok=True)
        self.env = {
            "LORAG_WORKER_LEASE_S": "4",
            "LORAG_CHROMA_PATH": str(state / "chroma"),
            "LORAG_RAG_ALLOWED_ROOTS": json.dumps([str(self.allowed)]),
            "LORAG_RAG_MAX_LINE_BYTES": str(1024 * 1024),
        }
        self.process = self.start()

    def start(self):
        return start_service("lorag_rag", self.logs_dir, **self.env)


@pytest.fixture(scope="module")
def rag(settings, tracker, logs_dir, tmp_path_factory):
    service = Rag(logs_dir, tmp_path_factory.mktemp("rag-state"))
    yield service
    if service.process.process.poll() is None:
        service.process.stop()


@pytest.fixture(scope="module")
def objects(settings):
    return ObjectStore.from_settings(settings.s3)


@pytest.fixture(scope="module")
def first_ingest(settings, rag, objects):
    """The mixed-format dataset ingested once into KB `mixed`; later tests re-ingest it."""
    kb = f"mixed-{uuid.uuid4().hex[:6]}"

    async def go():
        job_id = await submit(settings, upload(objects, mixed_dataset()), kb=kb, **PARAMS)
        return await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=180)

    return kb, asyncio.run(go())


async def test_a_mixed_dataset_becomes_a_queryable_kb_with_quality(
    settings, rag, first_ingest, rag_gateway
):
    kb, job = first_ingest
    summary = job["result"]["summary"]
    assert summary["chunks"] >= 1000 and summary["sources"] == 40
    assert summary["added"] == summary["chunks"] and summary["version"] == 1
    assert summary["eval_pairs"] == 300 and summary["hit_rate"] >= 0.8 and summary["mrr"] >= 0.6
    stages = {
        r["stage"]
        for r in await fetch_all(
            settings.postgres_dsn, "SELECT stage FROM job_progress WHERE job_id = %s", job["job_id"]
        )
    }
    assert {"validating", "chunking", "embedding", "indexing"} <= stages
    assert chroma_count(rag.state / "chroma", kb) == summary["chunks"]

    done = rag_gateway.cli("kb", "query", kb, "What is the hatch code?", "--top-k", "3", "--json")
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)["hits"]
    assert hits[0]["source"] == "manual.pdf" and "four four two" in hits[0]["text"]
    assert 0 < hits[0]["score"] <= 1 and len(hits) == 3
    listed = rag_gateway.cli("kb", "ls", "--json")
    row = next(r for r in json.loads(listed.stdout) if r["name"] == kb)
    assert row["version"] == 1 and row["hit_rate"] == summary["hit_rate"]
    assert row["embedding_model"] == "all-MiniLM-L6-v2"


async def test_reingest_with_ten_percent_changed_reports_exactly_that(
    settings, rag, objects, first_ingest
):
    kb, first = first_ingest
    uri = upload(objects, mixed_dataset(changed=90, csv_swapped=10))
    job_id = await submit(settings, uri, kb=kb, **PARAMS)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=120)
    summary = job["result"]["summary"]
    total = first["result"]["summary"]["chunks"]
    assert (summary["updated"], summary["added"], summary["deleted"]) == (90, 10, 10)
    assert summary["unchanged"] == total - 100 and summary["embedded"] == 100
    assert summary["version"] == 2 and summary["chunks"] == total
    assert summary["files_kept"] == 38  # faq.jsonl and log.csv changed; the rest is not read
    assert chroma_count(rag.state / "chroma", kb) == total


async def test_the_manifest_skips_unchanged_files_and_still_sees_every_change(
    settings, rag, objects
):
    kb = f"manifest-{uuid.uuid4().hex[:6]}"

    async def ingest(files: dict[str, bytes], **params) -> dict:
        job_id = await submit(settings, upload(objects, files), kb=kb, **(PARAMS | params))
        job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=120)
        summary = job["result"]["summary"]
        assert chroma_count(rag.state / "chroma", kb) == summary["chunks"]
        return summary

    files = {f"notes/n-{d}.txt": prose(300 + d, 8).encode() for d in range(4)}
    first = await ingest(files)
    again = await ingest(files)  # unchanged: nothing is tokenised, embedded or deleted
    assert (again["files_kept"], again["embedded"], again["deleted"]) == (4, 0, 0)
    assert first["files_unread"] == 0 and again["files_unread"] == 4  # the listing's tags told
    assert again["unchanged"] == again["chunks"] == first["chunks"] and again["version"] == 2
    rows = await fetch_all(
        settings.postgres_dsn, "SELECT source, chunks FROM rag_kb_files WHERE name = %s", kb
    )
    per_file = {r["source"]: r["chunks"] for r in rows}
    assert set(per_file) == set(files) and sum(per_file.values()) == first["chunks"]
    untouched = per_file["notes/n-2.txt"] + per_file["notes/n-3.txt"]
    changed = {**files, "notes/n-0.txt": prose(400, 8).encode(), "notes/n-9.txt": b"A new note."}
    del changed["notes/n-1.txt"]
    moved = await ingest(changed)  # one changed, one removed, one added
    assert moved["files_kept"] == moved["files_unread"] == 2 and moved["unchanged"] == untouched
    assert moved["deleted"] >= 1 and moved["embedded"] == moved["chunks"] - untouched
    finer = await ingest(changed, chunk_tokens=32)  # another chunking reads every file again
    assert finer["files_kept"] == finer["files_unread"] == 0 and finer["chunks"] > moved["chunks"]
    # every file was read again; only the one-line note, shorter than either window, cuts to
    # the same chunk (ids come from content) and so is the one chunk left as it was
    assert finer["unchanged"] == 1 and finer["embedded"] == finer["chunks"] - 1
    rows = await fetch_all(
        settings.postgres_dsn, "SELECT source, chunks FROM rag_kb_files WHERE name = %s", kb
    )
    assert {r["source"] for r in rows} == set(changed)
    assert sum(r["chunks"] for r in rows) == finer["chunks"]


async def test_cancel_stops_within_five_seconds_and_leaves_nothing(
    settings, rag, objects, rag_gateway
):
    kb = f"cancel-{uuid.uuid4().hex[:6]}"
    job_id = await submit(settings, upload(objects, mixed_dataset()), kb=kb, **PARAMS)
    await wait_stage(settings, job_id, 20)
    started = asyncio.get_running_loop().time()  # the clock runs from the user's command
    cancelled = await asyncio.to_thread(rag_gateway.cli, "jobs", "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    await wait_for_job(settings.postgres_dsn, job_id, state="CANCELLED", timeout=10)
    assert asyncio.get_running_loop().time() - started < 5
    await asyncio.sleep(0.5)  # the cleanup runs before CANCELLED is published; be generous
    assert chroma_count(rag.state / "chroma", kb) is None
    rows = await fetch_all(
        settings.postgres_dsn, "SELECT * FROM rag_knowledge_bases WHERE name = %s", kb
    )
    assert rows == []


async def test_legacy_rag_job_runs_as_external_rag(settings, rag, rag_gateway):
    corpus = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "corpus"
    kb = f"demo-{uuid.uuid4().hex[:6]}"
    done = rag_gateway.cli("submit", "RAG", "--dataset", str(corpus), "--param", f"kb={kb}",
                           "--wait", "--json", "--timeout", "120")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job = json.loads(done.stdout)
    assert job["state"] == "SUCCEEDED" and job["effective_type"] == "EXTERNAL_RAG"
    assert job["requested_type"] == "RAG" and job["result"]["summary"]["eval_pairs"] > 0


BAD = {
    "empty": ({"empty.txt": b""}, {}, "DATASET_EMPTY"),
    "encoding": ({"a.txt": "caf\xe9 cr\xe8me".encode("latin-1")}, {}, "FILE_ENCODING_INVALID"),
    "binary": ({"a.txt": bytes(range(256)) * 8}, {}, "FILE_BINARY"),
    "long_line": ({"a.txt": b"x" * (50 * 1024 * 1024)}, {}, "FILE_LINE_TOO_LONG"),
    "jsonl_fields": ({"a.jsonl": b'{"body": "x"}\n'}, {}, "JSONL_FIELD_MISSING"),
    "csv_column": ({"a.csv": b"title,x\nhi,1\n"}, {"text_field": "body"}, "CSV_COLUMN_MISSING"),
    "pdf": ({"a.pdf": b"%PDF-1.7\nnot really a pdf"}, {}, "PDF_INVALID"),
    "one_bad_of_two": (
        {"good.md": b"# Fine\nsome text", "bad.txt": b"\x00\x01binary"}, {}, "FILE_BINARY",
    ),
}  # fmt: skip


async def test_bad_input_fails_with_a_specific_code(settings, rag, objects):
    jobs = {
        name: await submit(settings, upload(objects, files), **params)
        for name, (files, params, _) in BAD.items()
    }
    jobs["outside_roots"] = await submit(settings, "/etc")
    expected = {name: code for name, (_, _, code) in BAD.items()}
    expected |= {"outside_roots": "DATASET_PATH_NOT_ALLOWED"}
    # A URL is refused by the contract itself: no such job can be published (no service ever
    # fetches a URL a user supplied); raw payloads that carry one are dead-lettered (topic fuzz).
    with pytest.raises(ValidationError, match="only s3:// URIs or paths are read"):
        DatasetRef(uri="http://example.com/data.jsonl")
    for name, job_id in jobs.items():
        job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=60)
        assert job["error"]["code"] == expected[name], (name, job["error"])
    one_bad = await wait_for_job(settings.postgres_dsn, jobs["one_bad_of_two"], state="FAILED")
    assert "bad.txt: FILE_BINARY" in one_bad["error"]["message"]


async def test_a_bad_file_is_skipped_when_asked_and_allowed_local_paths_are_read(settings, rag):
    folder = rag.allowed / f"ds-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "good.md").write_text("# Fine\nThe answer is forty-two.\n")
    (folder / "bad.txt").write_bytes(b"\x00\x01binary")
    job_id = await submit(settings, str(folder), on_bad_file="skip")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=60)
    summary = job["result"]["summary"]
    assert summary["bad_files"] == 1 and "bad.txt: FILE_BINARY" in summary["bad_file_list"]
    assert summary["sources"] == 1


async def test_sigkill_mid_ingest_then_restart_finishes_without_duplicates(settings, rag, objects):
    kb = f"crash-{uuid.uuid4().hex[:6]}"
    job_id = await submit(settings, upload(objects, mixed_dataset()), kb=kb, **PARAMS)
    await wait_stage(settings, job_id, 40)
    rag.process.kill()
    stored_at_kill = chroma_count(rag.state / "chroma", kb) or 0
    rag.process = await asyncio.to_thread(rag.start)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=120)
    summary = job["result"]["summary"]
    assert summary["attempt"] == 2 and summary["resumed"] >= stored_at_kill > 0
    assert summary["embedded"] + summary["resumed"] == summary["chunks"] == summary["added"]
    assert chroma_count(rag.state / "chroma", kb) == summary["chunks"]  # no duplicates
