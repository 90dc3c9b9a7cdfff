"""The only chromadb importer: chunk collections (one per embedder) through llama-index's ChromaVectorStore."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatbot.errors import ChatbotError
from chatbot.schemas import Chunk, Sentence


@dataclass
class DenseHit:
    chunk: Chunk
    cosine: float


def chroma_client(index_dir: Path, host: str | None = None, port: int = 8000):  # noqa: ANN201
    """A chromadb client: embedded under index_dir, or a Chroma server when host is given."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if host:
        try:
            client = chromadb.HttpClient(host=host, port=port, settings=settings)
            client.heartbeat()
        except Exception as exc:  # noqa: BLE001 - any connection failure reads the same to a user
            raise ChatbotError(
                f"Cannot reach the Chroma server at {host}:{port} ({type(exc).__name__}). Start it with "
                f"`chroma run --path DIR --host {host} --port {port}` or unset CHATBOT_CHROMA_HOST."
            ) from exc
        return client
    index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(index_dir / "chroma"), settings=settings)


class ChromaStore:
    """Chunks and their vectors for one embedder, in one Chroma collection (cosine space)."""

    def __init__(self, client, name: str) -> None:  # noqa: ANN001
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.name = name
        self._collection = client.get_or_create_collection(name=name, metadata={"hnsw:space": "cosine"})
        self._vs = ChromaVectorStore(chroma_collection=self._collection)

    def count(self) -> int:
        return int(self._collection.count())

    def doc_hashes(self) -> dict[str, str]:
        """doc_id -> content hash of what is stored."""
        got = self._collection.get(include=["metadatas"])
        return {m["doc_id"]: m["content_hash"] for m in got["metadatas"] or []}

    def all_chunks(self) -> list[Chunk]:
        got = self._collection.get(include=["metadatas", "documents"])
        chunks = [self._to_chunk(i, t, m) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(chunks, key=lambda c: (c.doc_id, c.start))

    def add(self, chunks: list[Chunk], vectors: np.ndarray, content_hash: str, extra: dict[str, str]) -> None:
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        nodes = []
        for chunk, vec in zip(chunks, vectors):
            meta = {
                "doc_id": chunk.doc_id,
                "start": chunk.start,
                "end": chunk.end,
                "content_hash": content_hash,
                "sentences": json.dumps([[s.start, s.end] for s in chunk.sentences]),
                **extra,
            }
            node = TextNode(id_=chunk.chunk_id, text=chunk.text, metadata=meta, embedding=vec.tolist())
            node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=chunk.doc_id)
            nodes.append(node)
        if nodes:
            self._vs.add(nodes)  # type: ignore[arg-type]  # TextNode is a BaseNode

    def delete_document(self, doc_id: str) -> None:
        self._collection.delete(where={"doc_id": doc_id})

    def query(self, vector: np.ndarray, k: int, doc_ids: frozenset[str] | None = None) -> list[DenseHit]:
        """The k nearest chunks, only from `doc_ids` when given."""
        from llama_index.core.vector_stores.types import (
            FilterOperator, MetadataFilter, MetadataFilters, VectorStoreQuery,
        )

        k = min(k, self.count())
        if k <= 0 or (doc_ids is not None and not doc_ids):
            return []
        filters = None
        if doc_ids is not None:
            filters = MetadataFilters(filters=[MetadataFilter(key="doc_id", value=sorted(doc_ids),
                                                              operator=FilterOperator.IN)])
        res = self._vs.query(VectorStoreQuery(query_embedding=vector.tolist(), similarity_top_k=k, filters=filters))
        hits = []
        for node, sim in zip(res.nodes or [], res.similarities or []):
            # ChromaVectorStore reports exp(-distance); in cosine space distance = 1 - cosine.
            cosine = 1.0 + math.log(max(sim, 1e-12))
            hits.append(DenseHit(self._to_chunk(node.node_id, node.get_content(), node.metadata), cosine))
        return hits

    @staticmethod
    def _to_chunk(chunk_id: str, text: str, meta: dict) -> Chunk:
        spans = json.loads(meta["sentences"])
        return Chunk(
            chunk_id=chunk_id,
            doc_id=meta["doc_id"],
            start=int(meta["start"]),
            end=int(meta["end"]),
            text=text,
            sentences=[Sentence(start=s, end=e) for s, e in spans],
        )
