"""The lora-service's two roles and its memory guard under a container's memory limit.

Kubernetes runs the same image twice: a trainer (LORAG_LORA_SERVE=false) and a server
(LORAG_LORA_TRAIN=false). The memory guard must see the cgroup's limit, not the node's memory.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lorag_lora import main, resources
from lorag_lora.adapters.models import ModelError, ModelManager
from lorag_lora.config import LoraSettings

GiB = 2**30


class FakeHost:
    """What `register` wires onto a ServiceHost, recorded."""

    def __init__(self) -> None:
        self.routes: list[object] = []
        self.started: list[object] = []

    def add_routes(self, router: object) -> None:
        self.routes.append(router)

    def after_start(self, hook: object) -> object:
        self.started.append(hook)
        return hook

    def on_stop(self, hook: object) -> object:
        return hook


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """register() with the worker, compensation and inference API recorded, not started."""
    seen: dict[str, Any] = {"api": False}
    monkeypatch.setattr(
        main, "register_worker", lambda host, owned, run, **kw: seen.update(worker=kw)
    )
    monkeypatch.setattr(main, "register_compensation", lambda host, undo: seen.update(undo=undo))
    monkeypatch.setattr(main, "_register_api", lambda *a: seen.update(api=True))
    monkeypatch.setattr(main.torch, "set_num_threads", lambda n: None)
    return seen


def settings(tmp_path: Path, **values: Any) -> LoraSettings:
    return LoraSettings(models_dir=tmp_path / "models", work_dir=tmp_path / "work", **values)


def test_by_default_one_process_trains_and_serves(tmp_path, wired):
    main.register(FakeHost(), settings(tmp_path))  # type: ignore[arg-type]
    assert wired["worker"] == {"concurrency": 1}
    assert wired["api"] is True


def test_a_serving_replica_accepts_jobs_but_runs_none(tmp_path, wired, monkeypatch):
    monkeypatch.setenv("LORAG_LORA_TRAIN", "false")
    host = FakeHost()
    main.register(host, settings(tmp_path))  # type: ignore[arg-type]
    # The intake stays (concurrency 0: no worker loop), so jobs reach the queue the trainers
    # scale on even while no trainer runs.
    assert wired["worker"] == {"concurrency": 0}
    assert wired["api"] is True
    assert host.routes, "the admin API is served by every replica"


def test_a_trainer_replica_serves_no_inference_api(tmp_path, wired, monkeypatch):
    monkeypatch.setenv("LORAG_LORA_SERVE", "false")
    main.register(FakeHost(), settings(tmp_path))  # type: ignore[arg-type]
    assert wired["worker"] == {"concurrency": 1}
    assert wired["api"] is False


# ------------------------------------------------------------------------------------------
# The memory guard reads the cgroup limit
# ------------------------------------------------------------------------------------------


@pytest.fixture
def node_with_16_gib_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        resources.psutil, "virtual_memory", lambda: SimpleNamespace(available=16 * GiB)
    )


def cpu_manager(tmp_path: Path, params: int) -> ModelManager:
    """A CPU model manager whose base model has `params` parameters (float32, 4 bytes each)."""
    manager = ModelManager(settings(tmp_path, device="cpu", memory_headroom=1.0))
    manager.parameters_of = lambda name: params  # type: ignore[method-assign]
    return manager


def fake_cgroup(folder: Path, limit: int, used: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "memory.max").write_text(f"{limit}\n")
    (folder / "memory.current").write_text(f"{used}\n")
    return folder


def test_a_model_that_fits_the_node_but_not_the_pods_limit_is_refused(
    tmp_path, monkeypatch, node_with_16_gib_free
):
    # 500 M parameters * 4 bytes * 1.5 (LoRA) = 2.8 GiB: under the node's 16 GiB free, over
    # the 2 GiB cgroup limit (of which 0.5 GiB is used).
    monkeypatch.setattr(resources, "CGROUP", fake_cgroup(tmp_path / "cg", 2 * GiB, GiB // 2))
    with pytest.raises(ModelError) as refused:
        cpu_manager(tmp_path, 500_000_000).check_fits("big", "lora")
    assert refused.value.code == "MODEL_TOO_LARGE"
    assert "only 1.5 GiB is free" in refused.value.message


def test_without_a_cgroup_limit_the_nodes_memory_counts(
    tmp_path, monkeypatch, node_with_16_gib_free
):
    monkeypatch.setattr(resources, "CGROUP", tmp_path / "no-cgroup")
    assert cpu_manager(tmp_path, 500_000_000).check_fits("big", "lora") == 500_000_000


def test_a_roomy_cgroup_leaves_the_nodes_memory_as_the_bound(
    tmp_path, monkeypatch, node_with_16_gib_free
):
    monkeypatch.setattr(resources, "CGROUP", fake_cgroup(tmp_path / "cg", 64 * GiB, 0))
    with pytest.raises(ModelError, match=r"only 16\.0 GiB is free"):
        cpu_manager(tmp_path, 3_000_000_000).check_fits("huge", "lora")
