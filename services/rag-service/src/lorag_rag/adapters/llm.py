"""An OpenAI-compatible chat endpoint: a hosted API, or the local lora-service by default."""

from __future__ import annotations

from lorag_rag.config import LlmSettings


async def complete(
    settings: LlmSettings, messages: list[dict[str, str]], *, max_tokens: int | None = None,
    headers: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """The assistant's reply to `messages`; without max_tokens, the endpoint's own limit."""
    from openai import AsyncOpenAI, omit

    key = settings.api_key.get_secret_value() if settings.api_key else "local"
    client = AsyncOpenAI(
        base_url=settings.effective_base_url, api_key=key, timeout=settings.timeout_s,
        default_headers=headers,
    )  # fmt: skip
    async with client:
        response = await client.chat.completions.create(
            model=settings.model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_tokens if max_tokens is not None else omit,
        )
    return response.choices[0].message.content or ""
