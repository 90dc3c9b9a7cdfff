"""The plain llama-index pipeline a user would build from its documentation, over the same Chroma data:
VectorStoreIndex + CitationQueryEngine with default prompts, the same MiniLM embedder and the same GGUF LLM."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from chatbot.citations import is_refusal
from chatbot.config import Settings
from chatbot.embeddings import resolve_st_path, st_name
from chatbot.llm import resolve_model_path
from chatbot.store import chroma_client


@dataclass
class BaselineSource:
    n: int
    doc_id: str
    start: int
    end: int
    text: str


@dataclass
class BaselineAnswer:
    answer: str
    refused: bool
    sources: list[BaselineSource]
    cited: list[int]
    timings_ms: dict[str, float] = field(default_factory=dict)


def _chatml(messages) -> str:  # noqa: ANN001 - llama-index ChatMessage sequence
    parts = [f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def _chatml_completion(prompt: str) -> str:
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"


class LlamaIndexBaseline:
    def __init__(self, settings: Settings) -> None:
        from llama_index.core import VectorStoreIndex
        from llama_index.core.query_engine import CitationQueryEngine
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.llms.llama_cpp import LlamaCPP
        from llama_index.vector_stores.chroma import ChromaVectorStore

        client = chroma_client(settings.index_dir, settings.chroma_host, settings.chroma_port)
        collection = client.get_collection(f"{settings.collection_prefix}_{st_name(settings.embed_model)}")
        index = VectorStoreIndex.from_vector_store(
            ChromaVectorStore(chroma_collection=collection),
            embed_model=HuggingFaceEmbedding(model_name=str(resolve_st_path(settings.embed_model)), device="cpu"),
        )
        llm = LlamaCPP(
            model_path=str(resolve_model_path(settings.llm_model, settings.cache_dir)),
            temperature=0.0, max_new_tokens=256, context_window=4096,
            generate_kwargs={"stop": ["<|im_end|>"]},
            model_kwargs={"n_threads": settings.llm_threads, "n_gpu_layers": 0},
            messages_to_prompt=_chatml, completion_to_prompt=_chatml_completion, verbose=False,
        )
        self.engine = CitationQueryEngine.from_args(index, llm=llm, similarity_top_k=3, citation_chunk_size=512)

    def ask(self, question: str) -> BaselineAnswer:
        t0 = time.perf_counter()
        response = self.engine.query(question)
        total = (time.perf_counter() - t0) * 1000
        text = str(getattr(response, "response", "") or "").strip()
        sources = []
        for n, node in enumerate(response.source_nodes, 1):
            body = re.sub(r"^Source \d+:\s*", "", node.node.get_content())
            meta = node.node.metadata
            # A citation chunk is the stored chunk (ours are shorter than citation_chunk_size).
            start = int(meta.get("start", 0))
            sources.append(BaselineSource(n, str(meta.get("doc_id", "")), start, start + len(body), body))
        cited = sorted({int(m) for m in re.findall(r"\[(\d+)\]", text) if 0 < int(m) <= len(sources)})
        return BaselineAnswer(text, is_refusal(text) or not text, sources, cited, {"total": round(total, 1)})
