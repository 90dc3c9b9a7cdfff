"""ChatService: the thin facade every adapter calls: input checks, the answer cache, and the answer workflow
run under the generation gate, its events streamed as `sources` → `draft` → `answer` | `error`."""

from __future__ import annotations

import hashlib
import logging
import time
from contextlib import closing
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from llama_index.core.llms import LLM as IndexLLM

from chatbot import prompts
from chatbot.answer_cache import AnswerCache
from chatbot.chat_model import as_index_llm, model_name
from chatbot.checks import AnswerCheck
from chatbot.config import Settings
from chatbot.embeddings import Embedders, load_embedders
from chatbot.errors import ChatbotError, DocumentNotFound, EmptyQuestion, HistoryTooLong, QuestionTooLong
from chatbot.gate import GenerationGate
from chatbot.snapshot import text_path
from chatbot.llm import LLM
from chatbot.pipeline import build_workflow, load_llms, warm_prompts
from chatbot.retrieval import HybridRetriever, require_index
from chatbot.schemas import Answer, AnswerEvent, DocInfo, ErrorEvent, SourcesEvent, StreamEvent, Turn
from chatbot.workflow import Run, run_sync

log = logging.getLogger(__name__)


class AnswerFailed(ChatbotError):
    """Raised by `ask` for an `error` event of the stream, keeping its code and status."""

    def __init__(self, event: ErrorEvent) -> None:
        super().__init__(event.message)
        self.code = event.code
        self.status_code = event.status


