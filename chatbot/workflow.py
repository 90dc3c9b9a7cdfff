"""The answer pipeline as a llama-index Workflow: analyse → retrieve → select evidence → generate → verify →
answer, with typed events between the steps. What users see streams out of it as `sources` and `draft` events;
the StopEvent's result is the final Answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.llms import LLM as IndexLLM
from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step

from chatbot import prompts
from chatbot.chat_model import stream_text
from chatbot.checks import AnswerCheck, CheckContext, Verdict, first_verdict
from chatbot.composer import (
    Citer, asked_as_written, extractive, passage_of, premise_correction, refusal, removed_sentences, states_any,
)
from chatbot.config import Settings
from chatbot.corpus import detect_language
from chatbot.errors import LLMUnavailable
from chatbot.gate import GenerationGate
from chatbot.markers import strip_markers
from chatbot.nodes import ChatQueryBundle, ChunkRetriever, EvidenceNode, EvidencePostprocessor
from chatbot.premise import PremiseConflict, attribution_conflicts, premise_conflicts
from chatbot.query import Query, analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.rewriting import AnswerTranslator, FollowUpRewriter, QuestionTranslator
from chatbot.schemas import Answer, DraftEvent, RetrievedChunk, SourcesEvent, Turn
from chatbot.translation_safety import untranslated_words
from chatbot.verification import Passage, Similarity, Verification, verify_citations

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One question's inputs and what the steps measured; travels with every event of its run."""

    question: str
    history: list[Turn]
    id: str | None
    top_k: int | None
    doc_ids: frozenset[str] | None
    t0: float
    timings: dict[str, float] = field(default_factory=dict)
    standalone: str = ""
    failure: LLMUnavailable | None = None  # the LLM did not answer: the question is answered with quotes

    @property
    def shown(self) -> str | None:
        """The standalone question, when a follow-up was rewritten into one."""
        return self.standalone if self.standalone != self.question else None

    def took(self, name: str, since: float) -> None:
        self.timings[name] = _ms(since)


class AskEvent(StartEvent):
    run: Any


class Analysed(Event):
    run: Any
    query: Any  # Query
    translation: str | None = None


class ChunksFound(Event):
    run: Any
    query: Any
    bundle: Any  # ChatQueryBundle
    nodes: list[Any]  # NodeWithScore of ChunkNode


class EvidenceReady(Event):
    run: Any
    query: Any
    passages: list[Any]  # Passage
    conflicts: list[Any]  # PremiseConflict
    messages: list[dict[str, str]]
    known: str  # the retrieved chunks' text


class Drafted(Event):
    run: Any
    ready: Any  # EvidenceReady
    draft: str


class Verified(Event):
    run: Any
    ready: Any
    check: Any  # Verification


class Streamed(Event):
    """An event of the answer stream (`sources`, `draft`) for the client, as it happens."""

    payload: Any


@dataclass
class Components:
    """What the workflow's steps use, passed explicitly (never llama-index's global Settings)."""

    settings: Settings
    hybrid: HybridRetriever
    retriever: ChunkRetriever
    evidence: EvidencePostprocessor
    llm: IndexLLM
    rewriter: FollowUpRewriter
    translator: QuestionTranslator
    answer_translator: AnswerTranslator
    gate: GenerationGate
    similarity: Similarity
    checks: list[AnswerCheck]
    document_text: Callable[[str], str | None]
    distinctive: Callable[[str], bool]


