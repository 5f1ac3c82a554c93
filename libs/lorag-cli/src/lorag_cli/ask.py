"""`lorag ask MINION "question"`: answered by the minion's best variant, or the one you force."""

from __future__ import annotations

import os
from typing import Any

import typer

from lorag_cli.client import database, run
from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.settings import Settings
from lorag_hybrid.config import HybridSettings
from lorag_hybrid.routing import VARIANTS, Reply
from lorag_hybrid.saga import store


def ask(
    minion: str = typer.Argument(..., help="Minion name (`lorag minions` lists them)."),
    question: str = typer.Argument(..., help="What to ask."),
    variant: str | None = typer.Option(None, help="Force one: rag, lora or lora+rag."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Ask a minion; the answer comes from the variant that scored best, with its sources."""
    if variant is not None and variant not in VARIANTS:
        fail(f"unknown variant {variant!r}", hint=f"choose one of {', '.join(VARIANTS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings()

    async def answer() -> tuple[dict[str, Any] | None, Reply | None]:
        from lorag_hybrid.main import make_router

        async with database(settings) as conn:
            row = await store.get_minion(conn, minion)
            if row is None:
                return None, None
            chosen: Any = variant or row["best_variant"]
            return row, await make_router(HybridSettings()).ask(conn, row, question, chosen)

    row, reply = run(answer(), settings)
    if row is None or reply is None:
        fail(f"no minion {minion!r}", hint="`lorag minions` lists them; a hybrid job makes one")
    if json_out:
        print_json(
            {
                "minion": minion,
                "variant": reply.variant,
                "answer": reply.text,
                "sources": reply.sources,
                "scores": row["scores"],
            }
        )
        return
    console.print(f"[bold]{minion}[/] ({reply.variant}): {reply.text}")
    for source in reply.sources:
        console.print(f"  [{source['n']}] {source['source']}: {source['text'][:120]}")


def minions(
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List minions: what they are made of and how each variant scored."""
    settings = Settings()

    async def fetch() -> list[dict[str, Any]]:
        async with database(settings) as conn:
            return await store.list_minions(conn)

    rows = run(fetch(), settings)
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} minion(s)",
        ["minion", "type", "kb", "adapter", "best", "scores"],
        (
            [
                r["name"],
                r["training_type"],
                r["kb"],
                r["adapter"],
                r["best_variant"],
                ", ".join(f"{k} {v:.2f}" for k, v in r["scores"].items()),
            ]
            for r in rows
        ),
    )
