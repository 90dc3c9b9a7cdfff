"""Chunks ranked by their best sentence, and BM25 from the inverted index, against plain reference loops."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from chatbot.chunking import chunk_document, split_sentences
from chatbot.config import Settings
from chatbot.corpus import load_corpus
from chatbot.embeddings import Embedders
from chatbot.ingest import build_index, open_index
from chatbot.keyword import BM25Index, bridge_tokens, tokenize
from chatbot.schemas import Chunk, Document
from chatbot.sentence_index import SentenceIndex
from chatbot.snapshot import load_snapshot
from tests.fakes import FakeEmbedder

QUESTIONS = ["How many enterprises launched the initiative?", "Which fund did the SASAC set up?",
             "What happens to data governance?", "中国太平的劳动生产率提升了多少？", "large models in vertical scenarios"]


def _docs(corpus_dir) -> list[Document]:  # noqa: ANN001
    real = load_corpus(corpus_dir).documents[0]
    sentences = [real.text[s.start : s.end] for s in split_sentences(real.text)]
    docs = [real]
    for n in range(4):  # more documents, some sharing sentences (ties between chunks are common)
        text = " ".join(sentences[(n * 3 + i) % len(sentences)] for i in range(7))
        docs.append(real.model_copy(update={"doc_id": f"d{n}", "text": text, "content_hash": f"h{n}"}))
    return docs


def _tables(docs: list[Document], emb: FakeEmbedder) -> tuple[list[Chunk], dict]:
    chunks = sorted((c for d in docs for c in chunk_document(d, max_chars=600)), key=lambda c: (c.doc_id, c.start))
    sentences = {}
    for d in docs:
        spans = split_sentences(d.text)
        sentences[d.doc_id] = {"spans": np.array([[s.start, s.end] for s in spans], dtype=np.int64),
                               emb.name: emb.embed_documents([d.text[s.start : s.end] for s in spans])}
    return chunks, sentences


def reference_ranking(chunks: list[Chunk], sentences: dict, name: str, vec: np.ndarray, k: int,
                      doc_ids: frozenset[str] | None = None) -> list[str]:
    """The per-chunk loop retrieval used before: max sentence cosine per chunk, ties in chunk order."""
    best: dict[str, float] = {}
    for chunk in chunks:
        if doc_ids is not None and chunk.doc_id not in doc_ids:
            continue
        table = sentences[chunk.doc_id]
        starts = {int(s): i for i, s in enumerate(table["spans"][:, 0])}
        rows = [starts[st.start] for st in chunk.sentences if st.start in starts]
        if rows:
            best[chunk.chunk_id] = float(np.max(table[name][rows] @ vec))
    return [cid for cid, _ in sorted(best.items(), key=lambda kv: -kv[1])[:k]]


@pytest.mark.parametrize("k", [1, 5, 12, 500])
def test_sentence_ranking_matches_the_per_chunk_loop(corpus_dir, k):
    emb = FakeEmbedder("use")
    chunks, sentences = _tables(_docs(corpus_dir), emb)
    index = SentenceIndex(sentences, chunks)
    for q in QUESTIONS:
        vec = emb.embed_query(q)
        assert index.top_chunks("use", vec, k) == reference_ranking(chunks, sentences, "use", vec, k)
        only = frozenset({"d1", "d3"})
        got = index.top_chunks("use", vec, k, only)
        assert got == reference_ranking(chunks, sentences, "use", vec, k, only)
        assert {c.doc_id for c in chunks if c.chunk_id in got} <= only
    assert index.top_chunks("use", emb.embed_query(QUESTIONS[0]), 5, frozenset()) == []
    assert index.top_chunks("minilm", emb.embed_query(QUESTIONS[0]), 5) == []  # no such vectors


def test_evidence_reads_the_same_vectors_and_rows(corpus_dir):
    emb = FakeEmbedder("use")
    chunks, sentences = _tables(_docs(corpus_dir), emb)
    index = SentenceIndex(sentences, chunks)
    for doc_id, table in sentences.items():
        assert np.array_equal(index.vectors[doc_id]["use"], table["use"])
        for i, start in enumerate(table["spans"][:, 0]):
            assert index.row[(doc_id, int(start))] == i


def test_the_vector_index_path_ranks_like_the_exact_one(tmp_path, corpus_dir):
    """Above BRUTE_FORCE_MAX sentences the ranking asks Chroma's sentence collection; on a small index
    (where Chroma's search is exhaustive) it must give the exact ranking, up to the order within ties."""
    for n in range(3):
        (corpus_dir / f"extra-{n}.txt").write_text(" ".join(d.text for d in _docs(corpus_dir)[1 + n : 3 + n]),
                                                   encoding="utf-8")
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", collection_prefix="t")
    emb = FakeEmbedder("use")
    build_index(settings, embedders=Embedders(FakeEmbedder("minilm"), emb), progress=False)
    snap = load_snapshot(open_index(settings), settings.index_dir)
    assert snap is not None
    hashes = {d: e["content_hash"] for d, e in snap.catalog["documents"].items()}
    exact = SentenceIndex(snap.sentences, snap.chunks)
    via_chroma = SentenceIndex(snap.sentences, snap.chunks, stores=snap.index.sentences, hashes=hashes,
                               brute_force_max=0)
    by_id = {c.chunk_id: c for c in snap.chunks}

    def scores(ids: list[str], vec: np.ndarray) -> list[float]:  # each chunk's best sentence cosine
        out = []
        for cid in ids:
            c = by_id[cid]
            rows = [exact.row[(c.doc_id, st.start)] for st in c.sentences]
            out.append(round(float(np.max(exact.vectors[c.doc_id]["use"][rows] @ vec)), 5))
        return out

    ties = 0
    for q in QUESTIONS:
        vec = emb.embed_query(q)
        for k, only in ((1, None), (4, None), (12, None), (6, frozenset({"extra-1"}))):
            got, want = via_chroma.top_chunks("use", vec, k, only), exact.top_chunks("use", vec, k, only)
            assert len(got) == len(want) and scores(got, vec) == scores(want, vec)  # the same ranking ...
            ties += got != want  # ... up to the order of chunks whose best sentences are copies
            if only is not None:
                assert {by_id[c].doc_id for c in got} <= only
    assert ties < 10


def reference_bm25(docs: list[list[str]], query: str, k1: float = 1.2, b: float = 0.75) -> dict[int, float]:
    tfs = [Counter(d) for d in docs]
    avg = sum(len(d) for d in docs) / len(docs)
    df: Counter[str] = Counter()
    for tf in tfs:
        df.update(tf.keys())
    idf = {t: math.log(1 + (len(docs) - f + 0.5) / (f + 0.5)) for t, f in df.items()}
    out = {}
    for i, (tf, d) in enumerate(zip(tfs, docs)):
        s = sum(idf[t] * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(d) / avg))
                for t in set(tokenize(query) + bridge_tokens(query)) if tf.get(t))
        if s > 0:
            out[i] = s
    return out


