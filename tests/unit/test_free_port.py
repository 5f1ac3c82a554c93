"""`free_port`: ports servers are started on, chosen where no outgoing connection can take them
between the choice and the server's bind."""

import socket

from lorag_local import _process
from lorag_local._process import free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable():
    start = _process._ephemeral_start()
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(_process.PORTS_FROM <= p < start for p in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # still free: handing it out did not hold it


def test_a_port_in_use_is_passed_over(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        picks = iter([taken, taken, taken + 1 if taken < 65535 else taken - 1])
        monkeypatch.setattr(_process._random, "randrange", lambda *_: next(picks))
        monkeypatch.setattr(_process, "_ephemeral_start", lambda: 65535)
        assert free_port() != taken


def test_without_room_below_the_range_the_os_picks(monkeypatch, tmp_path):
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("10500\t60999\n")
    monkeypatch.setattr(_process, "EPHEMERAL_RANGE", ranges)
    assert _process._ephemeral_start() == 10500
    assert free_port() >= 1024  # bind(0): the kernel's choice
    monkeypatch.setattr(_process, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert _process._ephemeral_start() == 32768
