"""Deterministic stand-ins for the heavy models, for unit tests only."""

from __future__ import annotations

import hashlib
import time
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


class ScriptedSlowLLM(ScriptedLLM):
    """A ScriptedLLM that writes one word per `delay` seconds, can go on for ever (`endless`) or raise `fail`
    after its first word, and counts the streams closed before their end (their consumer went away)."""

    def __init__(self, *replies: str, delay: float = 0.05, endless: bool = False,
                 fail: Exception | None = None) -> None:
        super().__init__(*replies)
        self.delay = delay
        self.endless = endless
        self.fail = fail
        self.closed_early = 0
        self.finished = 0

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int) -> Iterator[str]:
        self.prompts.append(messages)
        words = (self.replies.pop(0) if self.replies else "The documents do not say.").split(" ")
        done = False
        try:
            i = 0
            while self.endless or i < len(words):
                if self.fail is not None and i == 1:
                    raise self.fail
                time.sleep(self.delay)
                yield words[i % len(words)] + " "
                i += 1
            done = True
        finally:
            if done:
                self.finished += 1
            else:
                self.closed_early += 1
