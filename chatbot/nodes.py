"""Retrieval through llama-index's interfaces: the hybrid search as a `BaseRetriever` of chunk nodes, evidence
selection as a `BaseNodePostprocessor` that turns them into evidence-span nodes, both with character offsets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from chatbot.query import Query, analyse_question
from chatbot.retrieval import HybridRetriever, Retrieved, Searched
from chatbot.schemas import Chunk, DocInfo, Evidence, ScoredChunk


@dataclass
class ChatQueryBundle(QueryBundle):
    """A QueryBundle that carries the analysed question, its translation, the documents it is limited to, and
    what the search found (the postprocessor reads the query vectors from it instead of embedding again)."""

    query: Query | None = None
    translation: str | None = None
    doc_ids: frozenset[str] | None = None
    top_k: int | None = None
    searched: Searched | None = None
    retrieved: Retrieved | None = None  # set by the evidence postprocessor

    @classmethod
    def of(cls, query: Query, **kwargs: Any) -> ChatQueryBundle:
        return cls(query_str=query.text, query=query, **kwargs)

    @property
    def analysed(self) -> Query:
        if self.query is None:
            self.query = analyse_question(self.query_str)
        return self.query


class ChunkNode(TextNode):
    """A retrieved chunk: its text, its offsets in the document, and its document's metadata."""

    chunk: Chunk
    dense: float = 0.0


class EvidenceNode(TextNode):
    """An evidence span (a clause or a sentence) of a document, as the prompt shows it and citations point at."""

    evidence: Evidence


def document_metadata(doc: DocInfo | None) -> dict[str, str]:
    if doc is None:
        return {}
    return {"doc_id": doc.doc_id, "title": doc.title, "source": doc.source, "outlet": doc.outlet,
            "date": doc.date, "language": doc.language}


class ChunkRetriever(BaseRetriever):
    """Dense search in each embedder's collection, a sentence-level dense ranking and BM25, fused by rank."""

    def __init__(self, hybrid: HybridRetriever, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hybrid = hybrid

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        bundle = query_bundle if isinstance(query_bundle, ChatQueryBundle) else ChatQueryBundle(
            query_str=query_bundle.query_str)
        searched = self.hybrid.search(bundle.analysed, top_k=bundle.top_k, translation=bundle.translation,
                                      doc_ids=bundle.doc_ids)
        if isinstance(query_bundle, ChatQueryBundle):
            query_bundle.searched = searched
        return [self.chunk_node(sc) for sc in searched.chunks]

    def chunk_node(self, sc: ScoredChunk) -> NodeWithScore:
        c = sc.chunk
        node = ChunkNode(id_=c.chunk_id, text=c.text, start_char_idx=c.start, end_char_idx=c.end, chunk=c,
                         dense=sc.dense)
        node.metadata = document_metadata(self.hybrid.documents.get(c.doc_id))
        return NodeWithScore(node=node, score=sc.score)


class EvidencePostprocessor(BaseNodePostprocessor):
    """The retrieved chunks' best sentences (split into the clauses citations point at), within a token budget;
    none when the retrieved text is not about the question (the relevance floor)."""

    _hybrid: HybridRetriever = PrivateAttr()

    def __init__(self, hybrid: HybridRetriever, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hybrid = hybrid

    @classmethod
    def class_name(cls) -> str:
        return "EvidencePostprocessor"

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if not isinstance(query_bundle, ChatQueryBundle) or query_bundle.searched is None:
            raise ValueError("EvidencePostprocessor needs the ChatQueryBundle its ChunkRetriever searched with")
        bundle = query_bundle
        assert bundle.searched is not None
        retrieved = self._hybrid.select_evidence(bundle.analysed, bundle.searched)
        bundle.retrieved = retrieved
        if not retrieved.relevant:
            return []
        return [self.evidence_node(e) for e in retrieved.evidence]

    def evidence_node(self, e: Evidence) -> NodeWithScore:
        node = EvidenceNode(id_=f"{e.doc_id}:{e.start}-{e.end}", text=e.text, start_char_idx=e.start,
                            end_char_idx=e.end, evidence=e)
        node.metadata = document_metadata(self._hybrid.documents.get(e.doc_id))
        return NodeWithScore(node=node, score=e.score)
