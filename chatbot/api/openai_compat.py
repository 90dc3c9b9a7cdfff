"""OpenAI-compatible routes (/v1/chat/completions, /v1/models): a portal using the `openai` SDK only changes its
base_url. The answer keeps its [n] markers; its citations travel as a top-level `citations` field."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from chatbot.api.errors import ERROR_RESPONSES, error_body
from chatbot.api.models import DocId, DocumentFilter
from chatbot.api.routes import (
    ApiContext, observed, open_stream, refuse_when_full, resolve_doc_ids, with_retry_after,
)
from chatbot.api.openapi import OPENAI_STREAM_EVENT
from chatbot.api.sse import event_source
from chatbot.errors import ChatbotError, EmptyQuestion
from chatbot.schemas import Answer, AnswerEvent, Citation, ErrorEvent, SourcesEvent, Turn
from chatbot.text import is_cjk

MODEL_ID = "soe-ai-plus-qa"


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=50, examples=["text"])
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = Field(None, description="a last chunk with `usage` (and no choices) before [DONE]")


class ChatCompletionRequest(BaseModel):
    """The OpenAI request body. The last message (role `user`) is the question; earlier `user`/`assistant`
    messages are the conversation a follow-up is read with. `system` messages and sampling parameters
    (temperature, max_tokens, …) are accepted and ignored: the server's own prompt and settings apply.
    What would change the shape of the answer is refused with a 400 naming the parameter: `n` above 1,
    `tools` (and `functions`), and a `response_format` other than `text`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": MODEL_ID, "messages": [{"role": "user", "content": "Who launched the AI+ Action Initiative?"}]},
        {"model": MODEL_ID, "stream": True, "messages": [
            {"role": "user", "content": "Who launched the AI+ Action Initiative?"},
            {"role": "assistant", "content": "11 municipal state-owned enterprises launched it [1]."},
            {"role": "user", "content": "At which event?"}]},
    ]})

    model: str = Field(MODEL_ID, max_length=200, description=f"any value; the server answers as `{MODEL_ID}`")
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128, description="only 1: one answer per question (more → 400)")
    tools: list[dict[str, Any]] | None = Field(None, max_length=128, description="not supported (→ 400)")
    functions: list[dict[str, Any]] | None = Field(None, max_length=128, description="not supported (→ 400)")
    response_format: dict[str, Any] | None = Field(
        None, description="only `{\"type\": \"text\"}`: the answer is cited prose (others → 400)")
    top_k: int | None = Field(None, ge=1, le=20, description="extension: chunks to retrieve")
    doc_ids: list[DocId] | None = Field(None, max_length=50, description="extension: search only these documents")
    filter: DocumentFilter | None = Field(None, description="extension: search only documents with this metadata")


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = Field(None, description="always null: a question the documents cannot answer is answered "
                                            "with a refusal in `content` and `refused: true`")


class Usage(BaseModel):
    """Tokens of this exchange, counted with the answer model's own tokenizer (an estimate where the model
    has none: see docs/clients.md). `prompt_tokens`: the messages sent; `completion_tokens`: the content
    returned (the quoted text of an extractive answer)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int = 0
    message: CompletionMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    """An OpenAI chat completion plus the answer's evidence: `citations` (the `[n]` markers of the content,
    each with its document and character span), `refused`, and `mode` with its `notice`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    citations: list[Citation] = Field(description="what each [n] in the content cites (empty when refused)")
    refused: bool = Field(description="true: the documents don't contain the answer")
    mode: Literal["generated", "extractive"] = Field(
        "generated", description="`extractive`: the LLM did not answer, so the content quotes the documents")
    notice: str = Field("", description="with `extractive`: why the content is quotes, in the question's language")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "chatbot"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ChunkDelta(BaseModel):
    """Sent without the fields it does not carry (the first chunk: role; later ones: content; the last: none)."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One `data:` line of the stream; the last chunk (finish_reason `stop`) also carries `citations`,
    `refused`, `mode` and `notice`; then `data: [DONE]`."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice] = Field(description="empty in the usage chunk")
    usage: Usage | None = Field(None, description="with `stream_options.include_usage`: null, except in the extra "
                                                  "last chunk (empty `choices`) that carries the counts")
    citations: list[Citation] | None = Field(None, description="last chunk only: what each [n] cites")
    refused: bool | None = Field(None, description="last chunk only")
    mode: Literal["generated", "extractive"] | None = Field(None, description="last chunk only")
    notice: str | None = Field(None, description="last chunk only")


def question_and_history(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    last = messages[-1]
    if last.role != "user":
        raise ChatbotError(f"The last message must be the user's question (role \"user\"), not \"{last.role}\".")
    question = last.text()
    if not question.strip():
        raise EmptyQuestion()
    history = [Turn(role="user" if m.role == "user" else "assistant", content=m.text())
               for m in messages[:-1] if m.role in ("user", "assistant") and m.text().strip()]
    return question, history


class UnsupportedParameter(ChatbotError):
    """A request parameter this server cannot honour: refused rather than silently ignored (OpenAI's 400 with
    `param`)."""

    code = "unsupported_parameter"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def refuse_unsupported(body: ChatCompletionRequest) -> None:
    if body.n is not None and body.n > 1:
        raise UnsupportedParameter("n", f"n={body.n}: this server gives one answer per question; send n=1 or "
                                        "leave n out.")
    for name in ("tools", "functions"):
        if getattr(body, name):
            raise UnsupportedParameter(name, f"`{name}` is not supported: this server answers from its documents "
                                             "and calls no tools. Leave it out.")
    kind = (body.response_format or {}).get("type", "text")
    if kind != "text":
        raise UnsupportedParameter("response_format", f"response_format {kind!r} is not supported: the answer is "
                                                      "cited prose. Send {\"type\": \"text\"} or leave it out.")


def estimate_tokens(text: str) -> int:
    """OpenAI's rule of thumb where the model has no tokenizer of its own: a token per CJK character, a token
    per four other characters."""
    cjk = sum(1 for ch in text if is_cjk(ch))
    return cjk + math.ceil((len(text) - cjk) / 4)


def token_counter(llm: Any) -> Callable[[str], int]:
    """The answer model's own tokenizer (the local llama.cpp engine has one), else `estimate_tokens`."""
    count = getattr(getattr(llm, "engine", llm), "count_tokens", None)
    return count if callable(count) else estimate_tokens


