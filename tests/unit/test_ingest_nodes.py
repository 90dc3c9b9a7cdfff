"""Ingest as llama-index nodes: chunk nodes carry offsets into their document's text and its metadata, and the
pipeline writes into any llama-index vector store (here llama-index's in-memory SimpleVectorStore, no Chroma)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.vector_stores import SimpleVectorStore, VectorStoreQuery

from chatbot.chunking import chunk_document
from chatbot.corpus import load_corpus
from chatbot.ingest.nodes import SentenceChunker, as_llama_document
from chatbot.ingest.pipeline import ingestion_pipeline
from chatbot.schemas import Document
from tests.fakes import FakeEmbedder

QUESTION = "How many municipal state-owned enterprises launched the initiative?"


def _document(doc_id: str, text: str) -> Document:
    return Document(doc_id=doc_id, title=f"{doc_id} title", source=f"corpus/{doc_id}.txt", outlet="Daily",
                    date="2024-07-06", language="en", text=text,
                    content_hash=hashlib.sha256(text.encode()).hexdigest())


def test_chunk_nodes_point_into_the_document_text_and_carry_its_metadata(corpus_dir):
    doc = load_corpus(corpus_dir).documents[0]
    nodes = SentenceChunker().get_nodes_from_documents([as_llama_document(doc)])
    chunks = chunk_document(doc)
    assert [n.node_id for n in nodes] == [c.chunk_id for c in chunks]  # the same chunks and ids as before
    for node in nodes:
        assert doc.text[node.start_char_idx : node.end_char_idx] == node.get_content()
        assert node.ref_doc_id == doc.doc_id
        assert {k: node.metadata[k] for k in ("title", "outlet", "date", "language", "source")} == {
            "title": doc.title, "outlet": doc.outlet, "date": doc.date, "language": doc.language,
            "source": doc.source}
        assert node.get_content(metadata_mode="embed") == node.get_content()  # vectors are of the text alone
        assert "sentences" not in node.get_content(metadata_mode="llm") and doc.title in node.get_content(
            metadata_mode="llm")


def test_a_repeated_sentence_keeps_the_offsets_of_its_own_chunk():
    """llama-index's own node parser step looks a chunk's text up in the document from the previous chunk's
    start, which finds the second "Stop." inside the first chunk; the offsets must stay the chunk's own."""
    text = "Stop. Stop. Stop. A much longer closing sentence about the harbour."
    doc = _document("repeats", text)
    nodes = SentenceChunker(max_chars=12, overlap_sentences=0).get_nodes_from_documents([as_llama_document(doc)])
    assert [n.get_content() for n in nodes[:2]] == ["Stop. Stop.", "Stop."]
    assert (nodes[1].start_char_idx, nodes[1].end_char_idx) == (12, 17)
    assert [(n.start_char_idx, n.end_char_idx) for n in nodes] == [(c.start, c.end) for c in chunk_document(
        doc, max_chars=12, overlap_sentences=0)]


def test_the_pipeline_writes_chunk_nodes_into_any_llama_index_vector_store(corpus_dir):
    emb = FakeEmbedder("minilm")
    store = SimpleVectorStore()
    pipeline = ingestion_pipeline(emb, store, chunker=SentenceChunker(), docstore=SimpleDocumentStore())
    doc = load_corpus(corpus_dir).documents[0]
    nodes = {n.node_id: n for n in pipeline.run(documents=[as_llama_document(doc)])}
    assert len(nodes) == len(chunk_document(doc))

    hits = store.query(VectorStoreQuery(query_embedding=emb.embed_query(QUESTION).tolist(), similarity_top_k=1))
    best = nodes[hits.ids[0]]  # type: ignore[index]
    assert "11 municipal state-owned enterprises" in best.get_content()
    assert doc.text[best.start_char_idx : best.end_char_idx] == best.get_content()
    # The stored vector of a chunk of several sentences is the length-weighted mean of theirs.
    several = next(n for n in nodes.values() if len(json.loads(n.metadata["sentences"])) > 1)
    parts = [doc.text[s:e] for s, e in json.loads(several.metadata["sentences"])]
    vecs = emb.embed_documents(parts)
    mean = (vecs * np.array([len(p) for p in parts], dtype=np.float32)[:, None]).sum(axis=0)
    assert np.allclose(store.get(several.node_id), mean / np.linalg.norm(mean), atol=1e-6)


def test_the_pipeline_skips_unchanged_documents_and_replaces_changed_ones():
    calls: list[list[str]] = []

    class CountingEmbedder(FakeEmbedder):
        def embed_documents(self, texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return super().embed_documents(texts)

    store = SimpleVectorStore()
    pipeline = ingestion_pipeline(CountingEmbedder("minilm"), store, chunker=SentenceChunker(),
                                  docstore=SimpleDocumentStore())
    notes = _document("notes", "The pilot covers 7 districts. It starts in May.")
    plan = _document("plan", "The plan has 3 phases.")
    assert len(pipeline.run(documents=[as_llama_document(notes), as_llama_document(plan)])) == 2
    assert pipeline.run(documents=[as_llama_document(notes), as_llama_document(plan)]) == []  # nothing embedded
    assert len(calls) == 1
    changed = _document("notes", "The pilot covers 9 districts.")
    (node,) = pipeline.run(documents=[as_llama_document(changed), as_llama_document(plan)])
    assert node.get_content() == "The pilot covers 9 districts." and calls[-1] == ["The pilot covers 9 districts."]
    assert set(store.data.text_id_to_ref_doc_id.values()) == {"notes", "plan"}
    assert len(store.data.embedding_dict) == 2  # the old version of notes is gone
