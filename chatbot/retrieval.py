"""Hybrid retrieval: dense (Chroma, one collection per embedder) + BM25, fused by rank; evidence sentences."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from chatbot.config import Settings
from chatbot.corpus import detect_language
from chatbot.embeddings import Embedders
from chatbot.errors import IndexMissing
from chatbot.evidence import EvidenceSelector
from chatbot.ingest import open_index
from chatbot.instructions import Flag, InstructionDetector, flagged
from chatbot.numbers import extract_quantities
from chatbot.clauses import split_clauses
from chatbot.conflicts import ConflictFinder
from chatbot.keyword import bridge_tokens, tokenize
from chatbot.query import Query
from chatbot.schemas import Chunk, DocInfo, Evidence, ScoredChunk
from chatbot.sentence_index import SentenceIndex
from chatbot.snapshot import Snapshot, load_snapshot

RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al.)
log = logging.getLogger(__name__)


@dataclass
class Searched:
    """What search found: the query texts searched (the question, its translation), their vectors per
    embedder, and the fused chunks in rank order."""

    queries: list[str]
    query_vectors: list[dict[str, np.ndarray]]
    chunks: list[ScoredChunk]
    timings_ms: dict[str, float] = field(default_factory=dict)
    doc_ids: frozenset[str] | None = None  # the documents the search was limited to


@dataclass
class Retrieved:
    language: str
    chunks: list[ScoredChunk]
    evidence: list[Evidence]
    best_similarity: float  # multilingual cosine of the best candidate sentence
    relevant: bool
    timings_ms: dict[str, float] = field(default_factory=dict)


def require_index(settings: Settings) -> None:
    """Cheap check before models load. Embedded: the Chroma folder exists (a Chroma server is asked when the
    retriever loads)."""
    if settings.chroma_host is None and not (settings.index_dir / "chroma").is_dir():
        raise IndexMissing(str(settings.index_dir))


class HybridRetriever:
    """Dense retrieval in every configured embedder's Chroma collection plus BM25, fused by reciprocal rank."""

    def __init__(self, settings: Settings, embedders: Embedders) -> None:
        self.settings = settings
        self.embedders = embedders
        self.evidence = EvidenceSelector(settings, embedders)
        self.detector = InstructionDetector(
            embedders.multilingual, min_similarity=settings.instruction_similarity,
            min_similarity_hidden=settings.instruction_similarity_hidden,
            block_sentences=settings.instruction_block_sentences)
        self._flag_cache: dict[tuple[str, str], list[Flag]] = {}
        require_index(settings)
        self._install(self._load(fresh=False))
        self._checked_at = time.monotonic()
        self._refreshing = threading.Lock()

    def _load(self, *, fresh: bool) -> Snapshot:
        """The committed index from Chroma, through the local copy in index_dir when that is current."""
        snap = load_snapshot(open_index(self.settings, fresh=fresh), self.settings.index_dir)
        if snap is None or not snap.catalog["documents"] or not snap.chunks:
            raise IndexMissing(str(self.settings.index_dir))
        return snap

    def _install(self, snap: Snapshot) -> None:
        catalog = snap.catalog
        self.instructions = self._flag_instructions(snap)
        self.evidence.flags = self.instructions
        self.documents = {
            doc_id: DocInfo(doc_id=doc_id, title=meta["title"], source=meta["source"],
                            outlet=meta.get("outlet", ""), date=meta.get("date", ""),
                            language=meta.get("language", ""), chunks=meta.get("chunks", 0),
                            chars=meta.get("chars", 0), indexed_at=meta.get("indexed_at", ""),
                            instructions=len(self.instructions.get(doc_id, []))
                            + len(meta.get("hidden_instructions", [])))
            for doc_id, meta in catalog["documents"].items()
        }
        self.built_at = catalog.get("built_at", "")
        self.generation = snap.generation
        self._index = snap.index
        self.stores = snap.index.chunks
        self.keyword = snap.keyword
        self.sentences = SentenceIndex(snap.sentences, snap.chunks, stores=snap.index.sentences,
                                       hashes={d: e["content_hash"] for d, e in catalog["documents"].items()})
        self._chunks_by_id: dict[str, Chunk] = {c.chunk_id: c for c in snap.chunks}

    def _flag_instructions(self, snap: Snapshot) -> dict[str, list[Flag]]:
        """Each document's instruction spans, from the loaded index (its sentence spans and multilingual vectors;
        the text is put together from its chunks). Until the ingest stores them, they are found here, once per
        document version: patterns over the text (about 2 s per million characters) and one product of the
        sentence vectors with the prototypes."""
        texts: dict[str, list[str]] = {}
        for c in sorted(snap.chunks, key=lambda c: (c.doc_id, c.start)):
            parts = texts.setdefault(c.doc_id, [])
            size = sum(len(x) for x in parts)
            if c.end > size:
                parts.append(" " * max(0, c.start - size) + c.text[max(0, size - c.start) :])
        multi = self.embedders.multilingual
        records = snap.catalog["documents"]
        out: dict[str, list[Flag]] = {}
        for doc_id, meta in records.items():  # flags the ingest stored in the catalogue record, when it did
            if isinstance(meta.get("instructions"), list):
                texts.pop(doc_id, None)
                if meta["instructions"]:
                    out[doc_id] = [Flag(int(a), int(b), str(why)) for a, b, why in meta["instructions"]]
        for doc_id, parts in texts.items():
            key = (doc_id, records.get(doc_id, {}).get("content_hash", ""))
            if key in self._flag_cache:  # a document a reload did not change
                if self._flag_cache[key]:
                    out[doc_id] = self._flag_cache[key]
                continue
            entry = snap.sentences.get(doc_id, {})
            spans = [(int(a), int(b)) for a, b in np.asarray(entry.get("spans", np.zeros((0, 2))))]
            vectors = entry.get(multi.name) if multi is not None else None
            flags = self.detector.flags("".join(parts), spans or None,
                                        None if vectors is None else np.asarray(vectors, dtype=np.float32))
            self._flag_cache[key] = flags
            if flags:
                out[doc_id] = flags
        return out

    def refresh(self) -> bool:
        """Load the committed index if it is newer than the one in use (a re-ingest, perhaps from another
        machine sharing the Chroma server). Questions keep using the old one until the new one is loaded."""
        stamp = self._index.catalog.stamp()
        if stamp is None or stamp == (self._index.recipe, self.generation):
            return False
        self._install(self._load(fresh=True))
        return True

    def _maybe_refresh(self) -> None:
        """At most every index_check_s seconds, look for a newer index in the background."""
        every = self.settings.index_check_s
        now = time.monotonic()
        if every <= 0 or now - self._checked_at < every or not self._refreshing.acquire(blocking=False):
            return
        self._checked_at = now

        def run() -> None:
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a failed check must never fail a question
                log.warning("Could not load the newer index: %s", exc)
            finally:
                self._refreshing.release()

        threading.Thread(target=run, name="index-refresh", daemon=True).start()

    def retrieve(
        self, query: Query, *, top_k: int | None = None, translation: str | None = None,
        evidence_sentences: int | None = None, doc_ids: frozenset[str] | None = None,
    ) -> Retrieved:
        """search, then select_evidence: the chunks and the evidence sentences in one call."""
        searched = self.search(query, top_k=top_k, translation=translation, doc_ids=doc_ids)
        return self.select_evidence(query, searched, evidence_sentences=evidence_sentences)

    def search(self, query: Query, *, top_k: int | None = None, translation: str | None = None,
               doc_ids: frozenset[str] | None = None) -> Searched:
        """Fuse every ranked list (each embedder and BM25, for the question and its English translation).
        `doc_ids` limits retrieval to those documents."""
        question = query.text
        s = self.settings
        top_k = s.top_k if top_k is None else top_k
        self._maybe_refresh()
        t0 = time.perf_counter()
        queries = [question] + ([translation] if translation and translation.strip() != question else [])
        query_vectors = [self._embed(q) for q in queries]
        t_embed = time.perf_counter()

        fused: dict[str, float] = {}
        best_cos: dict[str, float] = {}
        for vectors in query_vectors:
            for name, vec in vectors.items():
                for rank, hit in enumerate(self.stores[name].query(vec, s.candidate_k, doc_ids, self._chunks_by_id)):
                    cid = hit.chunk.chunk_id
                    fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
                    best_cos[cid] = max(best_cos.get(cid, -1.0), hit.cosine)
        if s.sentence_dense:
            for vectors in query_vectors:
                for name, vec in vectors.items():
                    for rank, cid in enumerate(self._sentence_ranked_chunks(name, vec, s.candidate_k, doc_ids)):
                        fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
        for q in queries:
            for rank, (cid, _score) in enumerate(self.keyword.top(q, s.candidate_k, doc_ids)):
                if cid in self._chunks_by_id:
                    fused[cid] = fused.get(cid, 0.0) + s.keyword_weight / (RRF_K + rank)
        # A term the question quotes is asked about word for word: chunks that contain it come first.
        for cid in fused if query.quoted else ():
            chunk = self._chunks_by_id.get(cid)
            if chunk is not None and any(term.lower() in chunk.text.lower() for term in query.quoted):
                fused[cid] += s.quoted_bonus
        ranked = [(cid, sc) for cid, sc in sorted(fused.items(), key=lambda kv: -kv[1])
                  if cid in self._chunks_by_id][:top_k]
        chunks = [ScoredChunk(chunk=self._chunks_by_id[cid], score=sc, dense=best_cos.get(cid, 0.0))
                  for cid, sc in ranked]
        t_search = time.perf_counter()
        return Searched(queries, query_vectors, chunks,
                        {"embed": (t_embed - t0) * 1000, "search": (t_search - t_embed) * 1000}, doc_ids)

    def select_evidence(self, query: Query, searched: Searched, *,
                        evidence_sentences: int | None = None) -> Retrieved:
        """The evidence sentences of the searched chunks, and whether they are about the question at all.
        `evidence_sentences` overrides how many evidence sentences the prompt gets."""
        t0 = time.perf_counter()
        queries, chunks, query_vectors = searched.queries, searched.chunks, searched.query_vectors
        evidence, best = self.evidence.select(query, queries, chunks, query_vectors, self.sentences,
                                              evidence_sentences)
        evidence = evidence + self._disagreeing(query, evidence, searched.doc_ids)
        t_end = time.perf_counter()
        multi = self.embedders.multilingual
        best_sim = best.get(multi.name if multi is not None else self.embedders.primary.name, 0.0)
        return Retrieved(
            language=query.language, chunks=chunks, evidence=evidence, best_similarity=best_sim,
            relevant=bool(evidence) and self.evidence.relevant(query, chunks, best, self._tokens_of, queries[1:]),
            timings_ms={**searched.timings_ms, "evidence": (t_end - t0) * 1000},
        )

    def _disagreeing(self, query: Query, evidence: list[Evidence],
                     doc_ids: frozenset[str] | None) -> list[Evidence]:
        """Sentences of other documents that give another value for what an evidence sentence states (another
        count of the same noun, another date of the same event), so that both sides reach the prompt and the
        answer shows the disagreement instead of the better-ranked source alone. Looked for among the sentences
        nearest to each evidence sentence that states a number (its stored multilingual vector: no embedding
        here); at most `conflict_evidence_extra` more sentences, none flagged as an instruction."""
        s = self.settings
        multi = self.embedders.multilingual
        if s.conflict_evidence_extra <= 0 or multi is None or len(self.documents) < 2:
            return []
        finder = ConflictFinder(min_overlap=s.conflict_min_overlap)
        taken = {(e.doc_id, e.start) for e in evidence}
        out: list[Evidence] = []
        for e in evidence:
            row = self.sentences.row.get((e.doc_id, e.start))
            vectors = self.sentences.vectors.get(e.doc_id, {}).get(multi.name)
            if row is None or vectors is None or not extract_quantities(e.text):
                continue
            for cid in self.sentences.top_chunks(multi.name, vectors[row], s.conflict_candidates, doc_ids):
                chunk = self._chunks_by_id.get(cid)
                if chunk is None or chunk.doc_id == e.doc_id:
                    continue
                flags = self.instructions.get(chunk.doc_id, [])
                for sent in chunk.sentences:
                    text = chunk.text[sent.start - chunk.start : sent.end - chunk.start]
                    if (chunk.doc_id, sent.start) in taken or flagged(flags, sent.start, sent.end):
                        continue
                    if finder.disagree(e.text, text, query):
                        taken.add((chunk.doc_id, sent.start))
                        out.append(Evidence(doc_id=chunk.doc_id, start=sent.start, end=sent.end, text=text,
                                            score=e.score, context_start=sent.start, context_end=sent.end,
                                            context_text=text,
                                            clauses=[(x.start, x.end) for x in split_clauses(text, sent.start)]))
                        if len(out) >= s.conflict_evidence_extra:
                            return out
                        break
        return out

    def _tokens_of(self, chunk: Chunk) -> frozenset[str]:
        """A chunk's words and bridge tokens, as the keyword index holds them."""
        tokens = self.keyword.tokens_of(chunk.chunk_id)
        if tokens is None:  # a chunk added to Chroma after this retriever started
            tokens = frozenset(tokenize(chunk.text)) | frozenset(bridge_tokens(chunk.text))
        return tokens

    def _sentence_ranked_chunks(self, name: str, vec: np.ndarray, k: int,
                                doc_ids: frozenset[str] | None = None) -> list[str]:
        """Chunks ranked by their best sentence: a long chunk's single vector dilutes one relevant sentence."""
        return self.sentences.top_chunks(name, vec, k, doc_ids)

    def _embed(self, text: str) -> dict[str, np.ndarray]:
        """Vectors of one query text. The English embedder is skipped for Chinese text: it cannot place
        Chinese near English passages (measured: sentence hit@3 8/32 on the Chinese eval questions)."""
        multi = self.embedders.multilingual
        vectors: dict[str, np.ndarray] = {}
        if multi is not None:
            vectors[multi.name] = multi.embed_query(text)
        if multi is None or detect_language(text) == "en":
            vectors[self.embedders.primary.name] = self.embedders.primary.embed_query(text)
        return vectors
