"""Evidence selection and the relevance floor: rank the sentences of the retrieved chunks and pick the few the
prompt shows, each with its clauses (what a citation points at)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from chatbot.clauses import split_clauses
from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.keyword import bridge_tokens, tokenize
from chatbot.query import Query
from chatbot.schemas import Chunk, Evidence, ScoredChunk
from chatbot.text import cjk_count

class SentenceVectors(Protocol):
    vectors: dict[str, dict[str, np.ndarray]]
    row: dict[tuple[str, int], int]


@dataclass
class _Candidate:
    doc_id: str
    start: int
    end: int
    text: str
    dense: float
    score: float


class EvidenceSelector:
    def __init__(self, settings: Settings, embedders: Embedders) -> None:
        self.settings = settings
        self.embedders = embedders

    @property
    def _main(self) -> str:
        multi = self.embedders.multilingual
        return multi.name if multi is not None else self.embedders.primary.name

    def _weight(self, name: str) -> float:
        return 1.0 if name == self._main else self.settings.secondary_embedder_weight

    def select(
        self, query: Query, queries: list[str], chunks: list[ScoredChunk], query_vectors: list[dict[str, np.ndarray]],
        sentences: SentenceVectors, limit: int | None = None,
    ) -> tuple[list[Evidence], dict[str, float]]:
        """The prompt's evidence, in document order, and each embedder's best sentence cosine (the relevance
        floor is tested on those)."""
        s = self.settings
        candidates, best = self._sentences(queries, chunks, query_vectors, sentences)
        for c in candidates if query.quoted else ():  # a term the question quotes: its sentences come first
            if any(term.lower() in c.text.lower() for term in query.quoted):
                c.score += s.quoted_bonus
        limit = limit or (s.evidence_sentences_many if query.several else s.evidence_sentences)
        budget = s.evidence_token_budget * limit / s.evidence_sentences
        picked = _pick(sorted(candidates, key=lambda c: -c.score), limit, budget, lambda c: c.text)
        # The model reads whole sentences; a claim still cites the clauses of its sentence that state it.
        evidence = [Evidence(doc_id=c.doc_id, start=c.start, end=c.end, text=c.text, score=c.score,
                             context_start=c.start, context_end=c.end, context_text=c.text,
                             clauses=[(x.start, x.end) for x in split_clauses(c.text, c.start)]) for c in picked]
        return sorted(evidence, key=lambda e: (e.doc_id, e.start)), best

    def _sentences(
        self, queries: list[str], chunks: list[ScoredChunk], query_vectors: list[dict[str, np.ndarray]],
        sentences: SentenceVectors,
    ) -> tuple[list[_Candidate], dict[str, float]]:
        """A sentence's score is its best weighted cosine over the query texts, plus word overlap with the
        question and a small bonus for the rank of its chunk."""
        q_terms: set[str] = set().union(*(tokenize(q) for q in queries))
        seen: set[tuple[str, int]] = set()
        out: list[_Candidate] = []
        best: dict[str, float] = {}
        for rank, sc in enumerate(chunks):
            chunk = sc.chunk
            vecs = sentences.vectors.get(chunk.doc_id, {})
            for sent in chunk.sentences:
                key = (chunk.doc_id, sent.start)
                if key in seen:
                    continue
                seen.add(key)
                i = sentences.row.get(key)
                text = chunk.text[sent.start - chunk.start : sent.end - chunk.start]
                if _title_like(text):
                    continue
                dense = 0.0
                if i is not None:
                    for qv in query_vectors:
                        total = 0.0
                        for name, vec in qv.items():
                            if name in vecs:
                                cos = float(vecs[name][i] @ vec)
                                total += cos * self._weight(name)
                                best[name] = max(best.get(name, 0.0), cos)
                        dense = max(dense, total)
                score = dense + 0.01 * (len(chunks) - rank)
                if q_terms:
                    score += self.settings.lexical_weight * len(q_terms & set(tokenize(text))) / len(q_terms)
                out.append(_Candidate(chunk.doc_id, sent.start, sent.end, text, dense, score))
        return out, best

    def relevant(self, query: Query, chunks: list[ScoredChunk], best: dict[str, float],
                 tokens_of: Callable[[Chunk], frozenset[str]], translations: list[str] | None = None) -> bool:
        """The relevance floor. No single signal separates off-topic questions from on-topic ones, so any one
        of three suffices:
        - the multilingual embedder's best sentence cosine, or the English one's for English questions;
        - the share of the question's words found in the retrieved chunks;
        - for Chinese questions, a "bridge" match: a transliterated name or a number that the chunks contain."""
        s = self.settings
        multi = self.embedders.multilingual
        if multi is not None and best.get(multi.name, 0.0) >= s.relevance_floor:
            return True
        if (query.language == "en" or translations) and best.get(self.embedders.primary.name, 0.0) >= s.relevance_floor_english:
            return True
        chunk_tokens: set[str] = set()
        for sc in chunks:
            chunk_tokens |= tokens_of(sc.chunk)
        words = set(query.latin_words)
        if not words and translations:  # a Chinese question: the words of its English translation
            words = {t for text in translations for t in tokenize(text) if t.isascii() and not t.isdigit()}
        if words and len(words & chunk_tokens) / len(words) >= s.relevance_min_word_share:
            return True
        if query.language != "en":
            bridges = {t for t in bridge_tokens(query.text) if t.startswith("#") or len(t) >= 5}
            return bool(bridges & chunk_tokens)
        return False


def _pick(ranked: list, limit: int, budget: float, shown: Callable) -> list:
    """The best items that fit: at most `limit`, within `budget` tokens (the first always fits)."""
    chosen: list = []
    for item in ranked:
        if len(chosen) >= limit:
            break
        cost = token_estimate(shown(item))
        if chosen and cost > budget:
            continue
        chosen.append(item)
        budget -= cost
    return chosen


def _title_like(text: str) -> bool:
    """A heading ("Marlow Chess Club"): too short to state a fact, it only takes a place in the prompt."""
    if re.search(r"\d", text):
        return False
    cjk = cjk_count(text)
    if cjk > len(text) / 3:
        return cjk < 8
    return len(text.split()) < 4


def token_estimate(text: str) -> int:
    cjk = cjk_count(text)
    return int(cjk * 0.8 + (len(text) - cjk) / 4) + 4
