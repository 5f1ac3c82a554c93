"""Traces via Jaeger (Apache-2.0), all in one process, spans in memory; built once from Go.

OTLP/HTTP comes in on `port` (4318); the UI and query API (`GET /api/traces/<id>`) answer on
`query_port` (16686). Its other listeners (query gRPC, health) take free ports at each start, so
two stacks on one machine never collide.

Jaeger's Go module carries no UI (only a placeholder page), so the UI built from jaeger-ui's
sources of the same version is committed under third_party/jaeger-ui (see its README), unpacked
once into the cache beside the binary, and served through `jaeger_query.ui.assets_path`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

from ._process import (
    LocalStackError,
    Progress,
    Server,
    cache_dir,
    file_lock,
    free_port,
    require_tool,
    rotate_log,
    run_logged,
    spawn,
)

JAEGER_VERSION = "v1.76.0"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
GO_HINT = (
    "Go 1.21+ is needed once to build Jaeger, the local trace backend (about 5 minutes; the "
    "binary is cached): install it from https://go.dev/dl/ and put `go` on PATH"
)
MAX_TRACES = 20000  # in memory: enough for a day of local jobs, bounded
UI_TARBALL = f"jaeger-ui-{JAEGER_VERSION}.tar.xz"
# Checked before unpacking: a rebuilt tarball must come with its new hash (third_party/jaeger-ui).
UI_SHA256 = "b8ebbc5699f7820d91cf2a922e1ea7243542cae63aff533ec793095455b1191b"

CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    traces:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: {max_traces}
  jaeger_query:
    enable_tracing: false  # Jaeger would trace itself to localhost:4317
    storage:
      traces: memory_store
    http:
      endpoint: "{host}:{query_port}"
    grpc:
      endpoint: "{host}:{query_grpc_port}"
    ui:
      assets_path: {ui_assets}
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "{host}:{health_port}"
receivers:
  otlp:
    protocols:
      http:
        endpoint: "{host}:{port}"
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
"""


def home() -> Path:
    """This Jaeger version's folder in the cache: its binary and its UI."""
    return cache_dir() / f"jaeger-{JAEGER_VERSION}"


def binary() -> Path:
    """Cached Jaeger executable."""
    return home() / "bin" / "jaeger"


def ui_tarball() -> Path:
    """The committed, built Jaeger UI in third_party/jaeger-ui of the lorag checkout."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "third_party" / "jaeger-ui" / UI_TARBALL
        if candidate.is_file():
            return candidate
    raise LocalStackError(
        f"third_party/jaeger-ui/{UI_TARBALL} not found above lorag_local's sources; "
        "lorag_local must run from a lorag repository checkout"
    )


def ui_assets() -> Path:
    """Cached Jaeger UI (index.html and static/), one folder per tarball hash."""
    return home() / f"ui-{UI_SHA256[:16]}"


def install_ui(progress: Progress) -> Path:
    """Unpack the committed UI into the cache once, after checking the tarball's sha256."""
    assets = ui_assets()
    if (assets / "index.html").is_file():
        return assets
    with file_lock(assets.parent / ".ui.lock"):
        if (assets / "index.html").is_file():  # another stack unpacked it while we waited
            return assets
        tarball = ui_tarball()
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        if digest != UI_SHA256:
            raise LocalStackError(
                f"jaeger: {tarball} has sha256 {digest}, expected {UI_SHA256}; rebuild it with "
                "scripts/build-jaeger-ui.sh and update UI_SHA256 in lorag_local/jaeger.py"
            )
        progress(f"jaeger: unpacking the Jaeger UI into {assets}")
        staging = assets.with_name(assets.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(tarball, "r:xz") as archive:
            archive.extractall(staging, filter="data")
        staging.rename(assets)
    return assets


class Jaeger(Server):
    """Jaeger all-in-one: OTLP/HTTP on host:port, query API and UI on host:query_port."""

    name = "jaeger"
    env_hint = "LORAG_OTEL_ENDPOINT"
    start_timeout = 60.0

    def __init__(self, state_dir: Path, host: str, port: int, query_port: int) -> None:
        super().__init__(state_dir, host, port)
        self.query_port = query_port

    @property
    def otlp_url(self) -> str:
        """The OTLP/HTTP endpoint services export to (LORAG_OTEL_ENDPOINT)."""
        return f"http://{self.host}:{self.port}"

    @property
    def query_url(self) -> str:
        """The UI and query API (LORAG_OTEL_TRACE_UI_URL)."""
        return f"http://{self.host}:{self.query_port}"

    def ready(self, timeout: float = 2.0) -> bool:
        """True when the query API lists services and the OTLP port takes a (empty) post."""
        try:
            with urllib.request.urlopen(f"{self.query_url}/api/services", timeout=timeout) as rsp:
                if rsp.status != 200 or "data" not in json.loads(rsp.read()):
                    return False
            post = urllib.request.Request(
                f"{self.otlp_url}/v1/traces", data=b"{}", method="POST",
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(post, timeout=timeout) as rsp:
                return bool(rsp.status == 200)
        except (OSError, ValueError):
            return False

    def install(self, progress: Progress) -> None:
        """Build Jaeger into the cache from the Go module proxy and unpack its UI (once)."""
        install_ui(progress)
        exe = binary()
        if exe.exists():
            return
        home = exe.parent.parent
        with file_lock(home / ".lock"):
            if exe.exists():  # another stack built it while we waited
                return
            go = require_tool("go", GO_HINT)
            progress(
                f"jaeger: building Jaeger {JAEGER_VERSION} from the Go module proxy into {exe}"
            )
            module = home / "module"
            shutil.rmtree(module, ignore_errors=True)
            module.mkdir(parents=True)
            log, env = home / "install.log", {**os.environ, "GOFLAGS": "-mod=mod"}
            steps = (
                ([go, "mod", "init", "lorag-jaeger"], "creating the tool module"),
                ([go, "get", "-tool", f"{JAEGER_PACKAGE}@{JAEGER_VERSION}"], "fetching Jaeger"),
                ([go, "build", "-o", str(home / "bin.tmp" / "jaeger"), JAEGER_PACKAGE],
                 "building Jaeger"),
            )  # fmt: skip
            for argv, what in steps:
                run_logged(argv, log, what, env=env, cwd=module)
            shutil.rmtree(exe.parent, ignore_errors=True)
            (home / "bin.tmp").rename(exe.parent)

    def start(self, progress: Progress) -> None:
        """Write the config (free ports for the extra listeners) and spawn Jaeger."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "jaeger.yaml"
        config.write_text(
            CONFIG.format(
                host=self.host, port=self.port, query_port=self.query_port,
                query_grpc_port=free_port(self.host), health_port=free_port(self.host),
                max_traces=MAX_TRACES, ui_assets=json.dumps(str(ui_assets())),
            )
        )  # fmt: skip
        rotate_log(self.log)
        progress(
            f"jaeger: starting Jaeger {JAEGER_VERSION}: OTLP {self.otlp_url}, UI {self.query_url}"
        )
        spawn([str(binary()), "--config", str(config)], log=self.log, pid_file=self.pid_file,
              cwd=self.data_dir)  # fmt: skip

    def status(self) -> dict[str, object]:
        """The server's state, with where the UI is."""
        return super().status() | {"ui": self.query_url, "otlp": self.otlp_url}