class AnswerWorkflow(Workflow):
    def __init__(self, parts: Components, **kwargs: Any) -> None:
        super().__init__(timeout=None, **kwargs)
        self.parts = parts

    @step
    async def analyse(self, ev: AskEvent) -> Analysed:
        """A follow-up rewritten into a standalone question, the question analysed once into a Query, and
        translated when the documents it is asked over are written (also) in the other language."""
        run: Run = ev.run
        p = self.parts
        run.standalone = run.question
        if run.history:
            t = time.perf_counter()
            with p.gate.hold():
                try:
                    run.standalone = p.rewriter.rewrite(run.question, run.history)
                except LLMUnavailable as exc:  # searched as the user wrote it
                    run.failure = exc
            run.took("rewrite", t)
        query = analyse_question(run.standalone)
        translation = None
        if run.failure is None and self._bridges_languages(query, run.doc_ids):
            t = time.perf_counter()
            with p.gate.hold():
                try:
                    translation = p.translator.translate(query.text, query.language)
                except LLMUnavailable as exc:
                    run.failure = exc
            run.took("translate_question", t)
        return Analysed(run=run, query=query, translation=translation)

    @step
    async def retrieve(self, ev: Analysed) -> ChunksFound:
        run: Run = ev.run
        t = time.perf_counter()
        bundle = ChatQueryBundle.of(ev.query, translation=ev.translation, doc_ids=run.doc_ids, top_k=run.top_k)
        nodes = self.parts.retriever.retrieve(bundle)
        run.took("retrieve", t)
        return ChunksFound(run=run, query=ev.query, bundle=bundle, nodes=nodes)

    @step
    async def select(self, ctx: Context, ev: ChunksFound) -> EvidenceReady | StopEvent:
        """The evidence spans; a refusal when the retrieved text is not about the question."""
        run: Run = ev.run
        query: Query = ev.query
        p = self.parts
        t = time.perf_counter()
        evidence = p.evidence.postprocess_nodes(ev.nodes, query_bundle=ev.bundle)
        run.timings["retrieve"] = round(run.timings["retrieve"] + _ms(t), 1)
        retrieved = ev.bundle.retrieved
        passages = [passage_of(i, n.node.evidence) for i, n in enumerate(evidence, 1)
                    if isinstance(n.node, EvidenceNode)]
        citer = Citer(p.hybrid.documents)
        sources = SourcesEvent(
            question=run.standalone, rewritten=run.shown is not None, language=query.language,
            relevant=retrieved.relevant, sources=[citer.source(x) for x in passages],
            chunks=[RetrievedChunk(doc_id=sc.chunk.doc_id, start=sc.chunk.start, end=sc.chunk.end,
                                   score=round(sc.score, 5)) for sc in retrieved.chunks],
        )
        await _emit(ctx, sources)
        if not retrieved.relevant:
            return StopEvent(result=refusal(
                run.id, run.question, query.language, run.timings, run.shown,
                f"the retrieved passages are not about the question (best similarity "
                f"{retrieved.best_similarity:.2f})"))
        # A Chinese question's numbers are compared with English passages through its English translation,
        # where the words around each number can be matched.
        translation = ev.bundle.translation
        premise_query = analyse_question(translation) if translation and query.language != "en" else query
        s = p.settings
        found = premise_conflicts(premise_query, passages, p.similarity, min_overlap=s.premise_min_overlap,
                                  min_overlap_counted=s.premise_min_overlap_counted,
                                  min_similarity_cross=s.premise_min_similarity_cross,
                                  same_noun_similarity=s.same_noun_similarity)
        conflicts = [c for c in (asked_as_written(c, premise_query, query) for c in found) if c]
        conflicts += attribution_conflicts(query, passages, p.document_text,
                                           referent_sentences=s.referent_sentences)
        messages = prompts.answer_messages([x.shown for x in passages], run.standalone,
                                           [(c.asked, c.stated) for c in conflicts])
        known = " ".join(sc.chunk.text for sc in retrieved.chunks)
        ready = EvidenceReady(run=run, query=query, passages=passages, conflicts=conflicts, messages=messages,
                              known=known)
        if run.failure is not None:
            return StopEvent(result=self._extractive(ready, run.failure))
        return ready

    @step
    async def generate(self, ctx: Context, ev: EvidenceReady) -> Drafted | StopEvent:
        """The model's draft, streamed as it is written (provisional: the answer event replaces it)."""
        run: Run = ev.run
        p = self.parts
        pieces: list[str] = []
        t = time.perf_counter()
        with p.gate.hold():
            try:
                for piece in stream_text(p.llm, ev.messages, p.settings.max_answer_tokens):
                    if not pieces:
                        run.timings["first_token"] = _ms(run.t0)
                    pieces.append(piece)
                    await _emit(ctx, DraftEvent(delta=piece))
            except LLMUnavailable as exc:
                # Half an answer is never verified, so it is never shown as the answer; the notice says it was
                # cut off.
                run.took("generate", t)
                return StopEvent(result=self._extractive(ev, exc, cut_off=bool(pieces)))
        run.took("generate", t)
        return Drafted(run=run, ready=ev, draft="".join(pieces))

    @step
    async def verify(self, ev: Drafted) -> Verified | StopEvent:
        """Each sentence checked against what it cites, then the whole answer against the checks; a question
        whose number (or name) the documents state differently gets the documents' own."""
        run: Run = ev.run
        ready: EvidenceReady = ev.ready
        t = time.perf_counter()
        check, verdict = self.verified(ev.draft, ready.passages, ready.query, ready.known)
        conflicts: list[PremiseConflict] = ready.conflicts
        # An answer that does not state the documents' number has not corrected the premise. A quoted term given
        # to the wrong name is always answered with the correction: the model copies the sentence without "not".
        if conflicts and (check.refused or not states_any(check.answer, conflicts)
                          or any(c.term for c in conflicts)):
            check, verdict = premise_correction(ready.query.language, conflicts, ready.passages, check), None
        run.took("verify", t)
        if check.refused:
            removed = removed_sentences(check, *((verdict.check, verdict.reason) if verdict else ()))
            reason = verdict.reason if verdict else _refusal_reason(check)
            return StopEvent(result=refusal(run.id, run.question, ready.query.language, run.timings, run.shown,
                                            reason, check, removed))
        return Verified(run=run, ready=ready, check=check)

    @step
    async def answer(self, ev: Verified) -> StopEvent:
        """The verified answer, in Chinese for a Chinese question; a half-translated Chinese answer ("上海
        Electric") is answered again in English and translated with names and numbers protected."""
        run: Run = ev.run
        ready: EvidenceReady = ev.ready
        p = self.parts
        check: Verification = ev.check
        text = check.answer
        language = ready.query.language
        if language == "zh":
            with p.gate.hold():
                try:
                    t = time.perf_counter()
                    if detect_language(text) == "zh" and untranslated_words(
                            text, [x.context_text or x.text for x in ready.passages]):
                        english = self._english_answer(ready)
                        translated = (p.answer_translator.to_chinese(english.answer)
                                      if english is not None else None)
                        if english is not None and translated:
                            check, text = english, translated
                        run.took("translate_answer", t)
                    elif detect_language(text) == "en":
                        text = p.answer_translator.to_chinese(check.answer) or check.answer
                        run.took("translate_answer", t)
                except LLMUnavailable as exc:  # the verified answer stands, untranslated
                    log.warning("translating the answer failed: %s", exc)
        run.timings["total"] = _ms(run.t0)
        citer = Citer(p.hybrid.documents)
        return StopEvent(result=Answer(
            id=run.id, question=run.question, answer=text, refused=False, language=language,
            citations=[citer.citation(x) for x in check.passages], unsupported=check.unsupported,
            removed=removed_sentences(check), standalone_question=run.shown, timings_ms=run.timings))

    # The steps' helpers -------------------------------------------------------------------------------------

    def verified(self, draft: str, passages: list[Passage], query: Query,
                 known: str) -> tuple[Verification, Verdict | None]:
        """The draft's supported sentences, then the checks in order: the first that fails refuses the answer,
        and its verdict says why."""
        p = self.parts
        s = p.settings
        check = verify_citations(draft, passages, query, p.similarity, min_lexical=s.min_lexical_support,
                                 min_similarity=s.min_semantic_support,
                                 min_similarity_cross=s.min_semantic_support_cross,
                                 max_contiguous_citation=s.max_contiguous_citation)
        if check.refused:
            return check, None
        verdict = first_verdict(p.checks, check, CheckContext(query, s, known, p.similarity,
                                                              p.document_text, p.distinctive))
        if verdict is not None:
            check.refused = True
            check.unsupported = [*check.unsupported, strip_markers(check.answer).strip()]
        return check, verdict

    def _english_answer(self, ready: EvidenceReady) -> Verification | None:
        """The same prompt answered in English, verified; None when that answer is not verified either. The
        caller holds the gate."""
        messages = ready.messages
        english = [*messages[:-1], {"role": "user", "content": messages[-1]["content"] + "\n(Answer in English.)"}]
        draft = "".join(stream_text(self.parts.llm, english, self.parts.settings.max_answer_tokens))
        check, _ = self.verified(draft, ready.passages, ready.query, ready.known)
        return None if check.refused or detect_language(check.answer) != "en" else check

    def _extractive(self, ready: EvidenceReady, failure: LLMUnavailable, *, cut_off: bool = False) -> Answer:
        run: Run = ready.run
        s = self.parts.settings
        answer = extractive(run.id, run.question, ready.query.language, ready.passages, ready.conflicts,
                            run.timings, run.shown, failure, Citer(self.parts.hybrid.documents),
                            s.extractive_quotes, s.extractive_min_share, cut_off=cut_off)
        answer.timings_ms["total"] = _ms(run.t0)
        return answer

    def _bridges_languages(self, query: Query, doc_ids: frozenset[str] | None) -> bool:
        """A question over documents written (also) in the other language is searched in both languages: the
        multilingual embedder alone places a Chinese question near the right English passage (and the reverse)
        too rarely, and the English embedder and the keyword index match only their own language."""
        if not self.parts.settings.query_translation:
            return False
        docs = self.parts.hybrid.documents
        scope = docs.values() if doc_ids is None else [docs[d] for d in doc_ids if d in docs]
        return any((d.language or "en") != query.language for d in scope)


