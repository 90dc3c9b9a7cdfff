"""ChatService: the one place the stages are wired together (validate, translate, retrieve, generate, verify)."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np

from chatbot import prompts
from chatbot.answer_cache import AnswerCache
from chatbot.config import Settings
from chatbot.corpus import detect_language
from chatbot.embeddings import Embedders, common_english_words, load_embedders
from chatbot.errors import (
    ChatbotError, DocumentNotFound, EmptyQuestion, HistoryTooLong, LLMUnavailable, QuestionTooLong,
)
from chatbot.followup import usable_rewrite
from chatbot.gate import GenerationGate
from chatbot.ingest import text_path
from chatbot.keyword import tokenize
from chatbot.llm import LLM, load_llm
from chatbot.markers import MARKER as MARKER_RE
from chatbot.markers import strip_markers
from chatbot.numbers import chinese_number, extract_quantities, same_value
from chatbot.premise import PremiseConflict, attribution_conflicts, premise_conflicts
from chatbot.query import Query, analyse_question
from chatbot.question_intent import addresses_focus, answers_question_type
from chatbot.retrieval import DocInfo, HybridRetriever, require_index
from chatbot.schemas import (
    Answer, AnswerEvent, Citation, DraftEvent, ErrorEvent, Evidence, RetrievedChunk, Source, SourcesEvent,
    StreamEvent, Turn,
)
from chatbot.translation_safety import (
    protect_for_translation, restore_translation, translation_keeps_facts, untranslated_words,
)
from chatbot.verification import (
    Passage, Verification, chinese_question_names_grounded, has_word, question_names_grounded,
    question_names_in_cited_documents, verify_citations,
)

log = logging.getLogger(__name__)

HISTORY_TURNS = 6  # earlier messages a follow-up is rewritten with
HISTORY_TURN_CHARS = 600  # each one cut to this length in the rewrite prompt
# Quotes after the best one, when the LLM did not answer, score at least this share of its score: measured on the
# corpus, the sentences below it were about something else than the question (Shanghai Electric's computing power
# quoted for China Taiping's model).
EXTRACTIVE_MIN_SHARE = 0.8
DISTINCTIVE_SHARE = 0.25  # a one-word name in at most this share of the indexed chunks names something particular


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
        self.cache = AnswerCache(settings.answer_cache_size)
        self._static_version = _fingerprint(settings, llm)

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

    def warmup(self) -> dict[str, str]:
        """Evaluate the fixed prompt prefixes once, so the first user does not pay for them; a local model
        loads them from the cache folder when a previous start saved them (settings.prefix_state)."""
        state_dir = self.settings.cache_dir / "kv" if self.settings.prefix_state else None
        done: dict[str, str] = {}

        def warm(name: str, llm: LLM, messages: list[dict[str, str]]) -> None:
            method = getattr(llm, "warm", None)
            if method is not None:
                done[name] = method(messages, state_dir)
                return
            try:
                list(llm.stream(messages, max_tokens=1))
                done[name] = "evaluated"
            except LLMUnavailable as exc:
                # A hosted LLM that is down (or still starting) must not keep the service from starting:
                # questions are answered with quotes until it answers.
                log.warning("warming the %s prompt failed: %s", name, exc)
                done[name] = "unavailable"

        with self.gate.hold():
            warm("answer", self.llm, prompts.answer_messages(["(warm-up)"], "(warm-up)"))
            if self.translator is not None and self.translator is not self.llm:
                if self.settings.query_translation:
                    warm("translate", self.translator, prompts.translate_question_messages("(warm-up)", "zh"))
                else:
                    warm("translate", self.translator, prompts.translate_answer_messages("Hello [1]."))
            if self.rewriter is not None and self.rewriter is not self.llm:
                warm("rewrite", self.rewriter, prompts.rewrite_messages([("user", "Hi")], "(warm-up)"))
        return done

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
        if usable_rewrite(text, question):
            return text
        return question  # an answer, a statement or another language is worse than the user's words

    def _bridges_languages(self, query: Query, doc_ids: frozenset[str] | None) -> bool:
        """A question over documents written (also) in the other language is searched in both languages: the
        multilingual embedder alone places a Chinese question near the right English passage (and the reverse)
        too rarely, and the English embedder and the keyword index match only their own language."""
        if not self.settings.query_translation:
            return False
        docs = self.retriever.documents
        scope = docs.values() if doc_ids is None else [docs[d] for d in doc_ids if d in docs]
        return any((d.language or "en") != query.language for d in scope)

    def translate_question(self, question: str, language: str | None = None) -> str | None:
        """The question in English (Chinese for an English one), or None when the model's reply is not one.
        `language`: the question's, when the caller's Query already knows it."""
        language = language or detect_language(question)
        llm = self.translator or self.llm
        text = "".join(llm.stream(prompts.translate_question_messages(question, language), max_tokens=60)).strip()
        text = text.splitlines()[0].strip() if text else ""
        if not text or detect_language(text) == language or len(text) > 4 * len(question) + 40:
            return None
        return text

    def to_chinese(self, answer: str) -> str | None:
        """The verified English answer in Chinese, or None when the translation changed a number or lost a
        citation marker or a name (then the verified English answer is shown rather than an unchecked one)."""
        llm = self.translator or self.llm
        protected, slots = protect_for_translation(answer, self.common_words)
        text = "".join(llm.stream(prompts.translate_answer_messages(protected), max_tokens=200)).strip()
        if not text or detect_language(text) != "zh":
            return None
        restored = restore_translation(text, slots)
        if restored is None or not translation_keeps_facts(answer, restored, self.common_words):
            return None
        return restored

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
        key = self.cache.key(self._version(), question, history, doc_ids, top_k)
        hit = self.cache.get(key)
        if hit is not None:  # a repeated question: the verified answer it got, in milliseconds
            yield hit.sources
            took = _ms(t0)
            yield AnswerEvent(answer=hit.answer.model_copy(update={"id": id, "timings_ms": {"cache": took,
                                                                                            "total": took}}))
            return
        timings: dict[str, float] = {}
        standalone = question
        # Set when the LLM did not answer (unreachable, timed out): the question is then answered with quotes.
        failure: LLMUnavailable | None = None
        if history:
            t_w = time.perf_counter()
            with self.gate.hold():
                try:
                    standalone = self.standalone_question(question, history)
                except LLMUnavailable as exc:  # searched as the user wrote it
                    failure = exc
            timings["rewrite"] = _ms(t_w)
        rewritten = standalone != question
        query = analyse_question(standalone)  # analysed once; every stage below receives it
        language = query.language
        translation = None
        if failure is None and self._bridges_languages(query, doc_ids):
            t_q = time.perf_counter()
            with self.gate.hold():
                try:
                    translation = self.translate_question(query.text, query.language)
                except LLMUnavailable as exc:
                    failure = exc
            timings["translate_question"] = _ms(t_q)
        t_r = time.perf_counter()
        retrieved = self.retriever.retrieve(query, top_k=top_k, doc_ids=doc_ids, translation=translation)
        timings["retrieve"] = _ms(t_r)
        passages = [_passage(i, e) for i, e in enumerate(retrieved.evidence, 1)]
        sources = SourcesEvent(
            question=standalone, rewritten=rewritten, language=language, relevant=retrieved.relevant,
            sources=[self._source(p) for p in passages] if retrieved.relevant else [],
            chunks=[RetrievedChunk(doc_id=sc.chunk.doc_id, start=sc.chunk.start, end=sc.chunk.end,
                                   score=round(sc.score, 5)) for sc in retrieved.chunks],
        )
        yield sources
        shown = standalone if rewritten else None
        if not retrieved.relevant:
            timings["total"] = _ms(t0)
            answer = self._refusal(id, question, language, timings, shown)
            self.cache.put(key, sources, answer)
            yield AnswerEvent(answer=answer)
            return

        # A Chinese question's numbers are compared with English passages through its English translation, where
        # the words around each number can be matched.
        premise_query = analyse_question(translation) if translation and query.language != "en" else query
        conflicts = [c for c in (_asked_as_written(c, premise_query, query)
                                 for c in premise_conflicts(premise_query, passages, self.similarity)) if c]
        conflicts += attribution_conflicts(query, passages, self._text_or_none)
        messages = prompts.answer_messages([p.shown for p in passages], standalone,
                                           [(c.asked, c.stated) for c in conflicts])
        if language == "zh" and self.settings.chinese_answers == "translate":
            messages[-1]["content"] += "\n(Answer in English.)"
        if failure is not None:
            yield self._extractive(id, question, language, passages, conflicts, timings, t0, shown, failure)
            return
        with self.gate.hold():
            t_g = time.perf_counter()
            pieces: list[str] = []
            try:
                for piece in self.llm.stream(messages, max_tokens=self.settings.max_answer_tokens):
                    if not pieces:
                        timings["first_token"] = _ms(t0)
                    pieces.append(piece)
                    yield DraftEvent(delta=piece)
            except LLMUnavailable as exc:
                # The drafts so far (if any) are replaced by the answer event, as every draft is: half an answer
                # is never verified, so it is never shown as the answer. The notice says it was cut off.
                timings["generate"] = _ms(t_g)
                yield self._extractive(id, question, language, passages, conflicts, timings, t0, shown, exc,
                                       cut_off=bool(pieces))
                return
            timings["generate"] = _ms(t_g)

            t_v = time.perf_counter()
            known = " ".join(sc.chunk.text for sc in retrieved.chunks)
            check = self._verify("".join(pieces), passages, query, known)
            # A question whose number the documents state differently about the same thing gets that number:
            # an answer that does not state it has not corrected the premise. A quoted term given to the wrong
            # name is always answered with the correction: the model copies the sentence without saying "not".
            if conflicts and (check.refused or not _states_any(check.answer, conflicts)
                              or any(c.term for c in conflicts)):
                check = self._premise_correction(language, conflicts, passages, check)
            timings["verify"] = _ms(t_v)
            if check.refused and not conflicts and self.settings.second_try:
                t_s = time.perf_counter()
                try:
                    second = self._second_try(query, passages, standalone, translation, top_k, doc_ids, known)
                except LLMUnavailable as exc:  # the first answer's refusal stands
                    log.warning("the second try failed: %s", exc)
                    second = None
                timings["second_try"] = _ms(t_s)
                if second is not None:  # what follows (translation) works on the second try's evidence
                    check, passages, messages = second
            if check.refused:
                timings["total"] = _ms(t0)
                answer = self._refusal(id, question, language, timings, shown)
                answer.unsupported = check.unsupported
                self.cache.put(key, sources, answer)
                yield AnswerEvent(answer=answer)
                return
            text = check.answer
            try:
                if language == "zh" and detect_language(text) == "zh" and untranslated_words(
                        text, [p.context_text or p.text for p in passages]):
                    # A half-translated Chinese answer ("上海 Electric"): answer in English and translate that,
                    # with names and numbers protected; keep the verified Chinese answer if that fails.
                    t_t = time.perf_counter()
                    english = self._english_answer(messages, passages, query, known)
                    translated = self.to_chinese(english.answer) if english is not None else None
                    if english is not None and translated:
                        check, text = english, translated
                    timings["translate_answer"] = _ms(t_t)
                elif language == "zh" and detect_language(text) == "en":
                    t_t = time.perf_counter()
                    text = self.to_chinese(check.answer) or check.answer
                    timings["translate_answer"] = _ms(t_t)
            except LLMUnavailable as exc:  # the verified answer stands, untranslated
                log.warning("translating the answer failed: %s", exc)
        timings["total"] = _ms(t0)
        answer = Answer(
            id=id, question=question, answer=text, refused=False, language=language,
            citations=[self._citation(p) for p in check.passages],
            unsupported=check.unsupported, standalone_question=shown, timings_ms=timings,
        )
        self.cache.put(key, sources, answer)
        yield AnswerEvent(answer=answer)

    def _extractive(self, id: str | None, question: str, language: str, passages: list[Passage],
                    conflicts: list[PremiseConflict], timings: dict[str, float], t0: float, standalone: str | None,
                    failure: LLMUnavailable, *, cut_off: bool = False) -> AnswerEvent:
        """The LLM did not answer: the best evidence sentences, quoted word for word and each cited, labelled
        extractive (with a notice saying why: `cut_off` when it stopped after drafts were streamed) instead of
        an error. A question whose number the documents state differently gets the quote that states theirs.
        Not cached: the LLM may answer the next time."""
        log.warning("the LLM did not answer (%s); answering with quotes from the documents", failure)
        if conflicts:
            correction = self._premise_correction(language, conflicts, passages, Verification("", []))
            cited, text = correction.passages, correction.answer
            if cited[0].text not in text:  # a template that does not quote (the Chinese one): the quote follows
                text += "\n" + prompts.extractive_answer(language, [cited[0].text])
        else:
            ranked = sorted(passages, key=lambda p: -p.score)
            best = [ranked[0], *(p for p in ranked[1 : self.settings.extractive_quotes]
                                 if p.score >= EXTRACTIVE_MIN_SHARE * ranked[0].score)]
            cited = [_whole_sentence(i, p) for i, p in enumerate(best, 1)]
            text = prompts.extractive_answer(language, [p.text for p in cited])
        timings["total"] = _ms(t0)
        return AnswerEvent(answer=Answer(
            id=id, question=question, answer=text, refused=False, language=language,
            citations=[self._citation(p) for p in cited], standalone_question=standalone, mode="extractive",
            notice=prompts.extractive_notice(language, cut_off=cut_off), timings_ms=timings))

    def _verify(self, draft: str, passages: list[Passage], query: Query, known: str = "") -> Verification:
        """The draft's verified sentences. An answer beside the point counts as unsupported: a number was asked
        for and none was given, it speaks of something other than what the question asks about, or its sources
        do not mention the name the question asks about (`known`: the retrieved text, where names are looked up)."""
        s = self.settings
        check = verify_citations(draft, passages, query, self.similarity, min_lexical=s.min_lexical_support,
                                 min_similarity=s.min_semantic_support,
                                 min_similarity_cross=s.min_semantic_support_cross)
        if not check.refused and query.language == "en" and detect_language(check.answer) != "en":
            # An English question answered in Chinese: the model followed a Chinese source, usually about
            # something else than the question names.
            check.refused = True
            check.unsupported = [*check.unsupported, strip_markers(check.answer).strip()]
        if not check.refused and not (answers_question_type(query, check.answer) and addresses_focus(
                query, check.answer, [p.shown for p in check.passages], self.similarity)
                and question_names_grounded(query, check.answer, check.passages, known, self._text_or_none)
                and chinese_question_names_grounded(query, check.passages, known, self._text_or_none,
                                                    self._distinctive)
                and question_names_in_cited_documents(query, check.answer, check.passages, self._text_or_none)):
            check.refused = True
            check.unsupported = [*check.unsupported, strip_markers(check.answer).strip()]
        return check

    def _second_try(self, query: Query, passages: list[Passage], standalone: str, translation: str | None,
                    top_k: int | None, doc_ids: frozenset[str] | None,
                    known: str) -> tuple[Verification, list[Passage], list[dict[str, str]]] | None:
        """The question answered again from the next-best evidence (the sentences the first prompt did not show),
        verified the same way; returns that verification, evidence and prompt, or None when there is no such
        evidence or that answer is refused too. For an answer whose verified part missed the question (a
        neighbouring clause), or a model that found nothing in the first sentences. The caller holds the gate."""
        skip = frozenset((p.doc_id, p.context_start if p.context_start is not None else p.start) for p in passages)
        more = self.retriever.retrieve(query, top_k=top_k, doc_ids=doc_ids, translation=translation,
                                       skip_evidence=skip)
        if not more.relevant or not more.evidence:
            return None
        others = [_passage(i, e) for i, e in enumerate(more.evidence, 1)]
        messages = prompts.answer_messages([p.shown for p in others], standalone, [])
        check = self._answer_verified(messages, others, query, known)
        return None if check.refused else (check, others, messages)

    def _english_answer(self, messages: list[dict[str, str]], passages: list[Passage], query: Query,
                        known: str) -> Verification | None:
        """The same prompt answered in English, verified; None when that answer is not verified either."""
        english = [*messages[:-1], {"role": "user", "content": messages[-1]["content"] + "\n(Answer in English.)"}]
        check = self._answer_verified(english, passages, query, known)
        return None if check.refused or detect_language(check.answer) != "en" else check

    def _answer_verified(self, messages: list[dict[str, str]], passages: list[Passage], query: Query,
                         known: str) -> Verification:
        """A whole answer to `messages` (not streamed to the user), verified against `passages`."""
        draft = "".join(self.llm.stream(messages, max_tokens=self.settings.max_answer_tokens))
        return self._verify(draft, passages, query, known)

    def _distinctive(self, word: str) -> bool:
        """Does the word name something particular: few indexed chunks use it (a company, not the city)?"""
        terms = tokenize(word)
        return bool(terms) and self.retriever.keyword.chunk_share(terms[0]) <= DISTINCTIVE_SHARE

    def _text_or_none(self, doc_id: str) -> str | None:
        try:
            return self.document_text(doc_id)
        except DocumentNotFound:
            return None

    def _version(self) -> str:
        """What a cached answer depends on besides the question: settings, model, prompts, and the index."""
        r = self.retriever
        return f"{self._static_version}|{getattr(r, 'generation', '')}|{getattr(r, 'built_at', '')}"

    @staticmethod
    def _premise_correction(language: str, conflicts: list[PremiseConflict], passages: list[Passage],
                            check: Verification) -> Verification:
        """The model did not correct the question's number: quote the passage that states the documents' number
        about the same thing. What the model wrote and verification removed stays listed as unsupported."""
        conflict = conflicts[0]
        p = next(p for p in passages if p.n == conflict.passage)
        stated = conflict.stated
        if language == "zh" and re.search(r"[A-Za-z]", stated):
            found = extract_quantities(stated)
            stated = chinese_number(found[0]) if found else stated
        start, end = p.start, p.end
        documents = [q.value for q in extract_quantities(conflict.stated)]
        for c_start, c_end in p.clauses:  # the clause that states the documents' number (or name)
            clause = p.text[c_start - p.start : c_end - p.start]
            if any(same_value(q.value, v) for q in extract_quantities(clause) for v in documents) or (
                    not documents and has_word(clause, conflict.stated)):
                start, end = c_start, c_end
                break
        if conflict.term:  # a name: the quote runs on to the clause with the term the question gave another
            for c_start, c_end in p.clauses:
                if c_end > start and conflict.term.lower() in p.text[c_start - p.start : c_end - p.start].lower():
                    end = max(end, c_end)
                    break
        quote = p.text[start - p.start : end - p.start]
        text = prompts.premise_correction(language, conflict.asked, stated, quote)
        cited = Passage(1, p.doc_id, start, end, quote, p.score, p.context_start, p.context_end, p.context_text)
        return Verification(answer=text, passages=[cited], unsupported=check.unsupported)

    def _citation(self, p: Passage) -> Citation:
        doc = self.retriever.documents.get(p.doc_id)
        return Citation(n=p.n, doc_id=p.doc_id, source=doc.source if doc else "", title=doc.title if doc else "",
                        outlet=doc.outlet if doc else "", date=doc.date if doc else "",
                        start=p.start, end=p.end, text=p.text, score=round(p.score, 4),
                        context_start=p.context_start, context_end=p.context_end)

    def _source(self, p: Passage) -> Source:
        doc = self.retriever.documents.get(p.doc_id)
        return Source(n=p.n, doc_id=p.doc_id, title=doc.title if doc else "", source=doc.source if doc else "",
                      outlet=doc.outlet if doc else "", date=doc.date if doc else "",
                      start=p.start, end=p.end, text=p.text, score=round(p.score, 4),
                      context_start=p.context_start, context_end=p.context_end)

    @staticmethod
    def _refusal(id: str | None, question: str, language: str, timings: dict[str, float],
                 standalone: str | None = None) -> Answer:
        return Answer(id=id, question=question, answer=prompts.REFUSAL.get(language, prompts.REFUSAL["en"]),
                      refused=True, language=language, standalone_question=standalone, timings_ms=timings)


def _passage(n: int, e: Evidence) -> Passage:
    return Passage(n, e.doc_id, e.start, e.end, e.text, e.score, e.context_start, e.context_end, e.context_text,
                   e.prompt_text if e.prompt_text != e.text else "", e.head_start, e.head_end, e.head_text,
                   list(e.clauses))


def _whole_sentence(n: int, p: Passage) -> Passage:
    """The evidence passage widened to its whole sentence (a clause quoted alone can read as a fragment)."""
    if p.context_text and p.context_start is not None and p.context_end is not None:
        return Passage(n, p.doc_id, p.context_start, p.context_end, p.context_text, p.score, p.context_start,
                       p.context_end, p.context_text)
    return Passage(n, p.doc_id, p.start, p.end, p.text, p.score, p.start, p.end, p.text)


def _asked_as_written(conflict: PremiseConflict, searched: Query, asked: Query) -> PremiseConflict | None:
    """A premise found in the question's translation, named the way the user wrote it (their "150万", not the
    translation's "150 million"): the number at the same place among the question's numbers, or of equal value.
    None when the user wrote no such number: the translation added it ("Which of the two …" for 哪个), so it is
    no premise of theirs."""
    if searched is asked:
        return conflict
    found = [q for q in searched.quantities if searched.text[q.start : q.end] == conflict.asked]
    if not found:
        return conflict
    same = [q for q in asked.quantities if same_value(q.value, found[0].value)]
    if not same and len(asked.quantities) == len(searched.quantities):
        same = [asked.quantities[searched.quantities.index(found[0])]]
    return replace(conflict, asked=asked.text[same[0].start : same[0].end]) if same else None


def _states_any(answer: str, conflicts: list[PremiseConflict]) -> bool:
    """Does the answer state a number (or name) the documents give for what the question got wrong?"""
    text = strip_markers(answer)
    stated = [q.value for c in conflicts for q in extract_quantities(c.stated)]
    names = [" ".join(c.stated.split()[:2]) for c in conflicts if not extract_quantities(c.stated)]
    return any(same_value(q.value, v) for q in extract_quantities(text) for v in stated) or any(
        has_word(text, n) for n in names)


def _fingerprint(settings: Settings, llm: LLM) -> str:
    """Settings, model and prompt files: a cached answer is only valid while all three are unchanged."""
    h = hashlib.sha256(settings.model_dump_json().encode())
    h.update(getattr(llm, "name", type(llm).__name__).encode())
    for path in sorted(prompts.PROMPT_DIR.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
