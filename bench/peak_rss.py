"""A process's own peak RSS, which `ru_maxrss` does not give.

`getrusage(...).ru_maxrss` is kept across `execve`, so a child started from a large bench process
reports its parent's peak, and RUSAGE_CHILDREN is a maximum over every child ever waited for.
Linux's VmHWM (/proc/<pid>/status) is the high-water mark of the process's own memory, and
writing 5 to /proc/self/clear_refs resets it, so a phase can be measured on its own.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path


def peak_bytes(pid: int | str = "self") -> int:
    """VmHWM of `pid` in bytes; ru_maxrss of this process where /proc is missing (not Linux)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        if pid != "self":
            raise
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    if not found:
        raise RuntimeError(f"no VmHWM in /proc/{pid}/status")
    return int(found.group(1)) * 1024


def reset_peak() -> bool:
    """Start this process's peak over from its current RSS; False where the kernel cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
