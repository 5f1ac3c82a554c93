"""What this machine can give a training job: cores, memory available now, and the GPU.

In a container the machine's figures overstate what the process may use: the cgroup's CPU quota
and memory limit bound it, so the smaller of each is reported.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import psutil
import torch

from lorag_api.lora import Resources

CGROUP = Path("/sys/fs/cgroup")
NO_LIMIT = 1 << 60  # cgroup v1 reports "no limit" as a number near 2**63


def detect(device: str = "auto", cgroup: Path = CGROUP) -> Resources:
    """The machine as a job here sees it; no GPU when the service is set to train on the CPU."""
    gpu_name, gpu_memory = _gpu() if device in ("auto", "cuda") else (None, 0)
    return Resources(
        cpu_cores=cpu_cores(cgroup),
        memory_bytes=available_memory(cgroup),
        gpu_name=gpu_name,
        gpu_memory_bytes=gpu_memory,
    )


def cpu_cores(cgroup: Path = CGROUP) -> int:
    """Cores this process may run on, bounded by the cgroup's CPU quota when there is one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cpu_quota(cgroup)
    return max(1, min(cores or 1, math.ceil(quota) if quota else NO_LIMIT))


def available_memory(cgroup: Path = CGROUP) -> int:
    """Memory free now: the machine's available memory, or the cgroup's room if that is less."""
    free = int(psutil.virtual_memory().available)
    room = _cgroup_room(cgroup)
    return min(free, room) if room is not None else free


def _cgroup_room(cgroup: Path) -> int | None:
    """The cgroup's memory limit less what it uses (v2, else v1); None without a limit."""
    for limit_file, usage_file in (
        (cgroup / "memory.max", cgroup / "memory.current"),
        (cgroup / "memory" / "memory.limit_in_bytes", cgroup / "memory" / "memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_file)
        if limit is None or limit >= NO_LIMIT:
            continue
        used = _read_int(usage_file) or 0
        return max(limit - used, 0)
    return None


def _cpu_quota(cgroup: Path) -> float | None:
    """CPUs the cgroup may use (v2 cpu.max, else v1 cfs quota / period); None when unbounded."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    quota_us, period_us = (
        _read_int(cgroup / "cpu" / "cpu.cfs_quota_us"),
        _read_int(cgroup / "cpu" / "cpu.cfs_period_us"),
    )
    if quota_us is None or period_us is None or quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (v2) means no limit


@functools.cache
def _gpu() -> tuple[str | None, int]:
    """Asked once per process: the GPU does not change."""
    if not torch.cuda.is_available():
        return None, 0
    props = torch.cuda.get_device_properties(0)
    return props.name, int(props.total_memory)
