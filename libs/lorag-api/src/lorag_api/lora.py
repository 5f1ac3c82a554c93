"""The lora-service's admin API (adapters, aliases, name ownership, resources) and a small
client of its OpenAI-compatible chat API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lorag_api.base import ServiceClient, segment

ALIAS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class AdapterVersion(BaseModel):
    """One version of an adapter: where it is stored, what made it, and its aliases."""

    model_config = ConfigDict(extra="ignore")

    name: str
    version: int
    aliases: list[str] = Field(default_factory=list)
    owner: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    base_model: str | None = None
    base_model_revision: str | None = None
    uri: str | None = None
    job_id: str | None = None
    metrics: dict[str, Any] | None = None
    lora_config: dict[str, Any] | None = None
    created_at: datetime | None = None


class AliasChange(BaseModel):
    """One move of an alias: to which version, from which, by whom, when."""

    alias: str
    version: int
    previous_version: int | None = None
    promoted_by: str | None = None
    promoted_at: datetime | None = None


class Adapter(BaseModel):
    """An adapter name's versions (the owner's) and the history of their aliases."""

    name: str
    versions: list[AdapterVersion]
    history: list[AliasChange]


class Promote(BaseModel):
    """Point an alias (e.g. production) at one version."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="Version the alias points at.")
    alias: str = Field(
        pattern=ALIAS_PATTERN,
        description="A name (letters, digits, '.', '_', '-'; not only digits), e.g. production.",
        examples=["production"],
    )

    @field_validator("alias")
    @classmethod
    def _not_a_version(cls, alias: str) -> str:
        if alias.isdigit():  # NAME:3 is a version; an alias of digits would read as one
            raise ValueError("an alias is a name, not a number: use NAME:VERSION for versions")
        return alias


class Promoted(BaseModel):
    """Where the alias points now, and where it pointed before (None: it is new)."""

    name: str
    alias: str
    version: int
    previous_version: int | None = None


class NameCheck(BaseModel):
    """Whether an owner may add versions to an adapter name (a name is its first owner's)."""

    name: str
    available: bool
    message: str | None = None


class Resources(BaseModel):
    """What the machine that trains can give a job: cores, memory now, GPU."""

    cpu_cores: int = Field(ge=1, description="Cores a job may use (the cgroup quota counts).")
    memory_bytes: int = Field(
        ge=0, description="Memory available now (the smaller of the machine's and the cgroup's)."
    )
    gpu_name: str | None = Field(None, description="The CUDA GPU a job trains on, if any.")
    gpu_memory_bytes: int = Field(0, ge=0, description="That GPU's memory (0: no GPU).")


class LoraClient(ServiceClient):
    """Adapters are the lora-service's: it alone keeps the registry and loads base models."""

    async def list_adapters(self, owner: str, name: str | None = None) -> list[AdapterVersion]:
        params = {"name": name}
        return await self.call(
            "GET", "/v1/adapters", list[AdapterVersion], owner=owner, params=params
        )

    async def show_adapter(self, owner: str, name: str) -> Adapter:
        return await self.call("GET", f"/v1/adapters/{segment(name)}", Adapter, owner=owner)

    async def promote(self, owner: str, name: str, promote: Promote) -> Promoted:
        path = f"/v1/adapters/{segment(name)}/promote"
        return await self.call("POST", path, Promoted, owner=owner, body=promote)

    async def check_name(self, owner: str, name: str) -> NameCheck:
        path = f"/v1/adapter-names/{segment(name)}"
        return await self.call("GET", path, NameCheck, owner=owner)

    async def resources(self) -> Resources:
        return await self.call("GET", "/v1/resources", Resources)


class ChatClient(ServiceClient):
    """An OpenAI-compatible chat endpoint (the lora-service's `/v1`, or an external one)."""

    async def complete(
        self, model: str, messages: list[dict[str, str]], *, max_tokens: int = 128,
        temperature: float = 0.0, owner: str | None = None,
    ) -> str:  # fmt: skip
        """The assistant's reply text."""
        body = _Chat(model=model, messages=messages, max_tokens=max_tokens, temperature=temperature)
        reply = await self.call("POST", "/chat/completions", dict[str, Any], owner=owner, body=body)
        return str(reply["choices"][0]["message"]["content"] or "")


class _Chat(BaseModel):
    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
