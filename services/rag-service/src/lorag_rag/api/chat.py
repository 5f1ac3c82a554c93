"""Which chat endpoint answers a request, and what its failures mean to the caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import SecretStr

from lorag_api.base import ServiceUrls
from lorag_api.rag import AnswerRequest
from lorag_core.service.api import ApiError, NotFound, Unavailable
from lorag_rag.config import LlmSettings


class LlmRefused(ApiError):
    status = 422


class LlmFailed(ApiError):
    status = 502


def chat_settings(request: AnswerRequest, external: LlmSettings, service_token: str) -> LlmSettings:
    """external: the service's configured LLM; local: the lora-service's OpenAI API, called
    with the service token (base, or the adapter the caller named)."""
    if request.llm == "external":
        return external
    return LlmSettings(
        base_url=ServiceUrls().lora_openai_url, api_key=SecretStr(service_token),
        model=request.model or "base", timeout_s=external.timeout_s,
    )  # fmt: skip


@contextmanager
def llm_errors(settings: LlmSettings) -> Iterator[None]:
    """The chat endpoint's failures as API errors that say which endpoint and what to do."""
    import openai

    where = settings.effective_base_url or "the hosted OpenAI API"
    try:
        yield
    except openai.APIConnectionError as exc:  # includes timeouts
        raise Unavailable(
            f"the chat model at {where} did not answer: {exc}", code="LLM_UNAVAILABLE",
            hint="is the LLM running, and LORAG_LLM_BASE_URL / LORAG_LORA_OPENAI_URL right?",
        ) from exc  # fmt: skip
    except openai.NotFoundError as exc:
        raise NotFound(
            f"no model {settings.model!r} at {where}: {exc.message}", code="MODEL_NOT_FOUND",
            hint="use base, or one of your adapters (`lorag adapters ls`)",
        ) from exc  # fmt: skip
    except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
        raise LlmRefused(f"the chat model refused the request: {exc.message}",
                         code="LLM_REFUSED") from exc  # fmt: skip
    except openai.APIStatusError as exc:
        raise LlmFailed(
            f"the chat model at {where} failed ({exc.status_code}): {exc.message}",
            code="LLM_FAILED",
        ) from exc
