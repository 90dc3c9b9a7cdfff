"""The answer path's LLMs as llama-index `LLM`s: the project's llama.cpp and hosted engines wrapped as a
`CustomLLM`, or any llama-index LLM a user plugs in through `llm_factory`."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage, ChatResponse, ChatResponseGen, CompletionResponse, CompletionResponseGen, LLMMetadata,
)
from llama_index.core.llms import LLM as IndexLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import Field

from chatbot.config import Settings
from chatbot.errors import ChatbotError, LLMUnavailable
from chatbot.llm import LLM, LocalLLM, Message, load_llm

log = logging.getLogger(__name__)


class ChatModel(CustomLLM):
    """A llama-index LLM over one of this project's engines (`LocalLLM`: a llama.cpp context that keeps its saved
    prompt-prefix state; `HostedLLM`: an OpenAI-compatible endpoint with retries). Greedy, chat-formatted."""

    engine: Any = Field(exclude=True, description="the engine: anything with stream(messages, max_tokens=…)")
    max_tokens: int = 100
    context_window: int = 4096

    @classmethod
    def class_name(cls) -> str:
        return "chatbot_chat_model"

    @property
    def name(self) -> str:
        return str(self.engine.name)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.max_tokens, is_chat_model=True,
                           model_name=self.name)

    @llm_chat_callback()
    def stream_chat(self, messages: Any, **kwargs: Any) -> ChatResponseGen:
        max_tokens = int(kwargs.get("max_tokens") or self.max_tokens)
        pieces = self.engine.stream(_as_dicts(messages), max_tokens=max_tokens)

        def gen() -> ChatResponseGen:
            text = ""
            for piece in pieces:
                text += piece
                yield ChatResponse(message=ChatMessage(role="assistant", content=text), delta=piece)

        return gen()

    @llm_chat_callback()
    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        max_tokens = int(kwargs.get("max_tokens") or self.max_tokens)
        text = "".join(self.engine.stream(_as_dicts(messages), max_tokens=max_tokens))
        return ChatResponse(message=ChatMessage(role="assistant", content=text))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        reply = self.chat([ChatMessage(role="user", content=prompt)], **kwargs)
        return CompletionResponse(text=reply.message.content or "")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            for r in self.stream_chat([ChatMessage(role="user", content=prompt)], **kwargs):
                yield CompletionResponse(text=r.message.content or "", delta=r.delta)

        return gen()

    def warm(self, messages: list[Message], state_dir: Path | None) -> str:
        """Evaluate (or load the saved state of) a fixed prompt prefix: "loaded", "saved", "evaluated" or
        "unavailable" (a hosted endpoint that does not answer yet must not keep the service from starting)."""
        if isinstance(self.engine, LocalLLM):
            return self.engine.warm(messages, state_dir)
        try:
            list(self.engine.stream(messages, max_tokens=1))
        except LLMUnavailable as exc:
            log.warning("warming a prompt failed: %s", exc)
            return "unavailable"
        return "evaluated"


def as_index_llm(llm: IndexLLM | LLM, settings: Settings | None = None) -> IndexLLM:
    """A llama-index LLM as it is; one of this project's engines wrapped in a ChatModel."""
    if isinstance(llm, IndexLLM):
        return llm
    s = settings or Settings()
    return ChatModel(engine=llm, max_tokens=s.max_answer_tokens, context_window=s.llm_context)


def model_name(llm: IndexLLM) -> str:
    return llm.metadata.model_name


def stream_text(llm: IndexLLM, messages: list[Message], max_tokens: int) -> Iterator[str]:
    """The reply's text pieces as they come, through the llama-index chat interface. A plugged LLM that fails
    is unavailable (the answer then quotes the documents), as the project's own engines are."""
    chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
    if isinstance(llm, ChatModel):
        for r in llm.stream_chat(chat, max_tokens=max_tokens):
            if r.delta:
                yield r.delta
        return
    try:
        for r in llm.stream_chat(chat):
            if r.delta:
                yield r.delta
    except ChatbotError:
        raise
    except Exception as exc:  # noqa: BLE001 - any client library's error means the same to the user
        raise LLMUnavailable(f"The LLM did not answer: {type(exc).__name__}: {exc}") from exc


def complete_text(llm: IndexLLM, messages: list[Message], max_tokens: int) -> str:
    return "".join(stream_text(llm, messages, max_tokens))


def warm(llm: IndexLLM, messages: list[Message], state_dir: Path | None) -> str:
    if isinstance(llm, ChatModel):
        return llm.warm(messages, state_dir)
    try:
        complete_text(llm, messages, 1)
    except LLMUnavailable as exc:
        log.warning("warming a prompt failed: %s", exc)
        return "unavailable"
    return "evaluated"


def load_index_llm(settings: Settings) -> IndexLLM:
    """The answer LLM: `llm_factory` ("package.module:function", called with the settings, returning any
    llama-index LLM), else the packaged local model or the hosted endpoint, wrapped as a ChatModel. Passed
    explicitly everywhere; llama-index's global Settings (which falls back to OpenAI) is never read."""
    if settings.llm_factory:
        module, _, attr = settings.llm_factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise LLMUnavailable(f"CHATBOT_LLM_FACTORY={settings.llm_factory!r} cannot be imported: {exc}") from exc
        llm = factory(settings)
        if not isinstance(llm, IndexLLM):
            raise LLMUnavailable(f"CHATBOT_LLM_FACTORY={settings.llm_factory!r} returned {type(llm).__name__}, "
                                 "not a llama-index LLM.")
        return llm
    return as_index_llm(load_llm(settings), settings)


def _as_dicts(messages: Any) -> list[Message]:
    return [{"role": str(getattr(m.role, "value", m.role)), "content": m.content or ""} for m in messages]
