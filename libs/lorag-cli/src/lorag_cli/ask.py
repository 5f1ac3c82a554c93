"""`lorag ask MINION "question"` and `lorag minions`: your minions, through the gateway."""

from __future__ import annotations

import typer

from lorag_cli.gateway import Gateway, refusals, segment
from lorag_cli.output import console, fail, print_json, print_table

VARIANTS = ("extractive", "rag", "lora", "lora+rag")


def ask(
    minion: str = typer.Argument(..., help="Minion name (`lorag minions` lists them)."),
    question: str = typer.Argument(..., help="What to ask."),
    variant: str | None = typer.Option(None, help="Force one: extractive, rag, lora or lora+rag."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Ask a minion; the variant that scored best on questions like this one answers, with its
    sources."""
    if variant is not None and variant not in VARIANTS:
        fail(f"unknown variant {variant!r}", hint=f"choose one of {', '.join(VARIANTS)}")
    with refusals():
        answered = Gateway().post(
            f"/api/minions/{segment(minion)}/ask", {"question": question, "variant": variant}
        )
    reply = answered["replies"][0]
    if reply.get("error"):
        fail(f"{minion} ({reply['variant']}) could not answer: {reply['error']}")
    routing = answered.get("routing") or {}
    if json_out:
        print_json({
            "minion": minion, "variant": reply["variant"], "answer": reply["answer"],
            "sources": reply["sources"], "degenerate": reply.get("degenerate"),
            "scores": routing.get("scores") or answered["scores"],
            "overall_scores": answered["scores"], "routing": routing or None,
        })  # fmt: skip
        return
    console.print(f"[bold]{minion}[/] ({reply['variant']}): {reply['answer']}")
    if routing:
        predicted = ", ".join(f"{k} {v:.2f}" for k, v in routing["scores"].items())
        console.print(f"  routed by {routing['basis']}: {predicted}")
        for rejected in routing.get("rejected", []):
            console.print(f"  passed over {rejected['variant']}: {rejected['reason']}")
    for source in reply["sources"]:
        console.print(f"  [{source['n']}] {source['source']}: {source['text'][:120]}")


def minions(
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List your minions: what they are made of and how each variant scored."""
    with refusals("cannot list minions: "):
        rows = Gateway().get("/api/minions")
    if json_out:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} minion(s)",
        ["minion", "type", "kb", "adapter", "best", "scores"],
        ([r["name"], r["training_type"], r["kb"], r["adapter"], r["best_variant"],
          ", ".join(f"{k} {v:.2f}" for k, v in r["scores"].items())] for r in rows),
    )  # fmt: skip