class _RebuildsWorkflow:
    """An LLM of the service: setting it (tests script one) rebuilds the workflow around the new one."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = "_" + name

    def __get__(self, service: Any, owner: type | None = None) -> Any:
        return self if service is None else getattr(service, self.attr)

    def __set__(self, service: Any, llm: Any) -> None:
        setattr(service, self.attr, llm)
        service._build()


class ChatService:
    def __init__(self, settings: Settings, *, embedders: Embedders, retriever: HybridRetriever,
                 llm: IndexLLM | LLM, translator: IndexLLM | LLM | None = None,
                 rewriter: IndexLLM | LLM | None = None, gate: GenerationGate | None = None,
                 checks: list[AnswerCheck] | None = None) -> None:
        self.settings = settings
        self.embedders = embedders
        self.retriever = retriever
        self._llm = as_index_llm(llm, settings)
        # Every LLM call of this service (answer, rewrite, translation) runs under this one gate.
        self.gate = gate or GenerationGate(
            slots=1 if settings.llm_backend == "local" else settings.hosted_concurrency,
            max_waiting=settings.max_waiting)
        self.cache = AnswerCache(settings.answer_cache_size)
        self.checks = checks  # None: chatbot.checks.default_checks()
        self._translator, self._rewriter = translator or self._llm, rewriter or self._llm
        self._build()
        self._static_version = _fingerprint(settings, self.llm)

    def _build(self) -> None:
        self._llm = as_index_llm(self._llm, self.settings)
        self.workflow = build_workflow(self.settings, self.embedders, self.retriever, self.llm, self._translator,
                                       self._rewriter, self.gate, self._text_or_none, self.checks)

    llm = _RebuildsWorkflow()  # the answer LLM (a llama-index LLM once set)
    translator = _RebuildsWorkflow()
    rewriter = _RebuildsWorkflow()

    @property
    def model_name(self) -> str:
        return model_name(self.llm)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ChatService:
        settings = settings or Settings()
        require_index(settings)  # before loading any model: a missing index is the commonest first mistake
        embedders = load_embedders(settings)
        retriever = HybridRetriever(settings, embedders)
        llm, translator, rewriter = load_llms(settings)
        return cls(settings, embedders=embedders, retriever=retriever, llm=llm, translator=translator,
                   rewriter=rewriter)

    def warmup(self) -> dict[str, str]:
        """Evaluate (or load) the fixed prompt prefixes once, so the first user does not pay for them."""
        with self.gate.hold():
            return warm_prompts(self.settings, self.llm, as_index_llm(self._translator, self.settings),
                                as_index_llm(self._rewriter, self.settings))

    def documents(self) -> list[DocInfo]:
        """What is indexed, in title order."""
        return sorted(self.retriever.documents.values(), key=lambda d: d.title.lower())

    def document(self, doc_id: str) -> DocInfo:
        doc = self.retriever.documents.get(doc_id)
        if doc is None:
            raise DocumentNotFound(doc_id)
        return doc

    def document_text(self, doc_id: str) -> str:
        """The document's extracted text: what every citation's start/end offsets point into."""
        self.document(doc_id)
        try:
            return text_path(self.settings.index_dir, doc_id).read_text(encoding="utf-8")
        except OSError as exc:
            raise DocumentNotFound(doc_id) from exc

    def _text_or_none(self, doc_id: str) -> str | None:
        try:
            return self.document_text(doc_id)
        except DocumentNotFound:
            return None

    def validate(self, question: str | None) -> str:
        question = "".join(ch for ch in (question or "") if ch.isprintable() or ch in "\n\t").strip()
        if not question:
            raise EmptyQuestion()
        if len(question) > self.settings.max_question_chars:
            raise QuestionTooLong(len(question), self.settings.max_question_chars)
        return question

    def validate_history(self, history: Sequence[Turn | dict] | None) -> list[Turn]:
        turns = [t if isinstance(t, Turn) else Turn.model_validate(t) for t in (history or [])]
        turns = [t for t in turns if t.content.strip()]
        size = sum(len(t.content) for t in turns)
        if size > self.settings.max_history_chars:
            raise HistoryTooLong(size, self.settings.max_history_chars)
        return turns

    def ask(self, question: str, *, history: Sequence[Turn | dict] | None = None, id: str | None = None,
            top_k: int | None = None, doc_ids: Sequence[str] | None = None) -> Answer:
        """The final answer of `ask_stream`; an `error` event is raised as a ChatbotError."""
        for event in self.ask_stream(question, history=history, id=id, top_k=top_k, doc_ids=doc_ids):
            if isinstance(event, AnswerEvent):
                return event.answer
            if isinstance(event, ErrorEvent):
                raise AnswerFailed(event)
        raise AnswerFailed(ErrorEvent(code="internal", message="No answer was produced.", status=500))

    def ask_stream(self, question: str, *, history: Sequence[Turn | dict] | None = None, id: str | None = None,
                   top_k: int | None = None, doc_ids: Sequence[str] | None = None) -> Iterator[StreamEvent]:
        """The typed answer stream every adapter consumes: `sources`, then `draft` deltas (provisional), then
        `answer` (the verified contract, replacing the drafts) or `error`. Input is checked here, before the
        first event: a bad question raises a ChatbotError instead of starting a stream."""
        t0 = time.perf_counter()
        question = self.validate(question)
        turns = self.validate_history(history)
        if top_k is not None and not 1 <= top_k <= 20:
            raise ChatbotError("top_k must be between 1 and 20.")
        wanted = None
        if doc_ids is not None:
            wanted = frozenset(doc_ids)
            for doc_id in wanted:
                self.document(doc_id)
        return self._events(Run(question, turns, id, top_k, wanted, t0))

    def _events(self, run: Run) -> Generator[StreamEvent, None, None]:
        key = self.cache.key(self._version(), run.question, run.history, run.doc_ids, run.top_k)
        hit = self.cache.get(key)
        if hit is not None:  # a repeated question: the verified answer it got, in milliseconds
            yield hit.sources
            took = round((time.perf_counter() - run.t0) * 1000, 1)
            yield AnswerEvent(answer=hit.answer.model_copy(update={"id": run.id, "timings_ms": {
                "cache": took, "total": took}}))
            return
        sources: SourcesEvent | None = None
        try:
            with closing(run_sync(self.workflow, run)) as items:
                for item in items:
                    if isinstance(item, Answer):
                        item.timings_ms.setdefault("total", round((time.perf_counter() - run.t0) * 1000, 1))
                        if sources is not None and item.mode != "extractive":  # quotes: the LLM may answer next time
                            self.cache.put(key, sources, item)
                        yield AnswerEvent(answer=item)
                        return
                    sources = item if isinstance(item, SourcesEvent) else sources
                    yield item
        except ChatbotError as exc:
            yield ErrorEvent(code=exc.code, message=str(exc), status=exc.status_code)
        except Exception:  # noqa: BLE001 - the user gets a message, the log gets the trace
            log.exception("answering %r failed", run.question)
            yield ErrorEvent(code="internal", status=500,
                             message="Something went wrong while answering. The error was logged; please try again.")

    def _version(self) -> str:
        """What a cached answer depends on besides the question: settings, model, prompts, and the index."""
        return f"{self._static_version}|{self.retriever.generation}|{self.retriever.built_at}"


def _fingerprint(settings: Settings, llm: IndexLLM) -> str:
    """Settings, model and prompt files: a cached answer is only valid while all three are unchanged."""
    h = hashlib.sha256(settings.model_dump_json().encode())
    h.update(model_name(llm).encode())
    for path in sorted(prompts.PROMPT_DIR.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]
