"""The plain llama-index pipeline a user builds from its documentation, nothing of ours in its prompt:
SimpleDirectoryReader over the same corpus, its own Chroma collection with llama-index's default chunking
and node metadata, the same MiniLM, CitationQueryEngine with its default prompts, and the same GGUF through
llama-index-llms-llama-cpp with the chatbot's generation limits."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from chatbot.config import Settings
from chatbot.corpus import MANIFEST, load_corpus
from chatbot.embeddings import resolve_st_path
from chatbot.evaluation.claims import cited_numbers
from chatbot.llm import resolve_model_path
from chatbot.store import chroma_client

SIMILARITY_TOP_K = 3  # as in llama-index's CitationQueryEngine example
CITATION_CHUNK_SIZE = 512  # its default
COLLECTION = "baseline"


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
    sources: list[BaselineSource]  # the numbered sources in its prompt, in retrieval order
    cited: list[int]  # the source numbers its answer's markers name
    timings_ms: dict[str, float] = field(default_factory=dict)


def _chatml(messages) -> str:  # noqa: ANN001 - llama-index ChatMessage sequence
    parts = [f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def _chatml_completion(prompt: str) -> str:
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"


def _corpus_hash(corpus_dir: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.name != MANIFEST):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class LlamaIndexBaseline:
    def __init__(self, settings: Settings) -> None:
        import llama_cpp
        from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
        from llama_index.core.query_engine import CitationQueryEngine
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.llms.llama_cpp import LlamaCPP
        from llama_index.vector_stores.chroma import ChromaVectorStore

        from chatbot.llm import _avoid_amx

        _avoid_amx(llama_cpp)  # the same crash workaround the chatbot's own llama.cpp contexts get
        corpus = load_corpus(settings.corpus_dir)
        self.texts = {d.doc_id: d.text for d in corpus.documents}
        self.by_file = {Path(d.source).name: d.doc_id for d in corpus.documents}
        self.embed_path = resolve_st_path(settings.embed_model)
        embed = HuggingFaceEmbedding(model_name=str(self.embed_path), device="cpu")

        folder = settings.index_dir / "baseline"
        stamp = folder / "corpus.json"
        digest = _corpus_hash(settings.corpus_dir)
        fresh = not (stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")).get("sha256") == digest)
        if fresh and folder.exists():
            shutil.rmtree(folder)
        client = chroma_client(folder)
        collection = client.get_or_create_collection(COLLECTION)
        store = ChromaVectorStore(chroma_collection=collection)
        if fresh or collection.count() == 0:
            documents = SimpleDirectoryReader(str(settings.corpus_dir), exclude=[MANIFEST], recursive=True).load_data()
            index = VectorStoreIndex.from_documents(
                documents, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed,
                show_progress=False)
            stamp.write_text(json.dumps({"sha256": digest}), encoding="utf-8")
        else:
            index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
        self.chunks = collection.count()

        self.model_path = resolve_model_path(settings.llm_model, settings.cache_dir)
        llm = LlamaCPP(
            model_path=str(self.model_path), temperature=0.0, max_new_tokens=settings.max_answer_tokens,
            context_window=settings.llm_context, generate_kwargs={"stop": ["<|im_end|>"]},
            model_kwargs={"n_threads": settings.llm_threads, "n_threads_batch": settings.llm_threads,
                          "n_gpu_layers": 0},
            messages_to_prompt=_chatml, completion_to_prompt=_chatml_completion, verbose=False,
        )
        self.engine = CitationQueryEngine.from_args(index, llm=llm, similarity_top_k=SIMILARITY_TOP_K,
                                                    citation_chunk_size=CITATION_CHUNK_SIZE)
        self.settings = settings

    def setup(self) -> list[str]:
        """What this pipeline is, and exactly where it differs from the chatbot."""
        s = self.settings
        return [
            f"Reader: llama-index SimpleDirectoryReader over {s.corpus_dir.name}/ ({MANIFEST} left out), default "
            "node metadata (file name, path, type, size, dates), embedded with the text as llama-index does.",
            f"Chunks: llama-index's default SentenceSplitter (1024 tokens, 200 overlap): {self.chunks} chunks, "
            f"in its own Chroma collection ({s.index_dir.name}/baseline). The chatbot: sentence-aware chunks of "
            f"at most {s.chunk_chars} characters.",
            f"Retrieval: dense only, the same MiniLM ({self.embed_path.name}), top {SIMILARITY_TOP_K} chunks split "
            f"into {CITATION_CHUNK_SIZE}-token citation sources (CitationQueryEngine). The chatbot: MiniLM + "
            "multilingual USE + BM25 fused, evidence sentences chosen per question, a relevance floor that "
            "refuses off-topic questions.",
            "Prompt: CitationQueryEngine's default citation QA template, no examples, no language instruction. "
            "The chatbot: its own system prompt with two few-shot examples.",
            f"Generation: the same GGUF ({self.model_path.name}) through llama-index-llms-llama-cpp, ChatML, stop "
            f"<|im_end|>, max {s.max_answer_tokens} new tokens, context {s.llm_context}, {s.llm_threads} threads, "
            "greedy — the chatbot's limits.",
            "After generation: nothing (no citation verification, no premise check, no translation into the "
            "question's language). Its refusals are read from its text by the eval's refusal detector.",
            "Follow-up conversations are run on the chatbot only (CitationQueryEngine keeps no history).",
        ]

    def _locate(self, file_name: str, text: str) -> tuple[str, int, int]:
        doc_id = self.by_file.get(file_name, file_name)
        body = self.texts.get(doc_id, "")
        start = body.find(text)
        if start < 0:  # the splitter may have trimmed whitespace: anchor on the first 60 characters
            start = body.find(text[:60])
        start = max(start, 0)
        return doc_id, start, min(len(body), start + len(text))

    def ask(self, question: str) -> BaselineAnswer:
        t0 = time.perf_counter()
        response = self.engine.query(question)
        total = (time.perf_counter() - t0) * 1000
        text = str(getattr(response, "response", "") or "").strip()
        sources = []
        for n, node in enumerate(response.source_nodes, 1):
            body = re.sub(r"^Source \d+:\s*", "", node.node.get_content()).strip()
            doc_id, start, end = self._locate(str(node.node.metadata.get("file_name", "")), body)
            sources.append(BaselineSource(n, doc_id, start, end, body))
        cited = sorted(n for n in cited_numbers(text) if 0 < n <= len(sources))
        return BaselineAnswer(text, sources, cited, {"total": round(total, 1)})
