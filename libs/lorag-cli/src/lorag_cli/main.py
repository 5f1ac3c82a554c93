"""The `lorag` command line.

A command imports only its own module: `lorag kb query` must not pay for Kafka, Postgres or
local-server code it never uses (a warm user command answers in well under a second). The full
command table is built only for `lorag --help` and for a name that is not a command.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

HELP = "lorag turns datasets into better AI agents (minions): RAG and LoRA, apart or combined."
# name -> (module, attribute); an attribute that is a Typer app is a group of subcommands.
COMMANDS = {
    "up": ("infra", "up"),
    "down": ("infra", "down"),
    "status": ("infra", "status"),
    "serve": ("services", "serve"),
    "login": ("login", "login"),
    "submit": ("submit", "submit"),
    "migrate": ("migrate", "migrate"),
    "recommend": ("recommend", "recommend"),
    "ask": ("ask", "ask"),
    "minions": ("ask", "minions"),
    "jobs": ("jobs", "app"),
    "db": ("db", "app"),
    "kb": ("kb", "app"),
    "adapters": ("adapters", "app"),
    "tokens": ("tokens", "app"),
    "dlq": ("dlq", "app"),
}


def build(only: str | None = None) -> typer.Typer:
    """The command table: every command, or just `only` when it names one."""
    cli = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_show_locals=False)
    for name, (module, attribute) in COMMANDS.items():
        if only is not None and name != only:
            continue
        found: Any = getattr(importlib.import_module(f"lorag_cli.{module}"), attribute)
        if isinstance(found, typer.Typer):
            cli.add_typer(found, name=name)
        else:
            cli.command(name)(found)
    if only is not None:  # one command alone would become the root: keep `lorag NAME` spelt so
        cli.command("__lorag_placeholder__", hidden=True)(lambda: None)
    return cli


def app(prog_name: str = "lorag") -> None:
    """Run the command named on the command line."""
    name = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    build(name if name in COMMANDS else None)(prog_name=prog_name)
