"""Real Kafka, Postgres and S3 from lorag_local: start on free ports, round-trip, stop."""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from minio import Minio

from lorag_local import LocalStack, free_port

pytestmark = pytest.mark.integration


def _free_stack(state_dir: Path) -> LocalStack:
    return LocalStack(
        state_dir, kafka_port=free_port(), postgres_port=free_port(), s3_port=free_port(),
        otlp_port=free_port(), trace_ui_port=free_port(),
    )  # fmt: skip


def _assert_stopped(stack: LocalStack, pids: list[int]) -> None:
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state in ("Z", "X"), f"pid {pid} still running after down()"
    assert not any(info["running"] for info in stack.status().values())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = _free_stack(tmp_path_factory.mktemp("local-stack"))
    try:
        stack.up()
        yield stack
    finally:
        pids = [info["pid"] for info in stack.status().values() if info["pid"]]
        stack.down()
        _assert_stopped(stack, pids)


def test_status_ready(stack: LocalStack) -> None:
    status = stack.status()
    assert set(status) == {"kafka", "postgres", "s3", "jaeger"}
    for name, info in status.items():
        assert info["ready"] and info["running"], (name, info)
        assert isinstance(info["pid"], int)
        assert Path(info["log"]).parent == stack.state_dir / "logs"


def test_second_up_is_a_fast_noop(stack: LocalStack) -> None:
    pids = {name: info["pid"] for name, info in stack.status().items()}
    started = time.monotonic()
    assert stack.up(progress=lambda _: None) == stack.endpoints
    assert time.monotonic() - started < 5
    assert {name: info["pid"] for name, info in stack.status().items()} == pids


async def test_kafka_round_trip(stack: LocalStack) -> None:
    bootstrap, topic = stack.endpoints.kafka_bootstrap, f"t-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id="t"
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"k", b"hello")


def test_postgres_query(stack: LocalStack) -> None:
    with psycopg.connect(stack.endpoints.postgres_dsn) as conn:
        assert conn.execute("select current_user, current_database()").fetchone() == (
            "lorag",
            "lorag",
        )
        version = conn.execute("show server_version_num").fetchone()
        assert version is not None and int(version[0]) >= 150000
        conn.execute("create table if not exists t (id int primary key, v text)")
        conn.execute("insert into t values (1, 'x') on conflict do nothing")
        assert conn.execute("select v from t where id = 1").fetchone() == ("x",)


def test_s3_put_get(stack: LocalStack) -> None:
    ep = stack.endpoints
    client = Minio(
        ep.s3_endpoint, access_key=ep.s3_access_key, secret_key=ep.s3_secret_key, secure=False
    )
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    body = os.urandom(100_000)
    client.put_object(bucket, "dir/obj.bin", io.BytesIO(body), len(body), metadata={"x-a": "1"})
    response = client.get_object(bucket, "dir/obj.bin")
    try:
        assert response.read() == body
    finally:
        response.close()
        response.release_conn()
    assert client.stat_object(bucket, "dir/obj.bin").size == len(body)


def test_second_stack_side_by_side(stack: LocalStack, tmp_path: Path) -> None:
    other = _free_stack(tmp_path / "other")
    try:
        other.up(progress=lambda _: None)
        assert all(info["ready"] for info in other.status().values())
        assert all(info["ready"] for info in stack.status().values())
    finally:
        pids = [info["pid"] for info in other.status().values() if info["pid"]]
        other.down()
    _assert_stopped(other, pids)
    assert all(info["ready"] for info in stack.status().values())
