"""Drive a FastStream broker's consume middlewares around a handler, as FastStream does, with
no Kafka: for tests and profiles of what the chain does to a (hand-made) message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from faststream import StreamMessage


async def through_middlewares(
    middlewares: Sequence[Any],
    context: Any,
    msg: StreamMessage[Any],
    handler: Callable[[StreamMessage[Any]], Awaitable[Any]],
) -> None:
    """One message through the middlewares (the first is the outermost) to the handler."""
    # FastStream builds each middleware from the raw message: for a batch, the tuple of records
    scopes = [factory(msg.raw_message, context=context) for factory in middlewares]
    call: Callable[[StreamMessage[Any]], Awaitable[Any]] = handler
    for scope in reversed(scopes):
        call = partial(scope.consume_scope, call)
    for scope in scopes:
        await scope.__aenter__()
    await call(msg)
    for scope in reversed(scopes):
        await scope.__aexit__(None, None, None)
