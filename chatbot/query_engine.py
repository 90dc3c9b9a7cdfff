"""The chatbot as llama-index objects for Python users: a `BaseQueryEngine` whose responses cite the exact
spans they rest on, and the hybrid retriever as a `BaseRetriever`."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from chatbot.config import Settings
from chatbot.embeddings import load_embedders
from chatbot.nodes import ChatQueryBundle, ChunkRetriever, EvidencePostprocessor
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever, require_index
from chatbot.schemas import Answer, Citation
from chatbot.service import ChatService


class ChatQueryEngine(BaseQueryEngine):
    """`query(question)` answers as the chat does (retrieve, generate, verify): `Response.response` is the
    verified answer with its [n] markers, `source_nodes` are the cited spans (node n-1 is citation [n], with the
    document's character offsets and metadata), and `metadata["answer"]` is the whole answer contract."""

    def __init__(self, service: ChatService, callback_manager: CallbackManager | None = None) -> None:
        super().__init__(callback_manager)
        self.service = service

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}

    def _query(self, query_bundle: QueryBundle) -> Response:
        answer = self.service.ask(query_bundle.query_str)
        return response_of(answer)

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return await asyncio.to_thread(self._query, query_bundle)


class EvidenceRetriever(BaseRetriever):
    """The hybrid search's chunks turned into evidence spans (the sentences an answer would be given), each a
    node with its document's offsets; none when the documents are not about the question."""

    def __init__(self, hybrid: HybridRetriever, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chunks = ChunkRetriever(hybrid)
        self.evidence = EvidencePostprocessor(hybrid)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        bundle = ChatQueryBundle.of(analyse_question(query_bundle.query_str))
        return self.evidence.postprocess_nodes(self.chunks.retrieve(bundle), query_bundle=bundle)


def citation_node(c: Citation) -> NodeWithScore:
    node = TextNode(id_=f"{c.doc_id}:{c.start}-{c.end}", text=c.text, start_char_idx=c.start, end_char_idx=c.end)
    node.metadata = {"n": c.n, "doc_id": c.doc_id, "title": c.title, "source": c.source, "outlet": c.outlet,
                     "date": c.date}
    return NodeWithScore(node=node, score=c.score)


def response_of(answer: Answer) -> Response:
    return Response(response=answer.answer, source_nodes=[citation_node(c) for c in answer.citations],
                    metadata={"answer": answer.model_dump(), "refused": answer.refused})


def as_query_engine(settings: Settings | None = None, *, service: ChatService | None = None) -> ChatQueryEngine:
    """A query engine over the indexed documents (run `chatbot ingest` first); loads the models once."""
    return ChatQueryEngine(service or ChatService.from_settings(settings))


def as_retriever(settings: Settings | None = None, *, service: ChatService | None = None,
                 evidence: bool = False) -> BaseRetriever:
    """The hybrid retriever: chunks (`evidence=False`) or the evidence spans chosen from them, as nodes with
    their documents' character offsets and metadata. Loads the embedders and the index, not the LLM, unless a
    service is given."""
    if service is not None:
        hybrid = service.retriever
    else:
        s = settings or Settings()
        require_index(s)
        hybrid = HybridRetriever(s, load_embedders(s))
    return EvidenceRetriever(hybrid) if evidence else ChunkRetriever(hybrid)


__all__ = ["ChatQueryEngine", "EvidenceRetriever", "as_query_engine", "as_retriever"]
