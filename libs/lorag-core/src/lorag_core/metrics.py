"""Prometheus metrics every service exports at `/metrics` on its service port.

One registry per process (prometheus-client's default). The names here are the contract of the
Grafana dashboards under deploy/grafana: a unit test checks every panel's query against the
families these registries really expose, so renaming a metric fails it until the dashboards
follow. The lora-service's serving metrics live beside its engine (lorag_lora.serving.metrics).
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)

JOBS_STARTED = Counter(
    "lorag_jobs_started", "Job runs started by a worker (each attempt).",
    ["service", "training_type"],
)  # fmt: skip
JOBS_FINISHED = Counter(
    "lorag_jobs_finished", "Job runs that ended, by outcome (SUCCEEDED, FAILED, CANCELLED).",
    ["service", "training_type", "outcome"],
)  # fmt: skip
JOB_DURATION = Histogram(
    "lorag_job_duration_seconds", "Wall time of a job run in its worker, by type and outcome.",
    ["service", "training_type", "outcome"], buckets=DURATION_BUCKETS,
)  # fmt: skip
BACKLOG = Gauge(
    "lorag_work_backlog", "Work items queued for a worker of this service (read at scrape).",
    ["service"],
)  # fmt: skip
DEAD_LETTERS = Counter(
    "lorag_dead_letters", "Messages published to a dead-letter topic, by input topic and code.",
    ["topic", "reason"],
)  # fmt: skip
LORA_TOKENS = Counter("lorag_lora_trained_tokens", "Tokens the LoRA trainer consumed.")
LORA_TOKENS_PER_S = Gauge(
    "lorag_lora_tokens_per_second", "LoRA training throughput of the latest training step."
)
RAG_CHUNKS = Counter("lorag_rag_chunks_indexed", "Chunks the RAG ingestion embedded and indexed.")
RAG_CHUNKS_PER_S = Gauge(
    "lorag_rag_chunks_per_second", "RAG ingestion throughput of the latest finished job."
)
GC_FROZEN = Gauge(
    "lorag_gc_frozen_objects",
    "Objects alive when the service had started, frozen out of the cyclic garbage collector.",
)
SAGA_COMPENSATIONS = Counter(
    "lorag_saga_compensations", "Saga stages compensated, by stage and action (cancel, undo).",
    ["stage", "action"],
)  # fmt: skip


def exposition() -> tuple[bytes, str]:
    """The process's metrics as Prometheus text, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
