"""`lorag dlq ls | show ID | replay ID|--all --topic T`: the messages consumers set aside.

An admin command, like `lorag tokens`: it reads the dead-letter ledger in Postgres (one row per
record set aside, whichever consumer groups refused it) and replays by publishing to Kafka
itself. A replay sends the original key, headers and payload to the original topic; consumers
are idempotent by job id and event id, so a replay changes nothing that was already done.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import typer

from lorag_cli.client import database, run
from lorag_cli.output import console, fail, print_json, print_table
from lorag_core.db import dead_letters
from lorag_core.settings import Settings

app = typer.Typer(
    help="List, show and replay dead letters (messages a consumer set aside).",
    no_args_is_help=True,
)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
TopicOpt = typer.Option(
    None, "--topic", "-t", help="Input topic, e.g. job.requested (its .dlq is accepted too)."
)
HINT_LS = "`lorag dlq ls` lists the dead letters and their ids"


def _topic(topic: str | None) -> str | None:
    if topic is None:
        return None
    topic = topic.strip().removesuffix(".dlq")
    if not topic or "\x00" in topic:
        fail(f"--topic {topic!r} is not a topic name", hint="for example --topic job.requested")
    return topic


def _letter_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        fail(f"dead letter id {text!r} is not a number", hint=HINT_LS)
    if value < 1:
        fail(f"dead letter id {value} is not a valid id", hint=HINT_LS)
    return value


@app.command("ls")
def list_letters(
    topic: str | None = TopicOpt,
    limit: int = typer.Option(100, min=1, max=10000, help="At most this many, newest first."),
    json_out: bool = JsonOpt,
) -> None:
    """List dead letters, newest first: id, topic, offset, reason, consumer groups, replays."""
    settings = Settings()
    wanted = _topic(topic)

    async def fetch() -> list[dict[str, Any]]:
        async with database(settings) as conn:
            return await dead_letters.list_letters(conn, wanted, limit)

    rows = run(fetch(), settings)
    if json_out:
        print_json(rows)
        return
    where = f" on {wanted}" if wanted else ""
    print_table(
        f"{len(rows)} dead letter(s){where}",
        ["id", "topic", "partition@offset", "reason", "groups", "attempts", "when", "replays"],
        ([r["id"], r["original_topic"], f"{r['partition']}@{r['offset']}", r["reason_code"],
          ", ".join(r["consumers"]), r["attempts"], f"{r['created_at']:%Y-%m-%d %H:%M:%S}",
          r["replays"]] for r in rows),
    )  # fmt: skip


def _readable(payload: bytes) -> str:
    """The payload for people: pretty JSON, text, or base64 when it is neither."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(payload).decode()
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except json.JSONDecodeError:
        return text


