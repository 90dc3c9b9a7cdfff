"""Evidence selection and the relevance floor: rank the sentences of the retrieved chunks and pick the few the
prompt shows, each with its clauses (what a citation points at). With evidence_unit="trimmed" the best sentences
are split into clauses, scored against the question, and shown cut to the clauses that matter."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from chatbot.clauses import Clause, sentence_head, split_clauses
from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.keyword import bridge_tokens, tokenize
from chatbot.names import name_runs
from chatbot.query import Query
from chatbot.schemas import Chunk, Evidence, ScoredChunk
from chatbot.text import cjk_count

LEXICAL_WEIGHT = 0.15  # a question whose every word is in the text gains this much over its cosine
SECONDARY_WEIGHT = 0.5  # the English embedder's cosine counts half of the multilingual one's
SENTENCE_WEIGHT = 0.3  # a clause inherits this share of its sentence's cosine (the sentence is its context)
QUOTED_BONUS = 1.0  # more than any cosine: a sentence that contains a term the question quotes
CACHE_LIMIT = 50_000  # clause vectors kept in memory


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


@dataclass
class _ClauseCandidate:
    sentence: _Candidate
    start: int
    end: int
    text: str
    head: tuple[int, int] | None  # absolute span of the subject shown before the clause
    index: int = 0  # position among its sentence's clauses
    siblings: list[Clause] = field(default_factory=list)  # all clauses of its sentence
    score: float = 0.0

    @property
    def head_text(self) -> str:
        if self.head is None:
            return ""
        s = self.sentence
        return s.text[self.head[0] - s.start : self.head[1] - s.start]

    @property
    def shown(self) -> str:
        return f"{self.head_text} … {self.text}" if self.head else self.text


class EvidenceSelector:
    def __init__(self, settings: Settings, embedders: Embedders) -> None:
        self.settings = settings
        self.embedders = embedders
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def _main(self) -> str:
        multi = self.embedders.multilingual
        return multi.name if multi is not None else self.embedders.primary.name

    def _weight(self, name: str) -> float:
        return 1.0 if name == self._main else SECONDARY_WEIGHT

    def select(
        self, query: Query, queries: list[str], chunks: list[ScoredChunk], query_vectors: list[dict[str, np.ndarray]],
        sentences: SentenceVectors, limit: int | None = None, skip: frozenset[tuple[str, int]] = frozenset(),
    ) -> tuple[list[Evidence], dict[str, float]]:
        """The prompt's evidence, in document order, and each embedder's best sentence cosine (the relevance
        floor is tested on those). `skip`: sentences (doc_id, start) not to pick again (a second try)."""
        candidates, best = self._sentences(queries, chunks, query_vectors, sentences)
        candidates = [c for c in candidates if (c.doc_id, c.start) not in skip]
        for c in candidates if query.quoted else ():  # a term the question quotes: its sentences come first
            if any(term.lower() in c.text.lower() for term in query.quoted):
                c.score += QUOTED_BONUS
        s = self.settings
        if s.evidence_unit == "sentence":
            limit = limit or (s.evidence_sentences_many if query.several else s.evidence_sentences)
            budget = s.evidence_token_budget * limit / s.evidence_sentences
            picked = _pick(sorted(candidates, key=lambda c: -c.score), limit, budget, lambda c: c.text)
            # The model reads whole sentences; a claim still cites the clauses of its sentence that state it.
            evidence = [Evidence(doc_id=c.doc_id, start=c.start, end=c.end, text=c.text, score=c.score,
                                 context_start=c.start, context_end=c.end, context_text=c.text,
                                 clauses=[(x.start, x.end) for x in split_clauses(c.text, c.start)]) for c in picked]
            return sorted(evidence, key=lambda e: (e.doc_id, e.start)), best
        if s.evidence_unit == "trimmed":
            limit = limit or (s.evidence_sentences_many if query.several else s.evidence_sentences)
            top = sorted(candidates, key=lambda c: -c.score)[: s.clause_sentences]
            clauses = self._score_clauses(query, queries, top, query_vectors)
            budget = s.evidence_trimmed_budget * limit / s.evidence_sentences
            return _trimmed(query, clauses, limit, budget), best
        raise ValueError(f"Unknown evidence unit {s.evidence_unit!r}")

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
                    score += LEXICAL_WEIGHT * len(q_terms & set(tokenize(text))) / len(q_terms)
                out.append(_Candidate(chunk.doc_id, sent.start, sent.end, text, dense, score))
        return out, best

    def _score_clauses(self, query: Query, queries: list[str], top: list[_Candidate],
                       query_vectors: list[dict[str, np.ndarray]]) -> list[_ClauseCandidate]:
        clauses: list[_ClauseCandidate] = []
        for sent in top:
            head = sentence_head(sent.text)
            siblings = split_clauses(sent.text, sent.start)
            for i, c in enumerate(siblings):
                shown_head = None
                if head is not None and c.start >= sent.start + head[1]:
                    shown_head = (sent.start + head[0], sent.start + head[1])
                text = sent.text[c.start - sent.start : c.end - sent.start]
                clauses.append(_ClauseCandidate(sent, c.start, c.end, text, shown_head, i, siblings))
        if not clauses:
            return []
        names = set().union(*(qv.keys() for qv in query_vectors)) if query_vectors else set()
        vectors = {name: self._embed(name, [c.shown for c in clauses]) for name in names}
        q_terms: set[str] = set().union(*(tokenize(q) for q in queries))
        q_bridge = {t for q in queries for t in bridge_tokens(q) if t.startswith("#") or len(t) >= 5} \
            if query.language != "en" else set()
        for j, cand in enumerate(clauses):
            dense = 0.0
            for qv in query_vectors:
                dense = max(dense, sum(float(vectors[name][j] @ vec) * self._weight(name) for name, vec in qv.items()))
            words = set(tokenize(cand.shown))
            lexical = LEXICAL_WEIGHT * len(q_terms & words) / len(q_terms) if q_terms else 0.0
            if q_bridge:
                lexical += LEXICAL_WEIGHT * len(q_bridge & set(bridge_tokens(cand.shown))) / len(q_bridge)
            cand.score = dense + lexical + SENTENCE_WEIGHT * cand.sentence.dense
        return clauses

    def _embed(self, name: str, texts: list[str]) -> np.ndarray:
        """Clause vectors, computed once per clause and kept (a corpus's clauses recur across questions)."""
        missing = [t for t in dict.fromkeys(texts) if (name, t) not in self._vectors]
        if missing:
            vecs = self.embedders.by_name[name].embed_documents(missing)
            with self._lock:
                if len(self._vectors) > CACHE_LIMIT:
                    self._vectors.clear()
                for t, v in zip(missing, vecs):
                    self._vectors[(name, t)] = v
        return np.stack([self._vectors[(name, t)] for t in texts])

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


TRIM_MARGIN = 0.08  # a clause within this score of its sentence's best clause is kept too


def _trimmed(query: Query, clauses: list[_ClauseCandidate], limit: int, budget: float) -> list[Evidence]:
    """The best sentences (ranked by their best clause), each cut down to its first clause (the subject and the
    occasion), its best clauses and the clause before each of them, and any clause naming someone the question
    names, with the clause after it (a title follows a name); what is left out is marked "…"."""
    asked = [run for run in name_runs(query.text) if not run.replace("+", "").isupper()]
    by_sentence: dict[int, list[_ClauseCandidate]] = {}
    for c in clauses:
        by_sentence.setdefault(id(c.sentence), []).append(c)
    ranked = sorted(by_sentence.values(), key=lambda cs: -max(c.score for c in cs))
    chosen: list[Evidence] = []
    for cs in ranked:
        if len(chosen) >= limit:
            break
        top = max(c.score for c in cs)
        keep = {0}
        for c in cs:
            if c.score >= top - TRIM_MARGIN:
                keep |= {c.index, max(0, c.index - 1)}
            if any(re.search(r"(?<!\w)" + re.escape(run) + r"(?!\w)", c.text) for run in asked):
                keep |= {c.index, min(len(c.siblings) - 1, c.index + 1)}
        ev = _trimmed_evidence(cs, sorted(keep))
        cost = token_estimate(ev.prompt_text)
        if chosen and cost > budget:
            continue
        chosen.append(ev)
        budget -= cost
    return sorted(chosen, key=lambda e: (e.doc_id, e.start))


def _trimmed_evidence(cs: list[_ClauseCandidate], keep: list[int]) -> Evidence:
    sent = cs[0].sentence
    siblings = cs[0].siblings
    runs: list[list[int]] = []
    for i in keep:  # consecutive kept clauses are shown as the document writes them, commas included
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = [sent.text[siblings[r[0]].start - sent.start : siblings[r[-1]].end - sent.start] for r in runs]
    if keep[-1] < len(siblings) - 1:
        parts.append("")
    start, end = siblings[keep[0]].start, siblings[keep[-1]].end
    full = len(keep) == len(siblings)
    return Evidence(
        doc_id=sent.doc_id, start=start, end=end, text=sent.text[start - sent.start : end - sent.start],
        score=max(c.score for c in cs), context_start=sent.start, context_end=sent.end, context_text=sent.text,
        clauses=[(siblings[i].start, siblings[i].end) for i in keep],
        shown="" if full else " … ".join(parts).rstrip(),
    )


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
