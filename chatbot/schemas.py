"""Typed records shared by ingest, retrieval, the service and every adapter."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Document(BaseModel):
    doc_id: str
    title: str
    source: str  # path relative to the repo root, or absolute
    outlet: str = ""
    date: str = ""
    language: str = "en"
    text: str
    content_hash: str


class Sentence(BaseModel):
    start: int
    end: int


class Chunk(BaseModel):
    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    sentences: list[Sentence]


class ScoredChunk(BaseModel):
    chunk: Chunk
    score: float  # fused rank score
    dense: float = 0.0  # best cosine similarity among the dense retrievers


class Evidence(BaseModel):
    """One evidence span (a sentence) selected for the prompt."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float


class Citation(BaseModel):
    n: int
    doc_id: str
    source: str
    title: str
    start: int
    end: int
    text: str
    score: float


class Answer(BaseModel):
    id: str | None = None
    question: str
    answer: str
    refused: bool
    language: str
    citations: list[Citation] = Field(default_factory=list)
    unsupported: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
