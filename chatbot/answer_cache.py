"""A cache of verified answers, keyed by the normalised question, the conversation before it, the document
filter, and the version of everything an answer depends on (index, settings, model, prompts), so a repeated
question is answered in milliseconds."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.markers import strip_markers
from chatbot.schemas import Answer, SourcesEvent, Turn


@dataclass(frozen=True)
class CachedAnswer:
    sources: SourcesEvent
    answer: Answer


def normalise_question(text: str) -> str:
    """Case, width, spacing and final punctuation do not change a question."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip("?？.。!！ ")


class AnswerCache:
    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self._items: OrderedDict[str, CachedAnswer] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(version: str, question: str, history: Sequence[Turn], doc_ids: frozenset[str] | None,
            top_k: int | None) -> str:
        """`version` names everything the answer depends on besides the question (index, settings, model)."""
        parts = {
            "v": version,
            "q": normalise_question(question),
            "h": [(t.role, normalise_question(strip_markers(t.content))) for t in history],
            "d": sorted(doc_ids) if doc_ids is not None else None,
            "k": top_k,
        }
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> CachedAnswer | None:
        if self.size <= 0:
            return None
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: str, sources: SourcesEvent, answer: Answer) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = CachedAnswer(sources.model_copy(deep=True), answer.model_copy(deep=True))
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
