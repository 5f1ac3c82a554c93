"""`lorag up | down | status`: the local Kafka, Postgres, S3 and Jaeger servers."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import typer

from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.db import migrations
from lorag_core.messaging.topics import ensure_topics
from lorag_core.settings import Settings

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def up(json_out: bool = JsonOpt) -> None:
    """Start the local Kafka, Postgres, S3 and Jaeger servers, with schema, topics and buckets.

    The first run downloads Kafka (Maven Central), builds the S3 server and Jaeger (Go) and
    unpacks the Jaeger UI (third_party/jaeger-ui); later runs take seconds.
    """
    from lorag_local.stack import LocalStack, LocalStackError

    started = time.perf_counter()
    stack = LocalStack.from_env()
    try:
        endpoints = stack.up(progress=(lambda _m: None) if json_out else console.print)
    except LocalStackError as exc:
        fail(str(exc), hint="see the logs under " + str(stack.state_dir / "logs"))
    settings = Settings()  # the local profile: the servers' own credentials
    migrations.upgrade(settings.postgres_dsn)
    asyncio.run(ensure_topics(settings.kafka.bootstrap_servers, settings.kafka.partitions))
    from lorag_core.storage import ObjectStore

    ObjectStore.from_settings(settings.s3).ensure_buckets(settings.s3.buckets)
    elapsed = time.perf_counter() - started
    if json_out:
        print_json({"endpoints": endpoints.__dict__, "seconds": round(elapsed, 2)})
    else:
        console.print(
            f"[green]lorag is up[/] in {elapsed:.1f}s: kafka {endpoints.kafka_bootstrap}, "
            f"postgres {endpoints.postgres_dsn}, s3 {endpoints.s3_endpoint}, "
            f"traces {endpoints.trace_ui_url}"
        )


def down() -> None:
    """Stop the local servers that `lorag up` started."""
    from lorag_local.stack import LocalStack

    LocalStack.from_env().down()
    console.print("lorag is down")


def running_services() -> dict[str, dict[str, str]]:
    """Each lorag service answering on its service port here, with its /metrics URL."""
    from lorag_api.base import ServiceUrls

    urls = ServiceUrls()
    found = {}
    for name, base in (
        ("rag-service", urls.rag_service_url), ("lora-service", urls.lora_service_url),
        ("hybrid-orchestrator", urls.hybrid_service_url),
        ("migration-service", urls.migration_service_url),
        ("gateway", GATEWAY_SERVICE_URL),
    ):  # fmt: skip
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=0.5) as rsp:
                if rsp.status == 200:
                    found[name] = {"url": base, "metrics": f"{base}/metrics"}
        except OSError:
            continue
    return found


GATEWAY_SERVICE_URL = "http://127.0.0.1:8105"  # the gateway's service port (its API is 8000)


def status(json_out: bool = JsonOpt) -> None:
    """Show each local server (endpoint, running, answering, log) and the services running."""
    from lorag_local.stack import LocalStack

    report = LocalStack.from_env().status()
    services = running_services()
    if json_out:
        print_json({**report, "services": services})
        return
    print_table(
        "local infrastructure",
        ["component", "endpoint", "running", "ready", "log"],
        (
            [name, c.get("endpoint"), c.get("running"), c.get("ready"), c.get("log")]
            for name, c in report.items()
        ),
    )
    if "jaeger" in report:
        console.print(f"traces: the Jaeger UI at {report['jaeger'].get('ui')}")
    for name, service in services.items():
        console.print(f"{name}: metrics at {service['metrics']}")
    if not all(c.get("ready") for c in report.values()):
        raise typer.Exit(1)
