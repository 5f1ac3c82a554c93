"""What this machine can run: CPU cores, memory, and GPU memory when there is a GPU."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Resources:
    cpu_cores: int
    memory_bytes: int  # available now, not installed: that is what a job can get
    gpu_name: str | None = None
    gpu_memory_bytes: int = 0

    @property
    def has_gpu(self) -> bool:
        return self.gpu_memory_bytes > 0

    def as_dict(self) -> dict[str, object]:
        return {
            "cpu_cores": self.cpu_cores,
            "memory_gb": round(self.memory_bytes / 2**30, 1),
            "gpu": self.gpu_name,
            "gpu_memory_gb": round(self.gpu_memory_bytes / 2**30, 1),
        }


def detect() -> Resources:
    """Read the machine: /proc/meminfo for memory (now), torch (if installed) for a CUDA GPU."""
    gpu_name, gpu_memory = _gpu()
    return Resources(os.cpu_count() or 1, _available_memory(), gpu_name, gpu_memory)


@functools.cache
def _gpu() -> tuple[str | None, int]:
    """Asked once per process: importing torch takes seconds and the GPU does not change."""
    try:
        import torch
    except ImportError:
        return None, 0
    if not torch.cuda.is_available():
        return None, 0
    props = torch.cuda.get_device_properties(0)
    return props.name, int(props.total_memory)


def _available_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