def test_bm25_inverted_index_scores_like_the_formula_and_saves(tmp_path, corpus_dir):
    chunks = [c for d in _docs(corpus_dir) for c in chunk_document(d, max_chars=600)]
    tokens = [tokenize(c.text) + bridge_tokens(c.text) for c in chunks]
    index = BM25Index.build([c.chunk_id for c in chunks], [c.text for c in chunks], [c.doc_id for c in chunks])
    index.save(tmp_path / "k.npz", generation=7)
    loaded = BM25Index.load(tmp_path / "k.npz")
    assert loaded.extra == {"generation": 7}
    for q in QUESTIONS:
        want = reference_bm25(tokens, q)
        for idx in (index, loaded):
            got = idx.scores(q)
            assert set(got) == {chunks[i].chunk_id for i in want}
            assert all(abs(got[chunks[i].chunk_id] - s) < 1e-9 for i, s in want.items())
            ranked = [chunks[i].chunk_id for i, _ in sorted(want.items(), key=lambda kv: -kv[1])]
            assert [cid for cid, _ in idx.top(q, 7)] == ranked[:7]
            only = frozenset({"d2"})
            assert [cid for cid, _ in idx.top(q, 7, only)] == [
                cid for cid in ranked if chunks[[c.chunk_id for c in chunks].index(cid)].doc_id == "d2"][:7]
    for i, c in enumerate(chunks):
        assert loaded.tokens_of(c.chunk_id) == frozenset(tokens[i])
        assert sorted(loaded.term_counts(i)) == sorted(tokens[i])
