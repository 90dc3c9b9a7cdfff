"""An ingest's embedding on every free core: each core encodes its own share of the texts (one thread each).
The vectors must be the ones a single call gives, in the texts' order, and the process's thread settings
(which queries use) must be as before."""

from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from chatbot import embeddings
from chatbot.chunking import split_sentences
from chatbot.embeddings import SentenceTransformerEmbedder, USEEmbedder

REPO = Path(__file__).resolve().parents[2]


def sentences() -> list[str]:
    out = []
    for path in [REPO / "corpus" / "shanghai-soe-ai-plus-initiative.txt",
                 *sorted((REPO / "eval" / "corpora" / "other" / "corpus").glob("*.txt"))]:
        text = path.read_text(encoding="utf-8")
        out += [text[s.start : s.end] for s in split_sentences(text)]
    return out[:150]


def blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.parametrize("cores", [1, 2])
def test_minilm_bulk_vectors_are_the_single_calls(monkeypatch, cores):
    monkeypatch.setattr(embeddings, "free_cores", lambda limit, window_s=0.05: min(limit, cores))
    embedder = SentenceTransformerEmbedder(threads=1, bulk_threads=2)
    texts = sentences()
    assert len(texts) >= embeddings.BULK_TEXTS
    bulk = embedder.embed_bulk(texts)
    one_by_one = np.stack([embedder.embed_query(t) for t in texts[:: 10]])
    cosines = (bulk[:: 10] * one_by_one).sum(axis=1)
    assert cosines.min() > 0.9999  # bfloat16 where the processor has it: within 1e-4 of float32
    assert np.allclose(np.linalg.norm(bulk, axis=1), 1.0, atol=1e-5)
    assert torch.get_num_threads() == 1  # what queries run on, restored


@pytest.mark.parametrize("cores", [1, 2])
def test_use_bulk_vectors_are_the_single_calls(monkeypatch, cores):
    monkeypatch.setattr(embeddings, "free_cores", lambda limit, window_s=0.05: min(limit, cores))
    embedder = USEEmbedder(threads=2)
    texts = sentences()
    before = blas_threads()
    bulk = embedder.embed_bulk(texts)
    assert blas_threads() == before
    assert embedder._model._model.threads == 2
    one_by_one = np.stack([embedder.embed_query(t) for t in texts[:: 10]])
    assert np.abs(bulk[:: 10] - one_by_one).max() < 1e-5
