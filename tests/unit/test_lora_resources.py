"""The lora-service reports what a job can get: the cgroup's limits bound the machine's figures."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lorag_lora import resources

GiB = 2**30


@pytest.fixture(autouse=True)
def machine_with_8_gib_free(monkeypatch):
    monkeypatch.setattr(
        resources.psutil, "virtual_memory", lambda: SimpleNamespace(available=8 * GiB)
    )


def cgroup(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text + "\n")
    return folder


def test_a_cgroup_v2_limit_below_the_machines_memory_is_the_answer(tmp_path):
    found = cgroup(tmp_path, {"memory.max": str(GiB), "memory.current": str(GiB // 4)})
    assert resources.available_memory(found) == 3 * GiB // 4


def test_a_cgroup_v1_limit_counts_and_its_no_limit_number_does_not(tmp_path):
    v1 = {"memory/memory.limit_in_bytes": str(2 * GiB), "memory/memory.usage_in_bytes": "0"}
    assert resources.available_memory(cgroup(tmp_path / "a", v1)) == 2 * GiB
    unlimited = {"memory/memory.limit_in_bytes": "9223372036854771712"}
    assert resources.available_memory(cgroup(tmp_path / "b", unlimited)) == 8 * GiB


def test_a_limit_above_the_machines_free_memory_leaves_the_machines(tmp_path):
    assert resources.available_memory(cgroup(tmp_path, {"memory.max": str(64 * GiB)})) == 8 * GiB


def test_max_means_no_limit_and_no_cgroup_means_the_machine(tmp_path):
    assert resources.available_memory(cgroup(tmp_path / "a", {"memory.max": "max"})) == 8 * GiB
    assert resources.available_memory(tmp_path / "none") == 8 * GiB


def test_a_cpu_quota_bounds_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(resources.os, "sched_getaffinity", lambda _: set(range(16)))
    assert resources.cpu_cores(cgroup(tmp_path / "a", {"cpu.max": "150000 100000"})) == 2
    assert resources.cpu_cores(cgroup(tmp_path / "b", {"cpu.max": "max 100000"})) == 16
    v1 = {"cpu/cpu.cfs_quota_us": "400000", "cpu/cpu.cfs_period_us": "100000"}
    assert resources.cpu_cores(cgroup(tmp_path / "c", v1)) == 4


def test_a_service_set_to_the_cpu_reports_no_gpu(tmp_path):
    found = resources.detect("cpu", tmp_path)
    assert found.gpu_name is None and found.gpu_memory_bytes == 0
    assert found.memory_bytes == 8 * GiB and found.cpu_cores >= 1
