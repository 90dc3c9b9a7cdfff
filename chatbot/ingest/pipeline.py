"""The llama-index IngestionPipeline of the index: sentence-aware chunk nodes, their vectors, a vector store."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import Field
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import BaseNode, MetadataMode, TransformComponent
from llama_index.core.storage.docstore.types import BaseDocumentStore
from llama_index.core.vector_stores.types import BasePydanticVectorStore

from chatbot.embeddings import Embedder
from chatbot.ingest.nodes import SentenceChunker, node_sentences

# Vectors kept for texts already embedded in this run (a text repeated across documents is embedded once).
VECTOR_CACHE_TEXTS = 200_000


class SentenceMeanEmbedding(TransformComponent):
    """Sets each chunk node's embedding for one embedder: the length-weighted mean of its sentences' vectors
    (unit length), so an ingest embeds each distinct sentence once and no chunk text; with chunk_text, the
    chunk's own text embedded instead.

    The texts of one call are embedded in one bulk call (the embedder's embed_bulk: its free cores). `vectors`
    (text -> vector) lives across calls: a text embedded before is not embedded again, and the ingest reads
    the sentence vectors it writes from it."""

    embedder: Any
    chunk_text: bool = False
    vectors: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0  # spent embedding, all calls
    embedded: int = 0  # distinct texts embedded, all calls

    @classmethod
    def class_name(cls) -> str:
        return "SentenceMeanEmbedding"

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        parts = self.embed(nodes)
        for node, sentences in zip(nodes, parts):
            vec = (self.vectors[node.get_content(metadata_mode=MetadataMode.NONE)] if self.chunk_text
                   else sentence_mean(sentences, self.vectors))
            node.embedding = vec.tolist()
        return nodes

    def embed(self, nodes: Sequence[BaseNode]) -> list[list[str]]:
        """Embed the texts of `nodes` not embedded yet (one bulk call); returns each node's sentence texts.
        The ingest calls it for every embedder before any write of the round, the order its embedding threads
        (embeddings.free_cores, which samples the processor's busy time) were measured in."""
        parts = [sentence_texts(node) for node in nodes]
        texts: dict[str, None] = {}
        for node, sentences in zip(nodes, parts):
            if self.chunk_text:
                texts[node.get_content(metadata_mode=MetadataMode.NONE)] = None
            texts.update(dict.fromkeys(sentences))
        todo = [t for t in texts if t not in self.vectors]
        if todo and len(self.vectors) + len(todo) > VECTOR_CACHE_TEXTS:
            self.vectors.clear()
            todo = list(texts)
        if todo:
            t0 = time.perf_counter()
            bulk = getattr(self.embedder, "embed_bulk", self.embedder.embed_documents)
            self.vectors.update(zip(todo, bulk(todo)))
            self.seconds += time.perf_counter() - t0
            self.embedded += len(todo)
        return parts


def sentence_texts(node: BaseNode) -> list[str]:
    """A chunk node's sentences (its text starts with the first one)."""
    text = node.get_content(metadata_mode=MetadataMode.NONE)
    spans = node_sentences(node)
    offset = spans[0][0]
    return [text[s - offset : e - offset] for s, e in spans]


def sentence_mean(texts: list[str], vectors: dict[str, np.ndarray]) -> np.ndarray:
    """A chunk's vector from its sentences' (unit) vectors: their mean weighted by sentence length, unit length.
    Mean pooling over a chunk's tokens, which MiniLM does, weighs each sentence by its length the same way."""
    if len(texts) == 1:
        return np.asarray(vectors[texts[0]], dtype=np.float32)
    stacked = np.stack([vectors[t] for t in texts])
    mean = (stacked * np.asarray([len(t) for t in texts], dtype=np.float32)[:, None]).sum(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def ingestion_pipeline(embedder: Embedder, vector_store: BasePydanticVectorStore | None, *,
                       chunker: SentenceChunker | None = None, embedding: SentenceMeanEmbedding | None = None,
                       docstore: BaseDocumentStore | None = None) -> IngestionPipeline:
    """Chunk nodes (chunker; leave it out for nodes already chunked), their vectors from `embedder` (or the
    given `embedding` step, to share its vectors), written to `vector_store`: any llama-index vector store.
    With a docstore, llama-index skips documents whose hash it already holds and replaces changed ones."""
    step = embedding if embedding is not None else SentenceMeanEmbedding(embedder=embedder)
    return IngestionPipeline(transformations=[*([chunker] if chunker is not None else []), step],
                             vector_store=vector_store, docstore=docstore, disable_cache=True)
