"""Kafka 4.x, one KRaft node (broker+controller), run from jars fetched from Maven Central."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from string import Template
from typing import Any

from ._process import (
    LocalStackError,
    Progress,
    Server,
    cache_dir,
    file_lock,
    free_port,
    port_free,
    port_open,
    require_tool,
    rotate_log,
    run_logged,
    spawn,
)

# Keep in sync with <kafka.version> in deploy/local/kafka/pom.xml (we pass it to mvn anyway).
KAFKA_VERSION = "4.1.1"
JAVA_HINT = "Java 17+ is needed for Kafka: apt-get install openjdk-17-jre-headless"
MAVEN_HINT = "Maven is needed once to fetch Kafka's jars from Maven Central: apt-get install maven"
STARTED_LINE = "Kafka Server started"


def deploy_dir() -> Path:
    """deploy/local/kafka of the lorag checkout (pom.xml, log4j2.yaml, server.properties)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "deploy" / "local" / "kafka"
        if (candidate / "pom.xml").is_file():
            return candidate
    raise LocalStackError(
        "deploy/local/kafka/pom.xml not found above lorag_local's sources; "
        "lorag_local must run from a lorag repository checkout"
    )


def lib_dir() -> Path:
    """Cached folder holding the Kafka jars."""
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "lib"


def java() -> str:
    """Path of a java >= 17, or raise LocalStackError saying what to install."""
    exe = require_tool("java", JAVA_HINT)
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    # "1.8.0" parses as 1: anything before 17 is too old for Kafka 4.
    if match and int(match.group(1)) < 17:
        raise LocalStackError(f"{exe} is Java {match.group(1)}, too old. {JAVA_HINT}")
    return exe


def _cluster_id() -> str:
    """A Kafka cluster id (base64url UUID), like `kafka-storage random-uuid` without a JVM."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka avoids ids that look like command-line flags
            return cid


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to completion from sync code, even when a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _list_topics(bootstrap: str, timeout: float) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient  # lazy: `import lorag_local` stays fast

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
        async with asyncio.timeout(timeout):
            return list(await admin.list_topics())
    finally:
        await admin.close()


class Kafka(Server):
    """Single-node KRaft Kafka listening on PLAINTEXT host:port."""

    name = "kafka"
    env_hint = "LORAG_KAFKA_BOOTSTRAP_SERVERS"
    start_timeout = 120.0

    @property
    def config(self) -> Path:
        """The rendered server.properties."""
        return self.data_dir / "server.properties"

    def ready(self, timeout: float = 2.0) -> bool:
        """True when a list-topics request answers (checking the port first keeps it quiet)."""
        if not port_open(self.host, self.port):
            return False
        try:
            _run_coroutine(lambda: _list_topics(self.endpoint, timeout))
        except Exception:
            return False
        return True

    def started(self) -> bool:
        """Ready after a start: the broker logged its start line and answers requests."""
        # An open port is not enough: the socket server opens before the broker can serve.
        try:
            logged = STARTED_LINE in self.log.read_text(errors="replace")
        except FileNotFoundError:
            logged = False
        return logged and self.ready()

    def install(self, progress: Progress) -> None:
        """Copy the Kafka jars from Maven Central into the cache (once)."""
        lib = lib_dir()
        if (lib / ".complete").exists():
            return
        with file_lock(lib.parent / ".lock"):
            if (lib / ".complete").exists():  # another stack installed it while we waited
                return
            mvn = require_tool("mvn", MAVEN_HINT)
            progress(f"kafka: fetching Kafka {KAFKA_VERSION} jars from Maven Central into {lib}")
            tmp = lib.with_name("lib.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            pom = deploy_dir() / "pom.xml"
            argv = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"]
            argv += [f"-DoutputDirectory={tmp}", f"-Dkafka.version={KAFKA_VERSION}"]
            argv += ["-DincludeScope=runtime"]
            run_logged(argv, lib.parent / "install.log", "fetching Kafka jars with mvn")
            (tmp / ".complete").touch()
            shutil.rmtree(lib, ignore_errors=True)
            tmp.rename(lib)

    def start(self, progress: Progress) -> None:
        """Render the config, format storage on first use, spawn the broker."""
        exe = java()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deploy = deploy_dir()
        template = Template((deploy / "server.properties").read_text())
        self.config.write_text(
            template.substitute(
                host=self.host,
                port=self.port,
                controller_port=self._controller_port(),
                log_dirs=self.data_dir / "kraft",
            )
        )
        log4j = self.data_dir / "log4j2.yaml"
        shutil.copyfile(deploy / "log4j2.yaml", log4j)
        rotate_log(self.log)
        # One argv item and no shell: java itself must expand the "lib/*" classpath wildcard.
        classpath = ["-cp", f"{lib_dir()}/*", f"-Dlog4j2.configurationFile={log4j}"]
        if not (self.data_dir / "kraft" / "meta.properties").exists():
            progress("kafka: formatting storage (first start)")
            fmt = ["kafka.tools.StorageTool", "format", "--standalone", "-t", _cluster_id()]
            run_logged([exe, *classpath, *fmt, "-c", str(self.config)], self.log, "kafka format")
        progress(f"kafka: starting Kafka {KAFKA_VERSION} on {self.endpoint}")
        jvm = [exe, "-Xmx512m", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]
        # log4j2 would stop logging in its own shutdown hook, hiding how the broker shut down.
        jvm += ["-Dlog4j2.shutdownHookEnabled=false", f"-Dkafka.logs.dir={self.log.parent}"]
        jvm += classpath
        argv = [*jvm, "kafka.Kafka", str(self.config)]
        spawn(argv, log=self.log, pid_file=self.pid_file, cwd=self.data_dir)

    def _controller_port(self) -> int:
        """The CONTROLLER listener port: kept across restarts (it is in the formatted voter set)."""
        saved = self.data_dir / "controller.port"
        if saved.exists():
            port = int(saved.read_text())
            if port_free(self.host, port):
                return port
        port = free_port(self.host)
        saved.write_text(f"{port}\n")
        return port
