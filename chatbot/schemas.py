"""Typed records shared by ingest, retrieval, the service and every adapter."""

from __future__ import annotations

from typing import Annotated, Literal

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


class DocInfo(BaseModel):
    """An indexed document, as the catalogue, the API and the chat describe it."""

    doc_id: str = Field(examples=["shanghai-soe-ai-plus-initiative"])
    title: str
    source: str
    outlet: str = ""
    date: str = ""
    language: str = ""
    chunks: int = 0
    chars: int = Field(0, description="length of the extracted text that citation offsets point into")
    indexed_at: str = ""


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
    """One evidence span selected for the prompt: a clause (or a whole sentence) of a document."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float
    context_start: int | None = None  # the enclosing sentence
    context_end: int | None = None
    context_text: str = ""
    # The sentence's subject, shown to the model before a clause that lacks one ("The Airport Group … covering
    # three business lines"); None when the clause has its own.
    head_start: int | None = None
    head_end: int | None = None
    head_text: str = ""
    clauses: list[tuple[int, int]] = Field(default_factory=list)  # the clauses shown, within start..end
    shown: str = ""  # what the prompt shows when it is not `text` (clauses left out are marked "…")

    @property
    def prompt_text(self) -> str:
        if self.shown:
            return self.shown
        return f"{self.head_text} … {self.text}" if self.head_text else self.text


class Citation(BaseModel):
    """A span of a document: in a `sources` event, a passage given to the model, numbered as in the prompt ([n] in
    the draft refers to it); in an answer, the span a sentence's [n] cites, renumbered in order of citation."""

    n: int
    doc_id: str
    source: str = ""  # the document's path
    title: str = ""
    outlet: str = ""
    date: str = ""
    start: int
    end: int
    text: str  # exactly the document's text from start to end
    score: float
    # The sentence the span (a clause) belongs to: where to highlight it.
    context_start: int | None = None
    context_end: int | None = None


Source = Citation  # the passages of a `sources` event are citations the model may use

class Removed(BaseModel):
    """A sentence of the model's answer that was not shown, and why (the check that removed it)."""

    text: str
    reason: str
    check: str = "support"


class Answer(BaseModel):
    id: str | None = None
    question: str
    answer: str
    refused: bool
    language: str
    citations: list[Citation] = Field(default_factory=list)
    unsupported: list[str] = Field(default_factory=list)
    removed: list[Removed] = Field(default_factory=list)  # the unsupported sentences with the reason of each
    refusal_reason: str = ""  # why a refused question was refused (empty when it was answered)
    # A follow-up is answered as the standalone question it was rewritten into (None: asked as written).
    standalone_question: str | None = None
    # "extractive": the LLM did not answer (unreachable, timed out), so the answer quotes the best evidence
    # sentences word for word, each cited; `notice` says so, in the question's language.
    mode: Literal["generated", "extractive"] = "generated"
    notice: str = ""
    timings_ms: dict[str, float] = Field(default_factory=dict)


class Turn(BaseModel):
    """One earlier message of the conversation, for follow-up questions."""

    role: Literal["user", "assistant"]
    content: str


class RetrievedChunk(BaseModel):
    """A retrieved chunk (the unit of retrieval), in rank order."""

    doc_id: str
    start: int
    end: int
    score: float


class SourcesEvent(BaseModel):
    """First event: what retrieval found. `question` is the standalone question that was searched for
    (a follow-up rewritten with the conversation; the user's own words otherwise)."""

    type: Literal["sources"] = "sources"
    question: str
    rewritten: bool = False
    language: str
    relevant: bool
    sources: list[Source] = Field(default_factory=list)
    chunks: list[RetrievedChunk] = Field(default_factory=list)


class DraftEvent(BaseModel):
    """A piece of the model's text as it is written. Provisional: the `answer` event replaces all drafts."""

    type: Literal["draft"] = "draft"
    delta: str


class AnswerEvent(BaseModel):
    """The verified answer contract; replaces every draft."""

    type: Literal["answer"] = "answer"
    answer: Answer


class ErrorEvent(BaseModel):
    """The question could not be answered; `code` is stable, `message` is for the user."""

    type: Literal["error"] = "error"
    code: str
    message: str
    status: int = 500


StreamEvent = Annotated[SourcesEvent | DraftEvent | AnswerEvent | ErrorEvent, Field(discriminator="type")]
