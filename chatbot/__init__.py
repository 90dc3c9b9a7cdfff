"""Offline, cited question answering over the Shanghai SOE AI+ Action Initiative documents.

`chatbot.as_query_engine()` and `chatbot.as_retriever()` give the chatbot as llama-index objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_index.core.retrievers import BaseRetriever

    from chatbot.query_engine import ChatQueryEngine

__version__ = "0.1.0"


def as_query_engine(settings: Any = None, **kwargs: Any) -> ChatQueryEngine:
    """A llama-index query engine over the index (see chatbot.query_engine.as_query_engine)."""
    from chatbot.query_engine import as_query_engine as make

    return make(settings, **kwargs)


def as_retriever(settings: Any = None, **kwargs: Any) -> BaseRetriever:
    """The hybrid retriever as a llama-index retriever (see chatbot.query_engine.as_retriever)."""
    from chatbot.query_engine import as_retriever as make

    return make(settings, **kwargs)
