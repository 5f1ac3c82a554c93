"""A real Chroma server for tests whose services share knowledge bases across processes."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lorag_local.stack import free_port


@contextmanager
def chroma_server(data_dir: Path, log_dir: Path, timeout: float = 60) -> Iterator[str]:
    """Run `chroma run` on a free port; yield its URL (LORAG_CHROMA_URL) until the block ends."""
    port = free_port()
    log_path = log_dir / f"chroma-{port}.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(data_dir),
         "--port", str(port)],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=data_dir.parent,
    )  # fmt: skip
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise TimeoutError(
                        f"chroma not up at {url}:\n{log_path.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
