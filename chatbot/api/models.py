"""Request and response bodies of the native API (/api/v1), with the limits and examples /openapi.json shows."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chatbot.schemas import Answer, DocInfo, Turn

DocId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ISODate = Annotated[str, StringConstraints(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")]

EXAMPLE_QUESTION = "How many municipal state-owned enterprises launched the initiative?"
EXAMPLE_DOC = "shanghai-soe-ai-plus-initiative"


class DocumentFilter(BaseModel):
    """Limit the search to documents whose metadata matches every field given."""

    model_config = ConfigDict(extra="forbid")

    outlet: str | None = Field(None, max_length=200, description="exact outlet name", examples=["Coin World"])
    language: str | None = Field(None, max_length=10, description="`en` or `zh`", examples=["en"])
    date_from: ISODate | None = Field(None, description="published on or after (YYYY, YYYY-MM or YYYY-MM-DD)",
                                      examples=["2024-01-01"])
    date_to: ISODate | None = Field(None, description="published on or before", examples=["2024-12-31"])
    title_contains: str | None = Field(None, max_length=200, description="case-insensitive part of the title")


class SearchFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        description="English or Chinese. Longer than the server's `max_question_chars` (default 1000) → 413 "
                    "`question_too_long`; empty or only blanks → 400 `empty_question`.",
        examples=[EXAMPLE_QUESTION])
    top_k: int | None = Field(None, ge=1, le=20, description="chunks to retrieve (server default: 4)", examples=[4])
    doc_ids: list[DocId] | None = Field(
        None, max_length=50, description="search only these documents (an unknown id → 404 `document_not_found`)",
        examples=[[EXAMPLE_DOC]])
    filter: DocumentFilter | None = Field(None, description="search only documents with this metadata")


class AskRequest(SearchFields):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": EXAMPLE_QUESTION},
        {"question": "Which companies did it name?", "history": [
            {"role": "user", "content": "Who launched the initiative?"},
            {"role": "assistant", "content": "11 municipal state-owned enterprises launched it [1]."}]},
        {"question": "中国太平构建了多少条高质量保险数据指令？", "top_k": 6, "doc_ids": [EXAMPLE_DOC]},
    ]})

    history: list[Turn] = Field(
        default_factory=list, max_length=50,
        description="earlier messages, oldest first, for a follow-up question (it is rewritten into a standalone "
                    "one). More than the server's `max_history_chars` (default 8000) in all → 413 "
                    "`history_too_long`.")
    id: str | None = Field(None, max_length=200, description="your id for the question, echoed in the answer")


class RetrieveRequest(SearchFields):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": EXAMPLE_QUESTION, "top_k": 3},
        {"question": "国泰君安", "filter": {"language": "en"}},
    ]})


class Passage(BaseModel):
    """A retrieved chunk: `text` is the document's text from `start` to `end`."""

    doc_id: str
    title: str
    source: str
    start: int
    end: int
    text: str
    score: float = Field(description="fused rank score (higher is better)")
    similarity: float = Field(description="best cosine similarity of a dense retriever")


class EvidenceSpan(BaseModel):
    """A sentence the answer prompt would be given, numbered as `[n]` would cite it."""

    n: int
    doc_id: str
    start: int
    end: int
    text: str
    score: float


class RetrieveResponse(BaseModel):
    question: str
    language: str
    relevant: bool = Field(description="false: below the relevance floor; /ask would refuse without the LLM")
    passages: list[Passage]
    evidence: list[EvidenceSpan]
    timings_ms: dict[str, float] = Field(default_factory=dict)


DocumentInfo = DocInfo  # the catalogue's own record


class DocumentList(BaseModel):
    documents: list[DocumentInfo]


class DocumentText(DocumentInfo):
    start: int = Field(description="offset of `text` in the document's extracted text")
    end: int
    text: str = Field(description="the extracted text from `start` to `end` (the whole document by default)")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, for programs", examples=["question_too_long"])
    message: str = Field(description="what went wrong and what to do, for people",
                         examples=["The question is 1200 characters long; the limit is 1000. Shorten it and ask "
                                   "again."])
    status: int = Field(examples=[413])
    type: str = Field("invalid_request_error", description="OpenAI-style error class")
    retry_after: float | None = Field(None, description="seconds to wait before retrying (also the Retry-After "
                                                        "header)")
    details: list[dict[str, Any]] | None = Field(None, description="one entry per invalid field")
    param: str | None = Field(None, description="the request parameter at fault (OpenAI's `param`)",
                              examples=["n"])


class ErrorResponse(BaseModel):
    """Every error of /api and /v1 has this shape (the OpenAI SDK reads `error.message`)."""

    error: ErrorDetail


__all__ = ["Answer", "AskRequest", "DocumentFilter", "DocumentInfo", "DocumentList", "DocumentText",
           "ErrorResponse", "EvidenceSpan", "Passage", "RetrieveRequest", "RetrieveResponse"]
