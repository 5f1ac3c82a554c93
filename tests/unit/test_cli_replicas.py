"""`lorag serve --replicas`: how many instances, their ids and their ports."""

import os

import pytest

from lorag_cli.replicas import (
    DEFAULT_PORTS,
    EXTRA_PORTS,
    Instance,
    ReplicaError,
    instances,
    replica_counts,
)
from lorag_cli.services import SERVICES
from lorag_core.settings import Settings, WorkerSettings

ALL = list(SERVICES)


def test_all_with_replicas_starts_that_many_of_the_named_services():
    counts = replica_counts("all", ["rag-service=3", "lora-service=2"], ALL)
    assert counts == {**dict.fromkeys(ALL, 1), "rag-service": 3, "lora-service": 2}
    ids = [i.instance_id for i in instances(counts)]
    assert ids[:3] == ["rag-service-1", "rag-service-2", "rag-service-3"]
    assert len(ids) == len(set(ids)) == len(ALL) + 3


def test_one_service_takes_a_plain_count():
    assert replica_counts("rag-service", ["2"], ALL) == {"rag-service": 2}
    assert replica_counts("rag-service", [], ALL) == {"rag-service": 1}


@pytest.mark.parametrize(
    ("service", "spec", "message"),
    [
        ("all", "3", "say which service"),
        ("all", "chat=2", "'chat' is not started here"),
        ("rag-service", "lora-service=2", "'lora-service' is not started here"),
        ("rag-service", "0", "from 1 to 10"),
        ("rag-service", "many", "from 1 to 10"),
    ],
)
def test_bad_replica_counts_say_what_is_wrong(service, spec, message):
    with pytest.raises(ReplicaError, match=message):
        replica_counts(service, [spec], ALL)


def test_replica_k_moves_every_port_by_a_hundred_per_step():
    assert Instance("rag-service", 1).env({}) == {"LORAG_INSTANCE_ID": "rag-service-1"}
    assert Instance("rag-service", 3).env({}) == {
        "LORAG_INSTANCE_ID": "rag-service-3", "LORAG_HEALTH_PORT": "8301",
    }  # fmt: skip
    assert Instance("lora-service", 2).env({"LORAG_HEALTH_PORT": "9500"}) == {
        "LORAG_INSTANCE_ID": "lora-service-2", "LORAG_HEALTH_PORT": "9600",
        "LORAG_LORA_API_PORT": "8202",
    }  # fmt: skip


def test_no_two_instances_share_a_port_nor_take_the_local_servers():
    ports = []
    for instance in instances(dict.fromkeys(ALL, 10)):
        usual = {"LORAG_HEALTH_PORT": DEFAULT_PORTS[instance.service]}
        usual |= EXTRA_PORTS.get(instance.service, {})
        own = instance.env({})
        ports += [int(own.get(var, port)) for var, port in usual.items()]
    assert len(ports) == len(set(ports)) and not {5432, 9000, 9092} & set(ports)


def test_worker_settings_default_to_three_attempts_and_a_named_instance(monkeypatch):
    monkeypatch.delenv("LORAG_INSTANCE_ID", raising=False)
    monkeypatch.delenv("LORAG_WORKER_MAX_ATTEMPTS", raising=False)
    assert WorkerSettings().max_attempts == 3
    assert Settings().instance_id.endswith(f"-{os.getpid()}")
    monkeypatch.setenv("LORAG_INSTANCE_ID", "rag-service-2")
    monkeypatch.setenv("LORAG_WORKER_MAX_ATTEMPTS", "5")
    assert Settings().instance_id == "rag-service-2"
    assert Settings().worker.max_attempts == 5