def _whole(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row as JSON: bytes in base64, headers as name -> text (or base64:...)."""
    payload: bytes = bytes(row.pop("payload"))
    key: bytes | None = bytes(row["key"]) if row["key"] is not None else None
    headers = dead_letters.decode_headers(row.pop("headers"))
    return {
        **row,
        "key": _text(key) if key is not None else None,
        "headers": [[name, _text(value)] for name, value in headers],
        "payload_base64": base64.b64encode(payload).decode(),
        "payload_text": _readable(payload),
    }


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()


async def _fetch_one(settings: Settings, letter_id: int) -> dict[str, Any] | None:
    async with database(settings) as conn:
        return await dead_letters.get_letter(conn, letter_id)


@app.command("show")
def show(
    letter_id: str = typer.Argument(..., metavar="ID", help="Dead letter id from `lorag dlq ls`."),
    json_out: bool = JsonOpt,
) -> None:
    """Show one dead letter whole: why, which groups refused it, its key, headers and payload."""
    settings = Settings()
    wanted = _letter_id(letter_id)
    row = run(_fetch_one(settings, wanted), settings)
    if row is None:
        fail(f"no dead letter {wanted}", hint=HINT_LS)
    letter = _whole(row)
    if json_out:
        print_json(letter)
        return
    console.print(f"[bold]dead letter {letter['id']}[/] from {letter['original_topic']}"
                  f" partition {letter['partition']} offset {letter['offset']}")  # fmt: skip
    console.print(f"reason: {letter['reason_code']} after {letter['attempts']} attempt(s)")
    console.print(f"  {letter['reason']}", markup=False, highlight=False)
    console.print(f"refused by: {', '.join(letter['consumers'])}")
    console.print(f"set aside: {letter['created_at']:%Y-%m-%d %H:%M:%S %Z}; "
                  f"replayed {letter['replays']} time(s)")  # fmt: skip
    console.print(f"key: {letter['key']}", markup=False, highlight=False)
    for name, value in letter["headers"]:
        console.print(f"header {name}: {value}", markup=False, highlight=False)
    console.print(f"payload ({letter['payload_bytes']} bytes):")
    print(letter["payload_text"])


@app.command("replay")
def replay(
    letter_id: str | None = typer.Argument(
        None, metavar="[ID]", help="Dead letter id from `lorag dlq ls`."
    ),
    replay_all: bool = typer.Option(
        False, "--all", help="Every dead letter of --topic not replayed yet."
    ),
    topic: str | None = TopicOpt,
    again: bool = typer.Option(False, "--again", help="With --all: replayed ones too."),
    json_out: bool = JsonOpt,
) -> None:
    """Publish dead letters again to their original topic: the original key, headers, payload."""
    if (letter_id is None) == (not replay_all):
        fail("name one dead letter ID, or --all with --topic", hint=HINT_LS)
    if replay_all and topic is None:
        fail(
            "--all needs --topic", hint="for example: lorag dlq replay --all --topic job.requested"
        )
    if letter_id is not None and topic is not None:
        fail("--topic goes with --all; an ID names its own topic")
    settings = Settings()
    wanted_id = _letter_id(letter_id) if letter_id is not None else None
    wanted_topic = _topic(topic)

    async def act() -> list[dict[str, Any]]:
        from aiokafka import AIOKafkaProducer  # only a replay needs Kafka

        async with database(settings) as conn:
            if wanted_id is not None:
                row = await dead_letters.get_letter(conn, wanted_id)
                rows = [row] if row is not None else []
            else:
                listed = await dead_letters.list_letters(conn, wanted_topic, limit=100000)
                picked = [r["id"] for r in reversed(listed) if again or r["replays"] == 0]
                rows = [r for i in picked if (r := await dead_letters.get_letter(conn, i))]
            if not rows:
                return []
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka.bootstrap_servers,
                client_id="lorag-dlq-replay",
                max_request_size=16 * 1024 * 1024,
                enable_idempotence=True,
            )
            await producer.start()
            try:
                done = []
                for row in rows:
                    meta = await producer.send_and_wait(
                        row["original_topic"],
                        bytes(row["payload"]),
                        key=bytes(row["key"]) if row["key"] is not None else None,
                        headers=dead_letters.decode_headers(row["headers"]),
                    )
                    await dead_letters.mark_replayed(conn, row["id"])
                    done.append({"id": row["id"], "topic": row["original_topic"],
                                 "partition": meta.partition, "offset": meta.offset})  # fmt: skip
                return done
            finally:
                await producer.stop()

    done = run(act(), settings)
    if not done:
        if wanted_id is not None:
            fail(f"no dead letter {wanted_id}", hint=HINT_LS)
        note = "" if again else " not replayed yet (--again replays those too)"
        fail(f"no dead letters on {wanted_topic}{note}", hint=HINT_LS)
    if json_out:
        print_json(done)
        return
    for item in done:
        console.print(f"replayed {item['id']} to {item['topic']} "
                      f"partition {item['partition']} offset {item['offset']}")  # fmt: skip