def _refusal_reason(check: Verification) -> str:
    if check.unsupported:
        return "no sentence of the model's answer is supported by the passage it cites"
    return "the model found no answer in the retrieved passages"


async def _emit(ctx: Context, payload: Any) -> None:
    """Stream one event to the client, and let the consumer take it before the step goes on."""
    ctx.write_event_to_stream(Streamed(payload=payload))
    await asyncio.sleep(0)


def run_sync(workflow: AnswerWorkflow, run: Run) -> Generator[Any, None, None]:
    """Drive the workflow on a private event loop from a plain iterator, in the caller's thread: yields the
    payloads of its `Streamed` events as they happen and finally the Answer. Closing the iterator early (the
    client went away) cancels the run; a step holding the generation gate releases it as it unwinds."""
    loop = asyncio.new_event_loop()
    finished = False
    try:
        handler = loop.run_until_complete(_start(workflow, run))
        events = handler.stream_events()
        while True:
            try:
                ev = loop.run_until_complete(events.__anext__())
            except StopAsyncIteration:
                break
            if isinstance(ev, Streamed):
                yield ev.payload
        result = loop.run_until_complete(handler)
        finished = True
        yield result
    finally:
        if not finished:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _start(workflow: AnswerWorkflow, run: Run) -> Any:
    return workflow.run(start_event=AskEvent(run=run))


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
