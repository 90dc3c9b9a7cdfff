"""ChatService: the one place the stages are wired together (validate, translate, retrieve, generate, verify)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

import numpy as np

from chatbot import prompts
from chatbot.citations import MARKER as MARKER_RE
from chatbot.citations import (
    Passage,
    Verification,
    answers_question_type,
    asks_for_several,
    names_preserved,
    protect_for_translation,
    restore_translation,
    premise_gaps,
    verify_citations,
)
from chatbot.numbers import extract_quantities, same_value
from chatbot.config import Settings
from chatbot.corpus import detect_language
from chatbot.embeddings import Embedders, common_english_words, load_embedders
from chatbot.errors import ChatbotError, DocumentNotFound, EmptyQuestion, HistoryTooLong, QuestionTooLong
from chatbot.gate import GenerationGate
from chatbot.ingest import text_path
from chatbot.llm import LLM, load_llm
from chatbot.retrieval import DocInfo, HybridRetriever, require_index
from chatbot.schemas import (
    Answer, AnswerEvent, Citation, DraftEvent, ErrorEvent, RetrievedChunk, Source, SourcesEvent, StreamEvent, Turn,
)

log = logging.getLogger(__name__)

HISTORY_TURNS = 6  # earlier messages a follow-up is rewritten with
HISTORY_TURN_CHARS = 600  # each one cut to this length in the rewrite prompt


class AnswerFailed(ChatbotError):
    """Raised by `ask` for an `error` event of the stream, keeping its code and status."""

    def __init__(self, event: ErrorEvent) -> None:
        super().__init__(event.message)
        self.code = event.code
        self.status_code = event.status


class EmbeddingSimilarity:
    """Cosine of claims and passages in the multilingual embedder (the English one if none)."""

    def __init__(self, embedders: Embedders) -> None:
        self.embedder = embedders.multilingual or embedders.primary

    def __call__(self, claims: list[str], passages: list[str]) -> np.ndarray:
        a = self.embedder.embed_documents(claims)
        b = self.embedder.embed_documents(passages)
        return a @ b.T


class ChatService:
    def __init__(
        self,
        settings: Settings,
        *,
        embedders: Embedders,
        retriever: HybridRetriever,
        llm: LLM,
        translator: LLM | None = None,
        rewriter: LLM | None = None,
        gate: GenerationGate | None = None,
    ) -> None:
        self.settings = settings
        self.embedders = embedders
        self.retriever = retriever
        self.llm = llm
        self.translator = translator
        self.rewriter = rewriter
        # Every LLM call of this service (answer, rewrite, translation) runs under this one gate.
        self.gate = gate or GenerationGate(
            slots=1 if settings.llm_backend == "local" else settings.hosted_concurrency,
            max_waiting=settings.max_waiting,
        )
        self.similarity = EmbeddingSimilarity(embedders)
        self.common_words = common_english_words()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ChatService:
        settings = settings or Settings()
        require_index(settings)  # before loading any model: a missing index is the commonest first mistake
        embedders = load_embedders(settings)
        retriever = HybridRetriever(settings, embedders)
        llm = load_llm(settings)
        # A second llama.cpp context on the same (memory-mapped) weights, so translating does not evict the
        # answer prompt's cached prefix.
        local = settings.llm_backend == "local"
        translator = load_llm(settings) if local else llm
        # A third context for follow-up rewriting, so that prompt does not evict the answer prefix either.
        rewriter = load_llm(settings) if local else llm
        return cls(settings, embedders=embedders, retriever=retriever, llm=llm, translator=translator,
                   rewriter=rewriter)

    def warmup(self) -> None:
        """Evaluate the fixed prompt prefixes once, so the first user does not pay for them."""
        with self.gate.hold():
            list(self.llm.stream(prompts.answer_messages(["(warm-up)"], "(warm-up)"), max_tokens=1))
            if self.translator is not None and self.translator is not self.llm:
                list(self.translator.stream(prompts.translate_answer_messages("Hello [1]."), max_tokens=1))
            if self.rewriter is not None and self.rewriter is not self.llm:
                list(self.rewriter.stream(prompts.rewrite_messages([("user", "Hi")], "(warm-up)"), max_tokens=1))

    # Documents -----------------------------------------------------------------------------------------------

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

    def standalone_question(self, question: str, history: list[Turn]) -> str:
        """The follow-up rewritten with the conversation into a question retrieval can answer alone."""
        if not history or self.rewriter is None:
            return question
        recent = [(t.role, _clip(MARKER_RE.sub("", t.content).strip(), HISTORY_TURN_CHARS))
                  for t in history[-HISTORY_TURNS:]]
        text = "".join(self.rewriter.stream(prompts.rewrite_messages(recent, question), max_tokens=80))
        text = text.strip().splitlines()[0].strip() if text.strip() else ""
        text = text.removeprefix("Standalone question:").strip().strip('"“”')
        # A rewrite in another language, or one that is really an answer, is worse than the user's words.
        if not text or len(text) > 3 * len(question) + 200 or detect_language(text) != detect_language(question):
            return question
        return text

    def to_chinese(self, answer: str) -> str | None:
        """The verified English answer in Chinese, or None when the translation changed a number or lost a
        citation marker (then the verified English answer is shown rather than an unchecked one)."""
        llm = self.translator or self.llm
        protected, slots = protect_for_translation(answer, self.common_words)
        text = "".join(llm.stream(prompts.translate_answer_messages(protected), max_tokens=200)).strip()
        if not text or detect_language(text) != "zh":
            return None
        restored = restore_translation(text, slots)
        if restored is None:
            return None
        text = restored
        if sorted(MARKER_RE.findall(text)) != sorted(MARKER_RE.findall(answer)):
            return None
        ours = extract_quantities(MARKER_RE.sub("", answer))
        theirs = extract_quantities(MARKER_RE.sub("", text))
        for q in ours:  # every number kept, with its "more than"/"less than"
            if not any(same_value(q.value, t.value) and (q.qualifier not in ("gt", "lt") or t.qualifier == q.qualifier)
                       for t in theirs):
                return None
        # Names must survive: a transliteration guessed by the model is worse than the English name.
        if not names_preserved(answer, text, self.common_words):
            return None
        return text

    def ask(self, question: str, *, history: Sequence[Turn | dict] | None = None, id: str | None = None,
            top_k: int | None = None, doc_ids: Sequence[str] | None = None) -> Answer:
        """The final answer of `ask_stream`; an `error` event is raised as a ChatbotError."""
        for event in self.ask_stream(question, history=history, id=id, top_k=top_k, doc_ids=doc_ids):
            if isinstance(event, AnswerEvent):
                return event.answer
            if isinstance(event, ErrorEvent):
                raise AnswerFailed(event)
        raise AnswerFailed(ErrorEvent(code="internal", message="No answer was produced.", status=500))

    def ask_stream(
        self, question: str, *, history: Sequence[Turn | dict] | None = None, id: str | None = None,
        top_k: int | None = None, doc_ids: Sequence[str] | None = None,
    ) -> Iterator[StreamEvent]:
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
        return self._events(question, turns, id, top_k, wanted, t0)

    def _events(self, question: str, history: list[Turn], id: str | None, top_k: int | None,
                doc_ids: frozenset[str] | None, t0: float) -> Iterator[StreamEvent]:
        try:
            yield from self._answer(question, history, id, top_k, doc_ids, t0)
        except ChatbotError as exc:
            yield ErrorEvent(code=exc.code, message=str(exc), status=exc.status_code)
        except Exception:  # noqa: BLE001 - the user gets a message, the log gets the trace
            log.exception("answering %r failed", question)
            yield ErrorEvent(code="internal", status=500,
                             message="Something went wrong while answering. The error was logged; please try again.")

    def _answer(self, question: str, history: list[Turn], id: str | None, top_k: int | None,
                doc_ids: frozenset[str] | None, t0: float) -> Iterator[StreamEvent]:
        timings: dict[str, float] = {}
        standalone = question
        if history:
            t_w = time.perf_counter()
            with self.gate.hold():
                standalone = self.standalone_question(question, history)
            timings["rewrite"] = _ms(t_w)
        rewritten = standalone != question
        language = detect_language(question)
        t_r = time.perf_counter()
        # Questions asking for several things (lists, two-part questions) get more evidence sentences.
        many = asks_for_several(standalone)
        retrieved = self.retriever.retrieve(
            standalone, top_k=top_k, doc_ids=doc_ids,
            evidence_sentences=self.settings.evidence_sentences_many if many else None,
        )
        timings["retrieve"] = _ms(t_r)
        passages = [Passage(i, e.doc_id, e.start, e.end, e.text, e.score)
                    for i, e in enumerate(retrieved.evidence, 1)]
        yield SourcesEvent(
            question=standalone, rewritten=rewritten, language=language, relevant=retrieved.relevant,
            sources=[self._source(p) for p in passages] if retrieved.relevant else [],
            chunks=[RetrievedChunk(doc_id=sc.chunk.doc_id, start=sc.chunk.start, end=sc.chunk.end,
                                   score=round(sc.score, 5)) for sc in retrieved.chunks],
        )
        shown = standalone if rewritten else None
        if not retrieved.relevant:
            timings["total"] = _ms(t0)
            yield AnswerEvent(answer=self._refusal(id, question, language, timings, shown))
            return

        texts = [p.text for p in passages]
        gaps = premise_gaps(standalone, texts)
        messages = prompts.answer_messages(texts, standalone, gaps)
        with self.gate.hold():
            t_g = time.perf_counter()
            pieces: list[str] = []
            for piece in self.llm.stream(messages, max_tokens=self.settings.max_answer_tokens):
                if not pieces:
                    timings["first_token"] = _ms(t0)
                pieces.append(piece)
                yield DraftEvent(delta=piece)
            timings["generate"] = _ms(t_g)

            t_v = time.perf_counter()
            check = verify_citations(
                "".join(pieces), passages, standalone, self.similarity,
                min_lexical=self.settings.min_lexical_support, min_similarity=self.settings.min_semantic_support,
                min_similarity_cross=self.settings.min_semantic_support_cross,
            )
            timings["verify"] = _ms(t_v)
            if not check.refused and not answers_question_type(standalone, check.answer):
                # Verified but beside the point: a number was asked for and none was given.
                check.refused = True
                check.unsupported = [*check.unsupported, check.answer]
            # A question built on a number no source states needs that number corrected: an answer that does
            # not state any number has not done so.
            if gaps and (check.refused or not extract_quantities(MARKER_RE.sub("", check.answer))):
                correction = self._premise_correction(language, gaps, passages)
                if correction is not None:
                    check = correction
            if check.refused:
                timings["total"] = _ms(t0)
                answer = self._refusal(id, question, language, timings, shown)
                answer.unsupported = check.unsupported
                yield AnswerEvent(answer=answer)
                return
            text = check.answer
            if language == "zh" and detect_language(text) == "en":
                t_t = time.perf_counter()
                text = self.to_chinese(check.answer) or check.answer
                timings["translate_answer"] = _ms(t_t)
        timings["total"] = _ms(t0)
        yield AnswerEvent(answer=Answer(
            id=id, question=question, answer=text, refused=False, language=language,
            citations=[self._citation(p) for p in check.passages],
            unsupported=check.unsupported, standalone_question=shown, timings_ms=timings,
        ))

    @staticmethod
    def _premise_correction(language: str, gaps: list[str], passages: list[Passage]) -> Verification | None:
        """The question states a number no source has, and the model gave no verified answer: quote the
        best-ranked evidence sentence that does state a number, so the user sees the documents' fact."""
        with_numbers = [p for p in passages if extract_quantities(p.text)]
        if not with_numbers:
            return None
        best = max(with_numbers, key=lambda p: p.score)
        text = prompts.premise_correction(language, gaps, best.text)
        return Verification(answer=text, passages=[Passage(1, best.doc_id, best.start, best.end, best.text,
                                                           best.score)])

    def _citation(self, p: Passage) -> Citation:
        doc = self.retriever.documents.get(p.doc_id)
        return Citation(n=p.n, doc_id=p.doc_id, source=doc.source if doc else "", title=doc.title if doc else "",
                        outlet=doc.outlet if doc else "", date=doc.date if doc else "",
                        start=p.start, end=p.end, text=p.text, score=round(p.score, 4))

    def _source(self, p: Passage) -> Source:
        doc = self.retriever.documents.get(p.doc_id)
        return Source(n=p.n, doc_id=p.doc_id, title=doc.title if doc else "", source=doc.source if doc else "",
                      outlet=doc.outlet if doc else "", date=doc.date if doc else "",
                      start=p.start, end=p.end, text=p.text, score=round(p.score, 4))

    @staticmethod
    def _refusal(id: str | None, question: str, language: str, timings: dict[str, float],
                 standalone: str | None = None) -> Answer:
        return Answer(id=id, question=question, answer=prompts.REFUSAL.get(language, prompts.REFUSAL["en"]),
                      refused=True, language=language, standalone_question=standalone, timings_ms=timings)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
