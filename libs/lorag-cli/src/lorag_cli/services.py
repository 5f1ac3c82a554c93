"""`lorag serve SERVICE|all [--replicas ...]`: run services as separate processes, supervised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import typer

from lorag_cli.output import console, fail
from lorag_cli.replicas import PORTS_HELP, Instance, ReplicaError, instances, replica_counts

SERVICES = {
    "rag-service": "lorag_rag",
    "lora-service": "lorag_lora",
    "hybrid-orchestrator": "lorag_hybrid",
    "migration-service": "lorag_migration",
    "gateway": "lorag_gateway",
}
STOP_GRACE_S = 30.0
MAX_BACKOFF_S = 30.0


@dataclass
class Child:
    instance: Instance
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.instance.instance_id


URL_SETTINGS = {
    "rag-service": "LORAG_RAG_SERVICE_URL",
    "lora-service": "LORAG_LORA_SERVICE_URL",
    "hybrid-orchestrator": "LORAG_HYBRID_SERVICE_URL",
    "migration-service": "LORAG_MIGRATION_SERVICE_URL",
}


def shifted_ports(base: int) -> dict[str, str]:
    """Ports and the matching service addresses when the stack runs from port `base` on (several
    stacks on one machine): each service at base + its index, then the lora-service's OpenAI API,
    then the gateway's API."""
    env = {f"{name}:port": str(base + n) for n, name in enumerate(SERVICES)}
    env |= {var: f"http://127.0.0.1:{base + list(SERVICES).index(name)}"
            for name, var in URL_SETTINGS.items()}  # fmt: skip
    openai_port, gateway_port = base + len(SERVICES), base + len(SERVICES) + 1
    env |= {"LORAG_LORA_API_PORT": str(openai_port), "LORAG_GATEWAY_PORT": str(gateway_port),
            "LORAG_LORA_OPENAI_URL": f"http://127.0.0.1:{openai_port}/v1"}  # fmt: skip
    return env


def _spawn(instance: Instance) -> subprocess.Popen[bytes]:
    env = os.environ.copy()
    if base := env.get("LORAG_HEALTH_PORT_BASE"):
        shifted = shifted_ports(int(base))
        env["LORAG_HEALTH_PORT"] = shifted[f"{instance.service}:port"]
        for var, value in shifted.items():
            if not var.endswith(":port"):
                env.setdefault(var, value)
    env |= instance.env(env)
    return subprocess.Popen([sys.executable, "-m", SERVICES[instance.service]], env=env)


def serve(
    service: str = typer.Argument(..., help=f"One of: {', '.join(SERVICES)}, or all."),
    replicas: list[str] = typer.Option(
        [],
        "--replicas",
        metavar="N | SERVICE=N",
        help="Instances to start: N for one service; SERVICE=N with `all` (repeatable). "
        + PORTS_HELP,
    ),
) -> None:
    """Run one service in the foreground, or several processes (`all`, replicas) supervised.

    Supervised, a child that exits is restarted with backoff; SIGTERM or Ctrl-C stops every
    child gracefully (in-flight messages finish, running jobs are queued again) and then exits.
    Each child's instance id (LORAG_INSTANCE_ID), the `worker` named on the jobs it runs, is
    SERVICE-k for its replica k. Health ports are each service's default, or
    LORAG_HEALTH_PORT_BASE + its index in the order listed (then the lora-service's
    OpenAI-compatible API and the gateway's API), with every service's address set to match.
    """
    if service != "all" and service not in SERVICES:
        fail(f"unknown service {service!r}", hint=f"choose one of: {', '.join(SERVICES)}, all")
    try:
        counts = replica_counts(service, replicas, list(SERVICES))
    except ReplicaError as exc:
        example = "all --replicas rag-service=3" if service == "all" else f"{service} --replicas 3"
        fail(str(exc), hint=f"e.g. `lorag serve {example}`")
    if service != "all" and counts[service] == 1:
        os.execv(sys.executable, [sys.executable, "-m", SERVICES[service]])
    if counts.get("rag-service", 1) > 1 and not os.environ.get("LORAG_CHROMA_URL"):
        console.print(
            "[yellow]rag-service replicas share one embedded Chroma folder, which Chroma does "
            "not support across processes: set LORAG_CHROMA_URL to a Chroma server "
            "(`chroma run --path DIR`) for more than a trial[/]"
        )
    _supervise([Child(instance, _spawn(instance)) for instance in instances(counts)])


def _supervise(children: list[Child]) -> None:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(
        "supervising " + ", ".join(f"{child.name} (pid {child.process.pid})" for child in children)
    )
    while not stopping:
        time.sleep(0.5)
        for child in children:
            code = child.process.poll()
            if code is None or stopping:
                continue
            delay = min(MAX_BACKOFF_S, 2.0**child.restarts)
            if time.monotonic() - child.started > 60:
                child.restarts, delay = 0, 1.0  # it ran fine for a while: start the backoff over
            console.print(f"[yellow]{child.name} exited with {code}; restarting in {delay:.0f}s[/]")
            time.sleep(delay)
            child.process, child.started = _spawn(child.instance), time.monotonic()
            child.restarts += 1
    _stop_all(children)


def _stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            console.print(f"[red]{child.name} did not stop in {STOP_GRACE_S:.0f}s; killing it[/]")
            child.process.kill()
            child.process.wait()
    console.print("all services stopped")
