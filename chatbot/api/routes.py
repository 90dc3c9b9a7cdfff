"""The native API, /api/v1: ask (JSON or SSE), retrieve, documents. Each route calls the ChatService."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi import Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from chatbot.api.errors import ERROR_RESPONSES
from chatbot.api.metrics import ApiMetrics
from chatbot.api.models import (
    AskRequest, DocumentFilter, DocumentList, DocumentText, EvidenceSpan, Passage, RetrieveRequest,
    RetrieveResponse,
)
from chatbot.api.openapi import NATIVE_STREAM_EVENT
from chatbot.api.sse import event_source, iterate_closing
from chatbot.errors import Busy, ChatbotError
from chatbot.query import analyse_question
from chatbot.schemas import DocInfo
from chatbot.schemas import Answer, AnswerEvent, ErrorEvent, StreamEvent

if TYPE_CHECKING:
    from chatbot.state import AppState
    from chatbot.service import ChatService


class NoMatchingDocument(ChatbotError):
    status_code = 404
    code = "no_matching_document"


class BadSpan(ChatbotError):
    code = "bad_span"


@dataclass
class ApiContext:
    """What every route shares."""

    state: AppState
    metrics: ApiMetrics
    counted: Callable[..., Any]  # the auth + rate limit dependency
    authenticated: Callable[..., Any]  # auth only (for /metrics)


def refuse_when_full(service: ChatService) -> None:
    """Fail fast with 503 before any work when the waiting line is already full (the gate would refuse the
    question anyway once retrieval is done)."""
    gate = service.gate
    if gate.active >= gate.slots and gate.waiting >= gate.max_waiting:
        raise Busy(gate.waiting, gate.retry_after())


def with_retry_after(exc: ChatbotError, service: ChatService) -> ChatbotError:
    """A `busy` error raised from the stream (ask's AnswerFailed) keeps the gate's advice on when to retry."""
    if exc.code == "busy" and exc.retry_after is None:
        exc.retry_after = service.gate.retry_after()
    return exc


def _date_ok(date: str, since: str | None, until: str | None) -> bool:
    if since and (not date or date[: len(since)] < since):
        return False
    return not (until and (not date or date[: len(until)] > until))


def _matches(doc: DocInfo, f: DocumentFilter) -> bool:
    return ((f.outlet is None or doc.outlet == f.outlet)
            and (f.language is None or doc.language == f.language)
            and (f.title_contains is None or f.title_contains.lower() in doc.title.lower())
            and _date_ok(doc.date, f.date_from, f.date_to))


def resolve_doc_ids(service: ChatService, doc_ids: Sequence[str] | None, filt: DocumentFilter | None) -> list[str] | None:
    """The documents a question may be answered from: the ids given (each must exist), narrowed by the
    metadata filter; None means all."""
    ids: list[str] | None = None
    if doc_ids is not None:
        if not doc_ids:
            raise ChatbotError("doc_ids is empty; leave it out to search every document.")
        for doc_id in doc_ids:
            service.document(doc_id)  # DocumentNotFound (404) for an unknown id
        ids = list(dict.fromkeys(doc_ids))
    if filt is not None and filt.model_dump(exclude_none=True):
        matching = {d.doc_id for d in service.documents() if _matches(d, filt)}
        ids = sorted(matching) if ids is None else [i for i in ids if i in matching]
        if not ids:
            raise NoMatchingDocument("No indexed document matches the filter (and doc_ids). GET /api/v1/documents "
                                     "lists the documents with their outlet, language and date.")
    return ids


def open_stream(service: ChatService, question: str, *, history: Sequence[Any], top_k: int | None,
                doc_ids: Sequence[str] | None, filt: DocumentFilter | None, id: str | None = None,
                ) -> Iterator[StreamEvent]:
    """Validate and start the service's stream (a ChatbotError here becomes a JSON error, not a stream)."""
    wanted = resolve_doc_ids(service, doc_ids, filt)
    refuse_when_full(service)
    return service.ask_stream(question, history=history, id=id, top_k=top_k, doc_ids=wanted)


async def observed(ctx: ApiContext, stream: Iterator[StreamEvent]) -> AsyncGenerator[StreamEvent, None]:
    """The stream's events, off the event loop, counted in the metrics; closed however the consumer ends."""
    async with aclosing(iterate_closing(stream)) as events:
        async for event in events:
            if isinstance(event, AnswerEvent):
                ctx.metrics.observe_answer(event.answer)
            elif isinstance(event, ErrorEvent):
                ctx.metrics.count_error(event.code)
            yield event


def error_event_data(event: ErrorEvent, service: ChatService) -> dict[str, Any]:
    data = event.model_dump()
    if event.code == "busy":
        data["retry_after"] = service.gate.retry_after()
    return data


def retrieve_passages(service: ChatService, question: str, *, top_k: int | None = None,
                      doc_ids: Sequence[str] | None = None, filt: DocumentFilter | None = None) -> RetrieveResponse:
    """What retrieval finds for a question (no generation): the chunks with their offsets and scores, and the
    evidence sentences an answer would cite."""
    question = service.validate(question)
    wanted = resolve_doc_ids(service, doc_ids, filt)
    found = service.retriever.retrieve(analyse_question(question), top_k=top_k,
                                       doc_ids=frozenset(wanted) if wanted is not None else None)
    docs = service.retriever.documents
    passages = [Passage(doc_id=sc.chunk.doc_id, title=docs[sc.chunk.doc_id].title if sc.chunk.doc_id in docs
                        else "", source=docs[sc.chunk.doc_id].source if sc.chunk.doc_id in docs else "",
                        start=sc.chunk.start, end=sc.chunk.end, text=sc.chunk.text, score=round(sc.score, 5),
                        similarity=round(sc.dense, 4)) for sc in found.chunks]
    evidence = [EvidenceSpan(n=i, doc_id=e.doc_id, start=e.start, end=e.end, text=e.text, score=round(e.score, 4))
                for i, e in enumerate(found.evidence, 1)]
    return RetrieveResponse(question=question, language=found.language, relevant=found.relevant,
                            passages=passages, evidence=evidence, timings_ms=found.timings_ms)


SSE_DESCRIPTION = """Server-Sent Events, one JSON object per `data:` line, named by `event:` (= its `type`):

1. `sources`: what retrieval found (`question` searched, `relevant`, `sources` numbered as `[n]` cites them);
2. `draft` (zero or more): `delta`, the model's text as it is written. **Provisional**;
3. `answer`: `answer` is the verified answer contract (the body of POST /api/v1/ask). It **replaces** every draft;
   or `error`: `code`, `message`, `status` (e.g. `busy` with `retry_after`). An LLM that does not answer is not
   an error: the `answer` then quotes the documents (`mode: "extractive"`).

Comment lines (`: ping`) keep the connection open while the question waits for the model. Closing the
connection cancels the question and frees the model for the next one."""

SSE_EXAMPLE = ('event: sources\ndata: {"type":"sources","question":"How many …?","rewritten":false,"language":"en",'
               '"relevant":true,"sources":[{"n":1,"doc_id":"shanghai-soe-ai-plus-initiative","start":36,"end":527,'
               '"text":"…","score":0.83}],"chunks":[]}\n\n'
               'event: draft\ndata: {"type":"draft","delta":"11 municipal"}\n\n'
               'event: answer\ndata: {"type":"answer","answer":{"question":"How many …?","answer":"11 municipal '
               'state-owned enterprises launched the initiative [1].","refused":false,"language":"en",'
               '"citations":[…]}}\n\n')


def native_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(ctx.counted)], responses=ERROR_RESPONSES)

    @router.post("/ask", response_model=Answer, tags=["answers"], summary="Answer a question, with citations",
                 description="The verified answer: `answer` carries `[n]` markers; `citations[n]` gives the "
                             "document, the character span (`start`, `end`) and its `text`. `refused: true` means "
                             "the documents don't contain the answer; `mode: \"extractive\"` means the LLM did "
                             "not answer, so the answer quotes the best evidence sentences (`notice` says so). "
                             "Same contract as `chatbot ask --json`.")
    def ask(body: AskRequest) -> Answer:
        service = ctx.state.service
        doc_ids = resolve_doc_ids(service, body.doc_ids, body.filter)
        refuse_when_full(service)
        try:
            answer = service.ask(body.question, history=body.history, id=body.id, top_k=body.top_k,
                                 doc_ids=doc_ids)
        except ChatbotError as exc:
            raise with_retry_after(exc, service) from None
        ctx.metrics.observe_answer(answer)
        return answer

    @router.post("/ask/stream", tags=["answers"], summary="Answer a question as a stream of events (SSE)",
                 description=SSE_DESCRIPTION, response_class=EventSourceResponse,
                 responses={200: {"description": "the event stream",
                                  "content": {"text/event-stream": {"schema": NATIVE_STREAM_EVENT,
                                                                    "example": SSE_EXAMPLE}}}})
    async def ask_stream(body: AskRequest) -> EventSourceResponse:
        service = ctx.state.service
        stream = await run_in_threadpool(lambda: open_stream(
            service, body.question, history=body.history, top_k=body.top_k, doc_ids=body.doc_ids,
            filt=body.filter, id=body.id))

        async def events() -> AsyncGenerator[ServerSentEvent, None]:
            async with aclosing(observed(ctx, stream)) as items:
                async for event in items:
                    data = error_event_data(event, service) if isinstance(event, ErrorEvent) else event.model_dump()
                    yield ServerSentEvent(event=event.type, data=_json(data))

        return event_source(events())

    @router.post("/retrieve", response_model=RetrieveResponse, tags=["retrieval"],
                 summary="Passages for a question, with scores and character offsets (no generation)")
    def retrieve(body: RetrieveRequest) -> RetrieveResponse:
        return retrieve_passages(ctx.state.service, body.question, top_k=body.top_k, doc_ids=body.doc_ids,
                                 filt=body.filter)

    @router.get("/documents", response_model=DocumentList, tags=["documents"], summary="The indexed documents")
    def documents() -> DocumentList:
        return DocumentList(documents=ctx.state.service.documents())

    @router.get("/documents/{doc_id}", response_model=DocumentText, tags=["documents"],
                summary="A document's metadata and text, or the span a citation points to",
                description="`text` is the document's extracted text, the one citation offsets point into: "
                            "`?start=36&end=527` returns exactly a citation's `text`.")
    def document(doc_id: str = PathParam(max_length=200, examples=["shanghai-soe-ai-plus-initiative"]),
                 start: int | None = Query(None, ge=0, description="first character (default 0)"),
                 end: int | None = Query(None, ge=0, description="one past the last character (default: the end)"),
                 ) -> DocumentText:
        service = ctx.state.service
        info = service.document(doc_id)
        text = service.document_text(doc_id)
        first = 0 if start is None else start
        last = len(text) if end is None else end
        if first > last or last > len(text):
            raise BadSpan(f"The span {first}-{last} is not inside the document, which has {len(text)} characters "
                          "(start ≤ end ≤ length).")
        return DocumentText(**info.model_dump(), start=first, end=last, text=text[first:last])

    return router


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
