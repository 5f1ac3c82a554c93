"""`lorag kb ls | query KB "question"`: your knowledge bases, and retrieval, through the gateway."""

from __future__ import annotations

from typing import Any

import typer

from lorag_cli.gateway import Gateway, refusals, segment
from lorag_cli.output import console, print_json, print_table

app = typer.Typer(help="List and query knowledge bases.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


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
def list_kbs(json_out: bool = JsonOpt) -> None:
    """List your knowledge bases with their version, model, size and retrieval quality."""
    with refusals("cannot list knowledge bases: "):
        rows = Gateway().get("/api/kbs")
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} knowledge base(s)",
        ["name", "version", "model", "chunks", "sources", "hit rate", "MRR"],
        ([r["name"], r["version"], r["embedding_model"], r["chunk_count"], r["source_count"],
          _fmt(r["hit_rate"]), _fmt(r["mrr"])] for r in rows),
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
    body = {"question": question, "top_k": top_k, "where": parse_where(where)}
    with refusals():
        found = Gateway().post(f"/api/kbs/{segment(kb)}/query", body)
    if json_out:
        print_json(found)
        return
    rows = found["hits"]
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