def usage(count: Callable[[str], int], messages: list[ChatMessage], content: str) -> Usage:
    prompt = sum(count(text) for m in messages if (text := m.text()))
    completion_tokens = count(content) if content else 0
    return Usage(prompt_tokens=prompt, completion_tokens=completion_tokens, total_tokens=prompt + completion_tokens)


def completion(answer: Answer, model: str, tokens: Usage) -> ChatCompletion:
    return ChatCompletion(id=f"chatcmpl-{uuid.uuid4().hex[:24]}", created=int(time.time()), model=model,
                          choices=[CompletionChoice(message=CompletionMessage(content=answer.answer, refusal=None))],
                          usage=tokens, citations=answer.citations, refused=answer.refused, mode=answer.mode,
                          notice=answer.notice)


STREAM_DESCRIPTION = """With `"stream": true`: Server-Sent Events in OpenAI's format, `data: {chat.completion.chunk}`
lines and a final `data: [DONE]`. The first chunk (role `assistant`) comes once retrieval is done; the answer
text comes once it is **verified** (the model's provisional drafts are not sent here, since OpenAI clients
append every delta and could not take one back; POST /api/v1/ask/stream streams the drafts). The last chunk has
`finish_reason: "stop"` and the top-level `citations`, `refused`, `mode` and `notice`; with
`stream_options: {"include_usage": true}` one more chunk follows with empty `choices` and the `usage` (the other
chunks then carry `usage: null`). A failure mid-stream is sent as
`data: {"error": {...}}`, which the openai SDK raises as an APIError."""


def openai_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(ctx.counted)], responses=ERROR_RESPONSES,
                       tags=["openai-compatible"])

    @router.get("/models", response_model=ModelList, summary="The one model this server answers as")
    def models() -> ModelList:
        return ModelList(data=[ModelCard(id=MODEL_ID, created=int(ctx.state.started_at))])

    @router.post("/chat/completions", response_model=ChatCompletion,
                 summary="OpenAI-compatible chat completion (JSON, or SSE with stream: true)",
                 description=STREAM_DESCRIPTION,
                 responses={200: {"description": "a completion, or with `stream: true` an event stream",
                                  "content": {"text/event-stream": {"schema": OPENAI_STREAM_EVENT}}}})
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        refuse_unsupported(body)
        service = ctx.state.service
        question, history = question_and_history(body.messages)
        model = MODEL_ID
        count = token_counter(service.llm)
        if not body.stream:
            def answer() -> Answer:
                doc_ids = resolve_doc_ids(service, body.doc_ids, body.filter)
                refuse_when_full(service)
                try:
                    return service.ask(question, history=history, top_k=body.top_k, doc_ids=doc_ids)
                except ChatbotError as exc:
                    raise with_retry_after(exc, service) from None

            result = await run_in_threadpool(answer)
            ctx.metrics.observe_answer(result)
            tokens = await run_in_threadpool(usage, count, body.messages, result.answer)
            return JSONResponse(completion(result, model, tokens).model_dump(mode="json"))

        stream = await run_in_threadpool(lambda: open_stream(
            service, question, history=history, top_k=body.top_k, doc_ids=body.doc_ids, filt=body.filter))
        chunk_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        with_usage = bool(body.stream_options and body.stream_options.include_usage)

        def chunk(delta: ChunkDelta | None, finish: Literal["stop"] | None = None, answer: Answer | None = None,
                  tokens: Usage | None = None) -> ServerSentEvent:
            data = ChatCompletionChunk(
                id=chunk_id, created=created, model=model,
                choices=[ChunkChoice(delta=delta, finish_reason=finish)] if delta is not None else [],
                usage=tokens, citations=answer.citations if answer else None,
                refused=answer.refused if answer else None, mode=answer.mode if answer else None,
                notice=answer.notice if answer else None).model_dump(mode="json")
            for choice in data["choices"]:  # the spec's delta has no null fields
                choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
            if answer is None:
                for extension in ("citations", "refused", "mode", "notice"):
                    del data[extension]
            if not with_usage:
                del data["usage"]
            return ServerSentEvent(data=json.dumps(data, ensure_ascii=False, separators=(",", ":")))

        async def events() -> AsyncGenerator[ServerSentEvent, None]:
            async with aclosing(observed(ctx, stream)) as items:
                async for event in items:
                    if isinstance(event, SourcesEvent):
                        yield chunk(ChunkDelta(role="assistant", content=""))
                    elif isinstance(event, AnswerEvent):
                        a = event.answer
                        yield chunk(ChunkDelta(content=a.answer))
                        yield chunk(ChunkDelta(), "stop", a)
                        if with_usage:
                            yield chunk(None, tokens=await run_in_threadpool(usage, count, body.messages, a.answer))
                    elif isinstance(event, ErrorEvent):
                        retry = service.gate.retry_after() if event.code == "busy" else None
                        error = error_body(event.status, event.code, event.message, retry_after=retry)
                        yield ServerSentEvent(data=json.dumps(error, ensure_ascii=False))
                        return
            yield ServerSentEvent(data="[DONE]")

        return event_source(events())

    return router
