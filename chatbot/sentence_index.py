"""Sentence vectors of the loaded index, and chunks ranked by their best sentence without a loop over chunks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from chatbot.schemas import Chunk
from chatbot.store import COUNT_MAX_AGE_S, SentenceStore

# Above this many sentences a question asks Chroma's vector index of the sentence collection for the nearest
# sentences instead of comparing it with every sentence vector (measured: ~15 ms per 100,000 sentences and
# embedder with numpy on this machine's cores, against a few ms for Chroma).
BRUTE_FORCE_MAX = 40_000


class SentenceIndex:
    """Per document: sentence spans and vectors per embedder (views into one matrix per embedder), and for
    each chunk the rows of its sentences.

    `vectors` (doc_id -> embedder -> n×dim) and `row` ((doc_id, start) -> row in the document's arrays)
    are what evidence selection reads."""

    def __init__(self, sentences: Mapping[str, Mapping[str, np.ndarray]], chunks: list[Chunk], *,
                 stores: Mapping[str, SentenceStore] | None = None, hashes: Mapping[str, str] | None = None,
                 brute_force_max: int = BRUTE_FORCE_MAX) -> None:
        docs = list(sentences)
        sizes = [len(sentences[d]["spans"]) for d in docs]
        starts = np.cumsum([0, *sizes])
        self.size = int(starts[-1])
        names = sorted({k for d in docs for k in sentences[d] if k != "spans"})
        self.matrix: dict[str, np.ndarray] = {}
        for name in names:
            parts = [np.asarray(sentences[d][name], dtype=np.float32) for d in docs if name in sentences[d]]
            if len(parts) == len(docs) and parts:
                self.matrix[name] = np.ascontiguousarray(np.concatenate(parts))
        self.vectors: dict[str, dict[str, np.ndarray]] = {
            d: {name: m[starts[i] : starts[i + 1]] for name, m in self.matrix.items()} for i, d in enumerate(docs)
        }
        self.row: dict[tuple[str, int], int] = {}
        first: dict[str, int] = {}
        for i, d in enumerate(docs):
            first[d] = int(starts[i])
            for j, start in enumerate(np.asarray(sentences[d]["spans"])[:, 0].tolist() if sizes[i] else []):
                self.row[(d, int(start))] = j
        # Chunks, in the order given (ties rank in that order): the global rows of their sentences.
        self.chunk_ids = [c.chunk_id for c in chunks]
        by_doc: dict[str, list[int]] = {}
        for ci, c in enumerate(chunks):
            by_doc.setdefault(c.doc_id, []).append(ci)
        self._doc_chunks = {d: np.asarray(ix, dtype=np.int64) for d, ix in by_doc.items()}
        rows: list[int] = []
        ptr = [0]
        self._chunks_of: dict[tuple[str, int], list[int]] = {}
        for ci, c in enumerate(chunks):
            for st in c.sentences:
                local = self.row.get((c.doc_id, st.start))
                if local is not None:
                    rows.append(first[c.doc_id] + local)
                    self._chunks_of.setdefault((c.doc_id, st.start), []).append(ci)
            ptr.append(len(rows))
        self._rows = np.asarray(rows, dtype=np.int64)
        counts = np.diff(np.asarray(ptr))
        self._has_rows = np.flatnonzero(counts > 0)  # reduceat needs non-empty segments
        self._seg_starts = np.asarray(ptr[:-1], dtype=np.int64)[self._has_rows]
        self._stores = stores
        self._hashes = dict(hashes or {})
        self._brute_force_max = brute_force_max

    def top_chunks(self, name: str, vec: np.ndarray, k: int, doc_ids: frozenset[str] | None = None) -> list[str]:
        """The k chunks whose best sentence is nearest to vec, best first; only of doc_ids when given."""
        if k <= 0 or name not in self.matrix or not self.chunk_ids:
            return []
        if self.size > self._brute_force_max and self._stores is not None and name in self._stores:
            return self._top_by_vector_index(name, vec, k, doc_ids)
        sims = self.matrix[name] @ np.asarray(vec, dtype=np.float32)
        scores = np.full(len(self.chunk_ids), -np.inf, dtype=np.float64)
        if len(self._rows):
            scores[self._has_rows] = np.maximum.reduceat(sims[self._rows], self._seg_starts)
        if doc_ids is not None:
            keep = np.zeros(len(self.chunk_ids), dtype=bool)
            for d in doc_ids:
                if d in self._doc_chunks:
                    keep[self._doc_chunks[d]] = True
            scores[~keep] = -np.inf
        candidates = np.flatnonzero(np.isfinite(scores))
        if len(candidates) > k:
            part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
            kth = scores[part].min()
            candidates = candidates[scores[candidates] >= kth]  # every chunk tied with the k-th
        order = candidates[np.lexsort((candidates, -scores[candidates]))][:k]
        return [self.chunk_ids[i] for i in order]

    def _top_by_vector_index(self, name: str, vec: np.ndarray, k: int, doc_ids: frozenset[str] | None) -> list[str]:
        """Nearest sentences from Chroma, each bringing the chunks that contain it. Sentences at the same
        distance (the same sentence in several documents) bring their chunks in chunk order among those
        fetched: the ranking is the exact one up to the order within ties (completing a tie of thousands of
        copies of one boilerplate sentence would cost more than that order is worth)."""
        store = self._stores[name]  # type: ignore[index]
        total = store.count(max_age_s=COUNT_MAX_AGE_S)
        n = min(total, 3 * k + max(0, total - self.size))
        while True:
            hits = store.nearest(vec, n, doc_ids)
            more = len(hits) == n and n < total
            groups: list[list[int]] = []
            last = None
            for doc_id, content_hash, start, distance in hits:
                if distance != last:
                    groups.append([])
                    last = distance
                if self._hashes.get(doc_id) == content_hash:  # else: being written, or no longer indexed
                    groups[-1].extend(self._chunks_of.get((doc_id, start), []))
            out = _in_order(groups)
            if len(out) >= k or not more:
                return [self.chunk_ids[i] for i in out[:k]]
            n = min(total, n * 4)


def _in_order(groups: list[list[int]]) -> list[int]:
    """Chunk indices by group, each group in chunk order, first occurrence only."""
    out: list[int] = []
    seen: set[int] = set()
    for group in groups:
        for ci in sorted(set(group) - seen):
            seen.add(ci)
            out.append(ci)
    return out
