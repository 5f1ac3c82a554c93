"""S3 via versitygw (Apache-2.0 S3 gateway over a local folder), built once with `go install`."""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

from ._process import (
    Progress,
    Server,
    cache_dir,
    file_lock,
    require_tool,
    rotate_log,
    run_logged,
    spawn,
)

VERSITYGW_VERSION = "v1.7.0"
VERSITYGW_PACKAGE = "github.com/versity/versitygw/cmd/versitygw"
GO_HINT = (
    "Go 1.21+ is needed once to build versitygw, the local S3 server (it fetches the newer "
    "toolchain it needs from the Go module proxy): install it from https://go.dev/dl/ "
    "and put `go` on PATH"
)
ACCESS_KEY = "lorag-local"
SECRET_KEY = "lorag-local-secret"


def binary() -> Path:
    """Cached versitygw executable."""
    return cache_dir() / f"versitygw-{VERSITYGW_VERSION}" / "bin" / "versitygw"


def xattrs_supported(folder: Path) -> bool:
    """True when folder's filesystem accepts user.* extended attributes (versitygw's metadata)."""
    probe = folder / ".lorag-xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.lorag_probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
    return True


class S3(Server):
    """versitygw serving <data_dir>/buckets (one folder per bucket) on host:port."""

    name = "s3"
    env_hint = "LORAG_S3_ENDPOINT"
    start_timeout = 30.0

    def __init__(
        self,
        state_dir: Path,
        host: str,
        port: int,
        *,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
    ) -> None:
        super().__init__(state_dir, host, port)
        self.access_key, self.secret_key = access_key, secret_key

    def ready(self, timeout: float = 2.0) -> bool:
        """True when /health answers and a signed list_buckets() succeeds with our keys."""
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=timeout) as rsp:
                if rsp.status != 200:
                    return False
        except OSError:
            return False
        import urllib3  # lazy: `import lorag_local` stays fast
        from minio import Minio

        # No retries: the minio SDK would otherwise back off for seconds on a dead server.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=urllib3.Retry(total=0)
        )
        try:
            Minio(
                self.endpoint,
                access_key=self.access_key,
                secret_key=self.secret_key,
                secure=False,
                region="us-east-1",
                http_client=http,
            ).list_buckets()
        except Exception:
            return False
        finally:
            http.clear()
        return True

    def install(self, progress: Progress) -> None:
        """Build versitygw into the cache with `go install` (once)."""
        exe = binary()
        if exe.exists():
            return
        with file_lock(exe.parent.parent / ".lock"):
            if exe.exists():  # another stack built it while we waited
                return
            go = require_tool("go", GO_HINT)
            progress(f"s3: building versitygw {VERSITYGW_VERSION} with go install into {exe}")
            tmp = exe.parent.with_name("bin.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            run_logged(
                [go, "install", f"{VERSITYGW_PACKAGE}@{VERSITYGW_VERSION}"],
                exe.parent.parent / "install.log",
                "building versitygw with go install",
                env={**os.environ, "GOBIN": str(tmp)},
            )
            shutil.rmtree(exe.parent, ignore_errors=True)
            tmp.rename(exe.parent)

    def start(self, progress: Progress) -> None:
        """Spawn versitygw over the buckets folder (metadata in a sidecar without xattrs)."""
        buckets = self.data_dir / "buckets"
        buckets.mkdir(parents=True, exist_ok=True)
        backend = ["posix"]
        sidecar = self.data_dir / "meta"
        # Once metadata lives in the sidecar it must stay there, whatever the probe says now.
        if sidecar.is_dir() or not xattrs_supported(buckets):
            sidecar.mkdir(exist_ok=True)
            backend += ["--sidecar", str(sidecar)]
            progress(f"s3: no user xattrs on {buckets}; keeping object metadata in {sidecar}")
        rotate_log(self.log)
        progress(f"s3: starting versitygw {VERSITYGW_VERSION} on {self.endpoint}")
        # Keys go through the environment, not argv, so `ps` does not show the secret. The
        # caller's VGW_* and ROOT_*_KEY* variables are dropped: versitygw reads
        # ROOT_ACCESS_KEY_ID before ROOT_ACCESS_KEY, and every run should behave the same.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VGW_", "ROOT_ACCESS_KEY", "ROOT_SECRET"))
        }
        env |= {"ROOT_ACCESS_KEY": self.access_key, "ROOT_SECRET_KEY": self.secret_key}
        spawn(
            [
                str(binary()),
                "--port",
                self.endpoint,
                "--health",
                "/health",
                "--quiet",
                *backend,
                str(buckets),
            ],
            log=self.log,
            pid_file=self.pid_file,
            env=env,
            cwd=self.data_dir,
        )
