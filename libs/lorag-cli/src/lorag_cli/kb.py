"""`lorag kb ls | query KB "question"`: the knowledge bases the rag-service built, and retrieval."""

from __future__ import annotations

import os
from typing import Any

import typer

from lorag_cli.client import database, run
from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.settings import Settings

app = typer.Typer(help="List and query knowledge bases.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
FIELDS = ("name", "version", "embedding_model", "chunk_count", "source_count", "hit_rate", "mrr",
          "eval_pairs", "eval_k", "owner", "job_id", "updated_at")  # fmt: skip


def parse_where(pairs: list[str]) -> dict[str, Any] | None:
    """['source=faq.jsonl', 'position=3'] -> a Chroma filter on chunk metadata."""
    terms: list[dict[str, Any]] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--where {pair!r} is not KEY=VALUE")
        terms.append({key: int(value) if value.lstrip("-").isdigit() else value})
    return None if not terms else terms[0] if len(terms) == 1 else {"$and": terms}


@app.command("ls")
def list_kbs(
    owner: str | None = typer.Option(None, help="Only this owner's knowledge bases."),
    json_out: bool = JsonOpt,
) -> None:
    """List knowledge bases with their version, model, size and retrieval quality."""
    from lorag_rag.adapters import registry

    settings = Settings()

    async def fetch() -> list[dict[str, Any]]:
        async with database(settings) as conn:
            return await registry.list_all(conn, owner)

    rows = [{k: r[k] for k in FIELDS} for r in run(fetch(), settings)]
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} knowledge base(s)",
        ["name", "version", "model", "chunks", "sources", "hit rate", "MRR", "owner"],
        ([r["name"], r["version"], r["embedding_model"], r["chunk_count"], r["source_count"],
          _fmt(r["hit_rate"]), _fmt(r["mrr"]), r["owner"]] for r in rows),
    )  # fmt: skip


@app.command("query")
def query_kb(
    kb: str = typer.Argument(..., help="Knowledge base name."),
    question: str = typer.Argument(..., help="What to look for."),
    top_k: int = typer.Option(5, "--top-k", min=1, max=100, help="How many chunks."),
    where: list[str] = typer.Option([], "--where", help="KEY=VALUE filter on chunk metadata."),
    json_out: bool = JsonOpt,
) -> None:
    """Retrieve the chunks of a knowledge base closest to a question, with scores and sources."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lorag_rag import retrieval
    from lorag_rag.adapters.chroma_store import ChromaStore
    from lorag_rag.adapters.embedder import EmbedderCache
    from lorag_rag.config import ChromaSettings, RagSettings
    from lorag_rag.deps import RagDeps

    settings, rag = Settings(), RagSettings()
    deps = RagDeps(rag, EmbedderCache(rag.torch_threads), ChromaStore(ChromaSettings()))

    async def fetch() -> list[Any]:
        async with database(settings) as conn:
            return await retrieval.query(conn, deps, kb, question, top_k, parse_where(where))

    try:
        hits = run(fetch(), settings)
    except retrieval.KbNotFound as exc:
        fail(str(exc))
    rows = [
        {"rank": n, "score": round(h.score, 4), "source": h.metadata.get("source"),
         "position": h.metadata.get("position"), "title": h.metadata.get("title"),
         "id": h.id, "text": h.text}
        for n, h in enumerate(hits, 1)
    ]  # fmt: skip
    if json_out:
        print_json({"kb": kb, "question": question, "hits": rows})
        return
    print_table(
        f"{kb}: {question}",
        ["#", "score", "source", "title", "text"],
        ([r["rank"], r["score"], f"{r['source']}#{r['position']}", r["title"],
          " ".join(r["text"].split())[:160]] for r in rows),
    )  # fmt: skip
    if not rows:
        console.print("no chunks matched")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
