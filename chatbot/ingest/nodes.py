"""Corpus documents as llama-index Documents, and the sentence-aware chunker as a llama-index NodeParser."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.schema import Document as LlamaDocument

from chatbot.chunking import chunk_document, split_sentences
from chatbot.schemas import Chunk, Document, Sentence

LABELS = ("title", "outlet", "date", "language", "source")  # what a reader is told about a document
# Index bookkeeping on every node: neither embedded nor shown to an LLM.
BOOKKEEPING = ("content_hash", "sentences", "recipe")


def as_llama_document(doc: Document) -> LlamaDocument:
    """The corpus document as a llama-index Document: id = doc_id, its labels and content hash as metadata.
    Embedding sees the text alone (the index's vectors are of sentence texts)."""
    metadata: dict[str, Any] = {k: getattr(doc, k) for k in LABELS}
    metadata["content_hash"] = doc.content_hash
    return LlamaDocument(id_=doc.doc_id, text=doc.text, metadata=metadata,
                         excluded_embed_metadata_keys=[*LABELS, *BOOKKEEPING],
                         excluded_llm_metadata_keys=list(BOOKKEEPING))


def node_sentences(node: BaseNode) -> list[tuple[int, int]]:
    """(start, end) of a chunk node's sentences, offsets into its document's text."""
    return [(int(s), int(e)) for s, e in json.loads(node.metadata["sentences"])]


def node_chunk(node: BaseNode) -> Chunk:
    """A chunk node as the project's Chunk (what retrieval holds in memory)."""
    spans = node_sentences(node)
    return Chunk(chunk_id=node.node_id, doc_id=str(node.ref_doc_id), start=spans[0][0], end=spans[-1][1],
                 text=node.get_content(metadata_mode=MetadataMode.NONE),
                 sentences=[Sentence(start=s, end=e) for s, e in spans])


class SentenceChunker(NodeParser):
    """Whole sentences packed into chunks of about max_chars, consecutive chunks sharing overlap_sentences
    (chatbot.chunking.chunk_document: the same boundaries and content-hash ids). Each TextNode keeps its
    offsets into the document text (start_char_idx / end_char_idx, and its sentences' spans in its metadata,
    which a vector store keeps flat) and its document's metadata."""

    max_chars: int = 900
    overlap_sentences: int = 1

    @classmethod
    def class_name(cls) -> str:
        return "SentenceChunker"

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        return [chunk for doc in nodes for chunk in self.chunk_nodes(doc)]

    def chunk_nodes(self, doc: BaseNode) -> list[BaseNode]:
        text = doc.get_content(metadata_mode=MetadataMode.NONE)
        content_hash = str(doc.metadata.get("content_hash") or hashlib.sha256(text.encode("utf-8")).hexdigest())
        record = Document(doc_id=doc.node_id, title="", source="", text=text, content_hash=content_hash)
        # The document's id, type and hash (not its metadata again: each node already carries it)
        source = RelatedNodeInfo(node_id=doc.node_id, node_type=doc.get_type(), hash=doc.hash)
        inherited = dict(doc.metadata) if self.include_metadata else {}
        excluded_embed = list(dict.fromkeys([*LABELS, *BOOKKEEPING, *doc.excluded_embed_metadata_keys]))
        excluded_llm = list(dict.fromkeys([*BOOKKEEPING, *doc.excluded_llm_metadata_keys]))
        out: list[BaseNode] = []
        for c in chunk_document(record, max_chars=self.max_chars, overlap_sentences=self.overlap_sentences,
                                sentences=split_sentences(text)):
            out.append(TextNode(
                id_=c.chunk_id, text=c.text, start_char_idx=c.start, end_char_idx=c.end,
                metadata={**inherited, "content_hash": content_hash,
                          "sentences": json.dumps([[s.start, s.end] for s in c.sentences])},
                excluded_embed_metadata_keys=excluded_embed, excluded_llm_metadata_keys=excluded_llm,
                relationships={NodeRelationship.SOURCE: source},
            ))
        if self.include_prev_next_rel:
            # Links by id only: llama-index's own carry the neighbour's metadata, which every vector store
            # then writes again with each node.
            for prev, nxt in zip(out, out[1:]):
                prev.relationships[NodeRelationship.NEXT] = RelatedNodeInfo(node_id=nxt.node_id)
                nxt.relationships[NodeRelationship.PREVIOUS] = RelatedNodeInfo(node_id=prev.node_id)
        return out

    def _postprocess_parsed_nodes(self, nodes: list[BaseNode], parent_doc_map: dict[str, LlamaDocument]
                                  ) -> list[BaseNode]:
        """Nothing left to do: chunk_nodes gives each node its document's metadata, source and neighbours. (The
        base class would look each chunk's text up in the document, which puts a repeated text at its first
        copy, and link neighbours with their whole metadata.)"""
        return nodes
