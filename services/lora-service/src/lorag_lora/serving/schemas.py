"""The requests and answers of the OpenAI API, as far as lorag serves them.

Fields lorag does not act on (frequency_penalty, user, logit_bias, …) are accepted and ignored,
as OpenAI-compatible servers do, so clients built for OpenAI work unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

MaxTokens = Field(default=None, ge=1, le=32768)


class StreamOptions(BaseModel):
    include_usage: bool = Field(default=False, description="End the stream with a usage chunk.")


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = Field(
        default=None, description="Text, or content parts of type text."
    )
    name: str | None = None


class Sampled(BaseModel):
    """What chat and text completions share."""

    model: str = Field(description="base, NAME, NAME:VERSION, NAME@ALIAS or a fine-tuned model.")
    max_tokens: int | None = MaxTokens
    temperature: float = Field(default=0.0, ge=0, le=2, description="0: greedy, deterministic.")
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = Field(default=None, description="Same seed, same sampled tokens.")
    stop: str | list[str] | None = Field(default=None, description="Up to 4 stop sequences.")
    n: int = Field(default=1, ge=1, le=1, description="Only 1 choice per prompt.")
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stops(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(s for s in stops if s)


class ChatRequest(Sampled):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = MaxTokens


class CompletionRequest(Sampled):
    prompt: str | list[str] = Field(description="A prompt, or a list of prompts (one choice each).")
    echo: bool = Field(default=False, description="Not supported: must be false.")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class TextChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = Field(description="The owner; 'lorag' for the base model.")
    kind: Literal["base", "adapter", "model"] = Field(description="What answers to this id.")
    parent: str | None = Field(default=None, description="The base model an adapter runs on.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
