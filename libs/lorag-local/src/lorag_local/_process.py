"""Process plumbing shared by the three servers: spawning, pid files, waiting, caches."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]


class _Detached(subprocess.Popen[bytes]):
    """Popen of a server meant to outlive us: no "still running" ResourceWarning at exit."""

    def __del__(self) -> None:
        pass


# Servers started by this Python process, by pid: poll() on the handle reaps one that exits,
# which would otherwise linger as a zombie that looks alive to os.kill(pid, 0).
_spawned: dict[int, _Detached] = {}


class LocalStackError(RuntimeError):
    """A local server could not be installed, started, reached or stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on host right now, below the kernel's ephemeral range.

    The port the OS picks for bind(0) comes from the ephemeral range, which every outgoing
    connection on the machine draws from too: between this call and the server's own bind, a
    client may take it (a CI run lost Jaeger's OTLP port so, while Kafka's clients connected).
    A port below the range is taken only by a server binding it by number. This process never
    hands out the same port twice, so servers it starts side by side cannot collide either.
    """
    first = _ephemeral_start()
    for _ in range(200):
        port = _random.randrange(PORTS_FROM, first) if first > PORTS_FROM + 1000 else 0
        with _handing_out, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if port in _handed_out:
                continue
            try:
                sock.bind((host, port))  # no SO_REUSEADDR: a port in TIME_WAIT is passed over
            except OSError:
                continue
            port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise LocalStackError(f"no free TCP port on {host} after 200 tries")


PORTS_FROM = 10000  # below: well-known and registered services' usual ports
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()
_handing_out = threading.Lock()
_random = random.SystemRandom()


def _ephemeral_start() -> int:
    """The lowest local port the kernel gives outgoing connections (Linux's default if unread)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """Return True when we could bind host:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def cache_dir() -> Path:
    """Folder for downloaded/built server binaries: $LORAG_CACHE_DIR or ~/.cache/lorag."""
    return Path(os.environ.get("LORAG_CACHE_DIR") or Path.home() / ".cache" / "lorag")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path (two stacks may install the same cache entry at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def require_tool(name: str, hint: str) -> str:
    """Return the path of an executable on PATH, or raise LocalStackError with an install hint."""
    found = shutil.which(name)
    if found is None:
        raise LocalStackError(f"{name!r} not found on PATH. {hint}")
    return found


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a log file (empty string when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_logged(argv: list[str], log: Path, what: str, **kwargs: Any) -> None:
    """Run a short command with its output appended to log; raise with the log tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            **kwargs,
        )
    if result.returncode != 0:
        raise LocalStackError(
            f"{what} failed (exit {result.returncode}); log {log}:\n{log_tail(log)}"
        )


def rotate_log(log: Path) -> None:
    """Keep the previous run's log as <log>.1 so each start begins with a fresh file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if log.exists() and log.stat().st_size:
        log.replace(log.with_name(log.name + ".1"))


def spawn(
    argv: list[str],
    *,
    log: Path,
    pid_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a detached server (own session, outlives us) logging to log; record its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        # start_new_session: the server must survive `lorag up` exiting and Ctrl-C in its terminal.
        proc = _Detached(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    _spawned[proc.pid] = proc
    write_pid(pid_file, proc.pid)
    return proc.pid


def write_pid(pid_file: Path, pid: int) -> None:
    """Record a server's pid."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def pid_alive(pid: int) -> bool:
    """True when pid is a live (not zombie) process."""
    child = _spawned.get(pid)
    if child is not None:  # our own child: poll() reaps it, else it would linger as a zombie
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def read_pid(pid_file: Path, marker: str) -> int | None:
    """Pid from pid_file if that process is alive and its command line mentions marker."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    if pid in _spawned:  # our own child: no pid reuse possible while we hold its handle
        return pid
    # Guard against pid reuse: the pid must still belong to the server we started.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    # Empty while the process is still inside exec() (vfork lets the parent resume early).
    return pid if not cmdline or marker in cmdline else None


def terminate(
    pid_file: Path, marker: str, *, sig: int = signal.SIGTERM, timeout: float = 30.0
) -> None:
    """Stop the server recorded in pid_file: sig, wait up to timeout, then SIGKILL its group."""
    pid = read_pid(pid_file, marker)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if not wait_until(lambda: not pid_alive(pid), timeout):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # The server leads its own process group: take its helper processes down too.
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 5.0)
    pid_file.unlink(missing_ok=True)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll check until it returns True (-> True) or timeout seconds pass (-> False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Server:
    """One local server: its files under state_dir and the start/ready/stop life cycle."""

    name = "server"
    env_hint = ""  # which setting picks another port, for the "port in use" message
    stop_signal: int = signal.SIGTERM
    stop_timeout = 30.0
    start_timeout = 90.0

    def __init__(self, state_dir: Path, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.log = state_dir / "logs" / f"{self.name}.log"
        self.pid_file = state_dir / "run" / f"{self.name}.pid"
        self.data_dir = state_dir / "data" / self.name

    @property
    def endpoint(self) -> str:
        """Where clients connect."""
        return f"{self.host}:{self.port}"

    @property
    def marker(self) -> str:
        """Text that the server's command line contains (checked against pid reuse)."""
        return str(self.data_dir)

    def pid(self) -> int | None:
        """Pid of the server this state_dir started, if it is running."""
        return read_pid(self.pid_file, self.marker)

    def ready(self, timeout: float = 2.0) -> bool:
        """True when the server answers a real request of its protocol."""
        raise NotImplementedError

    def started(self) -> bool:
        """Readiness check used right after a start (may demand more than ready())."""
        return self.ready()

    def install(self, progress: Progress) -> None:
        """Fetch or build what the server needs (cached between runs)."""

    def start(self, progress: Progress) -> None:
        """Spawn the server detached; return without waiting for readiness."""
        raise NotImplementedError

    def wait_ready(self, timeout: float) -> None:
        """Wait until started(); raise with the log tail if the server dies or times out."""
        deadline = time.monotonic() + timeout
        while not self.started():
            if self.pid() is None:
                raise self.error("exited during startup")
            if time.monotonic() > deadline:
                raise self.error(f"not ready after {timeout:.0f} s")
            time.sleep(0.2)

    def ensure_up(self, progress: Progress) -> None:
        """Start the server unless it already answers; wait for readiness."""
        if self.ready():
            progress(f"{self.name}: already running at {self.endpoint}")
            return
        if self.pid() is None:
            if port_open(self.host, self.port):
                raise LocalStackError(
                    f"{self.name}: {self.endpoint} is taken by a program that does not answer as "
                    f"the expected {self.name} server; stop it or choose another port"
                    f"{' (' + self.env_hint + ')' if self.env_hint else ''}."
                )
            self.install(progress)
            started = time.monotonic()
            self.start(progress)
        else:
            started = time.monotonic()
            progress(f"{self.name}: waiting for the running server (pid {self.pid()})")
        self.wait_ready(self.start_timeout)
        progress(f"{self.name}: ready at {self.endpoint} ({time.monotonic() - started:.1f} s)")

    def stop(self) -> None:
        """Stop the server this state_dir started (no-op when none runs)."""
        terminate(self.pid_file, self.marker, sig=self.stop_signal, timeout=self.stop_timeout)

    def status(self) -> dict[str, object]:
        """Running/ready state, checked through the real protocol with short timeouts."""
        pid = self.pid()
        ready = self.ready(timeout=1.0)
        return {
            "endpoint": self.endpoint,
            "running": pid is not None or ready,
            "ready": ready,
            "pid": pid,
            "log": str(self.log),
        }

    def error(self, what: str) -> LocalStackError:
        """A LocalStackError that carries the tail of this server's log."""
        tail = log_tail(self.log)
        return LocalStackError(f"{self.name} {what}; log {self.log}:\n{tail or '(empty)'}")
