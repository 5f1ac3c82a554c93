"""lorag's topics as an AsyncAPI 3 document, generated from the event contracts.

Upstream systems publish `job.requested` themselves; this is that contract in their ecosystem's
form (code generators, catalogues). It is written next to the JSON Schemas by `make schemas`,
checked by a unit test, and served by every service at `/asyncapi.json`.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from lorag_core.contracts import EVENTS, DeadLettered, Event, dead_letter_topic

REF = "#/components/schemas/{model}"
# What lorag does with each topic, seen from outside: "receive" topics are lorag's inputs (an
# upstream system sends them), "send" topics are what lorag publishes for others to follow.
ACTIONS = {
    "job.requested": ("receive",),
    "job.cancel": ("receive",),
    "job.progress": ("send", "receive"),  # the services publish it, the job tracker folds it
    "adapter.created": ("send",),
    "job.compensate": ("send", "receive"),  # the orchestrator asks, the stage services undo
    "minion.xp": ("send",),
}
TRACE_HEADERS = {
    "type": "object",
    "properties": {
        "traceparent": {"type": "string", "description": "W3C trace context of the job's trace."},
        "tracestate": {"type": "string"},
    },
}


@functools.cache
def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every lorag topic."""
    refs, defs = models_json_schema([(e, "validation") for e in EVENTS], ref_template=REF)
    schemas = dict(defs.get("$defs", {}))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event in EVENTS:
        if event is DeadLettered:
            continue
        name = event.__name__
        schemas.setdefault(name, refs[(event, "validation")])
        channels[event.topic] = _channel(event, name, f"#/components/messages/{name}")
        for action in ACTIONS[event.topic]:
            operations[f"{action}-{event.topic}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{_escape(event.topic)}"},
                "messages": [{"$ref": f"#/channels/{_escape(event.topic)}/messages/{name}"}],
            }
        dlq = dead_letter_topic(event.topic)
        channels[dlq] = _channel(DeadLettered, "DeadLettered", "#/components/messages/DeadLettered")
        channels[dlq]["address"] = dlq
        operations[f"send-{dlq}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{_escape(dlq)}"},
            "messages": [{"$ref": f"#/channels/{_escape(dlq)}/messages/DeadLettered"}],
        }
    schemas.setdefault("DeadLettered", refs[(DeadLettered, "validation")])
    messages = {e.__name__: _message(e) for e in EVENTS}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "lorag topics",
            "version": "1",
            "description": "Jobs requested, their progress, cancellation, compensation, adapters "
            "and minions. Messages are UTF-8 JSON; the key is the job id (or adapter name); "
            "a message that cannot be handled goes to `<topic>.dlq` with the reason.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _channel(event: type[Event], name: str, message: str) -> dict[str, Any]:
    return {
        "address": event.topic,
        "description": (event.__doc__ or "").strip().splitlines()[0],
        "messages": {name: {"$ref": message}},
    }


def _message(event: type[Event]) -> dict[str, Any]:
    return {
        "name": event.__name__,
        "title": event.__name__,
        "summary": (event.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "headers": TRACE_HEADERS,
        "payload": {"$ref": REF.format(model=event.__name__)},
        "bindings": {"kafka": {"key": {"type": "string", "description": "The job id."}}},
    }


def _escape(topic: str) -> str:
    """A channel name inside a JSON pointer ('/' and '~' escaped)."""
    return topic.replace("~", "~0").replace("/", "~1")
