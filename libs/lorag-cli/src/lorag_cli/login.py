"""`lorag login`: remember which gateway to use and the token to present there."""

from __future__ import annotations

import typer

from lorag_cli.gateway import Gateway, gateway_url, refusals, save_config
from lorag_cli.output import console, print_json


def login(
    url: str = typer.Option(None, "--url", help="The gateway, e.g. https://lorag.example.com."),
    token: str = typer.Option(
        None, "--token", help="A token from `lorag tokens create OWNER`; asked for when omitted."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check a token against the gateway and save both for later commands."""
    url = (url or gateway_url()).rstrip("/")
    token = token or typer.prompt("token", hide_input=True)
    with refusals():
        owner = Gateway(url, token).get("/api/me")["owner"]
    path = save_config(url, token)
    if json_out:
        print_json({"url": url, "owner": owner, "config": str(path)})
    else:
        console.print(f"logged in to {url} as {owner}; saved in {path}")
