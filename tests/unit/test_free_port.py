"""`free_port`: ports servers are started on, chosen where no outgoing connection can take them
between the choice and the server's bind."""

import itertools
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
        # The taken port twice, then any other: a neighbour may be busy too, or handed out
        # already by an earlier test in this process (CI once drew such a neighbour).
        others = (p for p in range(_process.PORTS_FROM, 65535) if p != taken)
        picks = itertools.chain([taken, taken], others)
        drawn: list[int] = []

        def draw(*_: int) -> int:
            drawn.append(next(picks))
            return drawn[-1]

        monkeypatch.setattr(_process._random, "randrange", draw)
        monkeypatch.setattr(_process, "_ephemeral_start", lambda: 65535)
        port = free_port()
        assert drawn[:2] == [taken, taken]
        assert port != taken
        assert port == drawn[-1]


def test_without_room_below_the_range_the_os_picks(monkeypatch, tmp_path):
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("10500\t60999\n")
    monkeypatch.setattr(_process, "EPHEMERAL_RANGE", ranges)
    assert _process._ephemeral_start() == 10500
    assert free_port() >= 1024  # bind(0): the kernel's choice
    monkeypatch.setattr(_process, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert _process._ephemeral_start() == 32768
