"""The lora-service's admin API through `LoraClient`, against a real lora-service process:
an owner's adapters (list, show, promote), the name check, the machine's resources; another
owner's adapter is 404 like a missing one, a call without the service token 401, bad input 422.

Adapters are put in the registry directly (as a finished job would): training is not the point.
"""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_api import Invalid, NotFound, Unauthorized
from lorag_api.lora import LoraClient, Promote
from lorag_lora.adapters import registry
from tests.integration.test_lora_helpers import lora_env
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
ALICE, BOB = "alice", "bob"


@pytest.fixture(scope="module")
def lora(settings, logs_dir, tmp_path_factory):
    """A lora-service without its inference API: the admin API needs no model."""
    work = tmp_path_factory.mktemp("lora-admin")
    env = lora_env(work / "models", work / "work", 0, LORAG_LORA_SERVE="false")
    service = start_service("lorag_lora", logs_dir, **env)
    yield service
    service.stop()


@pytest.fixture(scope="module")
async def names(settings) -> dict[str, str]:
    """Alice's adapter with two versions, Bob's with one, as finished jobs leave them."""
    tag = uuid.uuid4().hex[:6]
    made = {"alice": f"notes-{tag}", "bob": f"bob-notes-{tag}"}

    async def make(name: str, owner: str) -> None:
        async with await psycopg.AsyncConnection.connect(
            settings.postgres_dsn, autocommit=True, row_factory=dict_row
        ) as conn:
            version = await registry.reserve_version(conn, name, f"job-{uuid.uuid4().hex}", owner)
            await registry.mark_ready(
                conn, name, version, uri=f"s3://lorag-adapters/{name}/v{version}/",
                sha256="0" * 64, size_bytes=1024, base_model="tiny-llama", metrics={"loss": 0.5},
            )  # fmt: skip

    for name, owner in ((made["alice"], ALICE), (made["alice"], ALICE), (made["bob"], BOB)):
        await make(name, owner)
    return made


@pytest.fixture
async def client(settings, lora):
    async with LoraClient(f"http://127.0.0.1:{lora.port}", settings.service_secret) as found:
        yield found


async def test_an_owner_lists_only_its_own_versions(client, names):
    mine = await client.list_adapters(ALICE)
    assert [(v.name, v.version) for v in mine if v.name == names["alice"]] == [
        (names["alice"], 2),
        (names["alice"], 1),
    ]
    assert all(v.owner == ALICE for v in mine) and names["bob"] not in {v.name for v in mine}
    only = await client.list_adapters(ALICE, name=names["alice"])
    assert {v.name for v in only} == {names["alice"]} and only[0].aliases == ["latest"]
    assert only[0].sha256 == "0" * 64 and only[0].metrics == {"loss": 0.5}
    assert await client.list_adapters(BOB, name=names["alice"]) == []


async def test_show_gives_versions_and_alias_history(client, names):
    shown = await client.show_adapter(ALICE, names["alice"])
    assert [v.version for v in shown.versions] == [2, 1]
    assert [(h.alias, h.version, h.previous_version) for h in shown.history] == [
        ("latest", 1, None),
        ("latest", 2, 1),
    ]


async def test_another_owners_adapter_is_not_found_like_a_missing_one(client, names):
    with pytest.raises(NotFound) as theirs:
        await client.show_adapter(BOB, names["alice"])
    with pytest.raises(NotFound) as missing:
        await client.show_adapter(BOB, "no-such-adapter")
    for refused in (theirs.value, missing.value):
        assert refused.code == "ADAPTER_NOT_FOUND" and refused.hint
        assert refused.message.startswith("no adapter ")
    with pytest.raises(NotFound):
        await client.promote(BOB, names["alice"], Promote(version=1, alias="production"))


async def test_promotion_moves_an_alias_to_an_owned_version_only(client, names):
    name = names["alice"]
    first = await client.promote(ALICE, name, Promote(version=1, alias="production"))
    assert (first.version, first.previous_version) == (1, None)
    moved = await client.promote(ALICE, name, Promote(version=2, alias="production"))
    assert (moved.version, moved.previous_version) == (2, 1)
    with pytest.raises(NotFound) as refused:
        await client.promote(ALICE, name, Promote(version=9, alias="production"))
    assert refused.value.code == "ADAPTER_NOT_FOUND" and f"{name}:9" in refused.value.message
    shown = await client.show_adapter(ALICE, name)
    assert "production" in shown.versions[0].aliases
    assert [h.promoted_by for h in shown.history if h.alias == "production"] == [ALICE, ALICE]


async def test_a_name_is_its_first_owners(client, names):
    assert (await client.check_name(ALICE, names["alice"])).available is True
    taken = await client.check_name(BOB, names["alice"])
    assert taken.available is False and "another owner" in (taken.message or "")
    assert (await client.check_name(BOB, f"fresh-{uuid.uuid4().hex[:6]}")).available is True


async def test_resources_describe_the_training_machine(client):
    machine = await client.resources()
    assert machine.cpu_cores >= 1 and machine.memory_bytes > 0
    assert (machine.gpu_name is None) == (machine.gpu_memory_bytes == 0)


async def test_without_the_service_token_the_api_is_401(settings, lora, names):
    url = f"http://127.0.0.1:{lora.port}"
    async with LoraClient(url, "not-the-token") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.list_adapters(ALICE)
    bare = httpx.get(f"{url}/v1/adapters", headers={"X-Lorag-Owner": ALICE})
    assert bare.status_code == 401 and "LORAG_SERVICE_TOKEN" in bare.json()["detail"]
    assert httpx.get(f"{url}/v1/resources").status_code == 401
    assert httpx.get(f"{url}/health").status_code == 200  # health stays open


async def test_malformed_calls_are_422(settings, client, lora, names):
    url = f"http://127.0.0.1:{lora.port}/v1"
    headers = {"Authorization": f"Bearer {settings.service_secret}", "X-Lorag-Owner": ALICE}
    for alias in ("12", "bad alias", "-x"):
        body = {"version": 1, "alias": alias}
        refused = httpx.post(f"{url}/adapters/{names['alice']}/promote", json=body, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["body", "alias"]
    extra = {"version": 1, "alias": "ok", "by": "me"}
    assert httpx.post(f"{url}/adapters/x/promote", json=extra, headers=headers).status_code == 422
    with pytest.raises(Invalid):
        await client.check_name(ALICE, "bad name")
    with pytest.raises(Invalid):
        await client.list_adapters(ALICE, name="bad name")
    no_owner = httpx.get(f"{url}/adapters", headers={"Authorization": headers["Authorization"]})
    assert no_owner.status_code == 422 and "x-lorag-owner" in no_owner.text.lower()
