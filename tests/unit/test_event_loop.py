"""LORAG_EVENT_LOOP: the event loop a service runs on."""

import asyncio

import pytest
import uvloop

from lorag_core.service.entry import run_on
from lorag_core.settings import Settings


@pytest.mark.parametrize(
    ("name", "kind"), [("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)]
)
def test_the_service_runs_on_the_loop_named(name, kind):
    ran_on = []

    async def main() -> None:
        ran_on.append(asyncio.get_running_loop())

    run_on(name, main())
    assert isinstance(ran_on[0], kind)
    assert (name == "uvloop") == isinstance(ran_on[0], uvloop.Loop)


def test_the_setting_is_read_and_checked(monkeypatch):
    monkeypatch.delenv("LORAG_EVENT_LOOP", raising=False)
    assert Settings().event_loop == "uvloop"
    monkeypatch.setenv("LORAG_EVENT_LOOP", "asyncio")
    assert Settings().event_loop == "asyncio"
    monkeypatch.setenv("LORAG_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="event_loop"):
        Settings()
