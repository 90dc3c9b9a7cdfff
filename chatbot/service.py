"""ChatService: the one place the stages are wired together (validate, translate, retrieve, generate, verify)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

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
from chatbot.errors import EmptyQuestion, QuestionTooLong
from chatbot.llm import LLM, load_llm
from chatbot.retrieval import HybridRetriever, Retrieved, require_index
from chatbot.schemas import Answer, Citation


@dataclass
class Token:
    """A piece of the answer as the model writes it (before verification)."""

    text: str


@dataclass
class Retrieval:
    """What retrieval found, before generation starts (the eval suite scores it)."""

    retrieved: Retrieved


@dataclass
class Final:
    answer: Answer


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
    ) -> None:
        self.settings = settings
        self.embedders = embedders
        self.retriever = retriever
        self.llm = llm
        self.translator = translator
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
        translator = load_llm(settings) if settings.llm_backend == "local" else llm
        return cls(settings, embedders=embedders, retriever=retriever, llm=llm, translator=translator)

    def warmup(self) -> None:
        """Evaluate the fixed prompt prefixes once, so the first user does not pay for them."""
        list(self.llm.stream(prompts.answer_messages(["(warm-up)"], "(warm-up)"), max_tokens=1))
        if self.translator is not None:
            list(self.translator.stream(prompts.translate_answer_messages("Hello [1]."), max_tokens=1))

    def validate(self, question: str | None) -> str:
        question = (question or "").strip()
        if not question:
            raise EmptyQuestion()
        if len(question) > self.settings.max_question_chars:
            raise QuestionTooLong(len(question), self.settings.max_question_chars)
        return question

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

    def ask(self, question: str, *, id: str | None = None, top_k: int | None = None) -> Answer:
        final = None
        for event in self.ask_stream(question, id=id, top_k=top_k):
            if isinstance(event, Final):
                final = event.answer
        assert final is not None
        return final

    def ask_stream(
        self, question: str, *, id: str | None = None, top_k: int | None = None
    ) -> Iterator[Token | Retrieval | Final]:
        t0 = time.perf_counter()
        question = self.validate(question)
        language = detect_language(question)
        timings: dict[str, float] = {}
        t_r = time.perf_counter()
        # Questions asking for several things (lists, two-part questions) get more evidence sentences.
        many = asks_for_several(question)
        retrieved = self.retriever.retrieve(
            question, top_k=top_k,
            evidence_sentences=self.settings.evidence_sentences_many if many else None,
        )
        timings["retrieve"] = _ms(t_r)
        yield Retrieval(retrieved)
        if not retrieved.relevant:
            timings["total"] = _ms(t0)
            yield Final(self._refusal(id, question, language, timings))
            return

        passages = [Passage(i, e.doc_id, e.start, e.end, e.text, e.score)
                    for i, e in enumerate(retrieved.evidence, 1)]
        texts = [p.text for p in passages]
        gaps = premise_gaps(question, texts)
        messages = prompts.answer_messages(texts, question, gaps)
        t_g = time.perf_counter()
        pieces: list[str] = []
        for piece in self.llm.stream(messages, max_tokens=self.settings.max_answer_tokens):
            if not pieces:
                timings["first_token"] = _ms(t0)
            pieces.append(piece)
            yield Token(piece)
        timings["generate"] = _ms(t_g)

        t_v = time.perf_counter()
        check = verify_citations(
            "".join(pieces), passages, question, self.similarity,
            min_lexical=self.settings.min_lexical_support, min_similarity=self.settings.min_semantic_support,
            min_similarity_cross=self.settings.min_semantic_support_cross,
        )
        timings["verify"] = _ms(t_v)
        if not check.refused and not answers_question_type(question, check.answer):
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
            answer = self._refusal(id, question, language, timings)
            answer.unsupported = check.unsupported
            yield Final(answer)
            return
        text = check.answer
        if language == "zh" and detect_language(text) == "en":
            t_t = time.perf_counter()
            text = self.to_chinese(check.answer) or check.answer
            timings["translate_answer"] = _ms(t_t)
        timings["total"] = _ms(t0)
        yield Final(Answer(
            id=id, question=question, answer=text, refused=False, language=language,
            citations=[self._citation(p, retrieved) for p in check.passages],
            unsupported=check.unsupported, timings_ms=timings,
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

    def _citation(self, p: Passage, retrieved: Retrieved) -> Citation:
        doc = self.retriever.documents.get(p.doc_id)
        return Citation(n=p.n, doc_id=p.doc_id, source=doc.source if doc else "", title=doc.title if doc else "",
                        start=p.start, end=p.end, text=p.text, score=round(p.score, 4))

    @staticmethod
    def _refusal(id: str | None, question: str, language: str, timings: dict[str, float]) -> Answer:
        return Answer(id=id, question=question, answer=prompts.REFUSAL.get(language, prompts.REFUSAL["en"]),
                      refused=True, language=language, timings_ms=timings)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
