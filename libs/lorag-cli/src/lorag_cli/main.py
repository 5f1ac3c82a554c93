"""The `lorag` command line."""

from __future__ import annotations

import typer

from lorag_cli import (
    adapters,
    ask,
    db,
    infra,
    jobs,
    kb,
    login,
    migrate,
    recommend,
    services,
    submit,
    tokens,
)

app = typer.Typer(
    help="lorag turns datasets into better AI agents (minions): RAG and LoRA, apart or combined.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command()(infra.up)
app.command()(infra.down)
app.command()(infra.status)
app.command()(services.serve)
app.command()(login.login)
app.command()(submit.submit)
app.command()(migrate.migrate)
app.command()(recommend.recommend)
app.command()(ask.ask)
app.command()(ask.minions)
app.add_typer(jobs.app, name="jobs")
app.add_typer(db.app, name="db")
app.add_typer(kb.app, name="kb")
app.add_typer(adapters.app, name="adapters")
app.add_typer(tokens.app, name="tokens")
