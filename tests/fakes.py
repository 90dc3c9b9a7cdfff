"""Deterministic stand-ins for the heavy models, for unit tests only."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np

from chatbot.keyword import tokenize


class FakeEmbedder:
    """Bag-of-words vectors (hashed, L2-normalised): texts sharing words are close, as with a real model."""

    def __init__(self, name: str, dim: int = 256) -> None:
        self.name = name
        self.dim = dim

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in tokenize(text):
            v[int(hashlib.md5(tok.encode()).hexdigest(), 16) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


class ScriptedLLM:
    """Returns queued replies in order and records the prompts it was given."""

    name = "scripted"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[list[dict[str, str]]] = []

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int) -> Iterator[str]:
        self.prompts.append(messages)
        reply = self.replies.pop(0) if self.replies else "The documents do not say."
        for word in reply.split(" "):
            yield word + " "
