"""The chat's view of a conversation: turns built from the service's typed stream, and the history follow-ups use."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from chatbot.schemas import (
    Answer,
    AnswerEvent,
    DraftEvent,
    ErrorEvent,
    RetrievedChunk,
    Source,
    SourcesEvent,
    StreamEvent,
    Turn,
)

CONTEXT_CHARS = 160  # characters of the document shown on each side of a cited span in its source card
NEARBY_CHARS = 240  # length of a retrieved passage shown with a refusal
NEARBY_SHOWN = 2

Phase = Literal["searching", "waiting", "drafting", "done", "error"]


class DocumentLike(Protocol):
    doc_id: str
    title: str
    source: str
    outlet: str
    date: str


class Library(Protocol):
    """What the chat reads besides answers: the indexed documents and their text (ChatService has both)."""

    def documents(self) -> Sequence[DocumentLike]: ...

    def document_text(self, doc_id: str) -> str: ...


class DocSummary(BaseModel):
    doc_id: str
    title: str
    source: str = ""
    outlet: str = ""
    date: str = ""


class CitedPassage(BaseModel):
    """A citation with the document text around it: `span` is exactly document_text[start:end]; a cited clause
    sits inside its sentence (`sentence_before` + span + `sentence_after`), empty for a whole-sentence citation."""

    n: int
    doc: DocSummary
    start: int
    end: int
    before: str
    sentence_before: str = ""
    span: str
    sentence_after: str = ""
    after: str
    clipped_before: bool = False
    clipped_after: bool = False

    @property
    def sentence(self) -> str:
        return self.sentence_before + self.span + self.sentence_after


class NearbyPassage(BaseModel):
    """A retrieved passage shown with a refusal, so the user sees what the documents say near the question."""

    doc: DocSummary
    start: int
    end: int
    text: str


class ChatTurn(BaseModel):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    question: str
    phase: Phase = "searching"
    searched_as: str | None = None  # the standalone question a follow-up was rewritten into
    draft: str = ""
    answer: Answer | None = None
    cited: list[CitedPassage] = Field(default_factory=list)
    covers: list[DocSummary] = Field(default_factory=list)  # with a refusal: what the documents do cover
    nearby: list[NearbyPassage] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    chunks: list[RetrievedChunk] = Field(default_factory=list)
    error: str = ""
    error_code: str = ""
    rating: int | None = None
    feedback_id: int | None = None
    comment: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "error")


class Conversation(BaseModel):
    """One browser session's turns. Handlers of the same session share this object and change it in place."""

    turns: list[ChatTurn] = Field(default_factory=list)

    def history(self) -> list[Turn]:
        """The earlier questions and their verified answers, for rewriting a follow-up into a standalone one."""
        turns: list[Turn] = []
        for turn in self.turns:
            if turn.phase == "done" and turn.answer is not None:
                turns += [Turn(role="user", content=turn.question), Turn(role="assistant", content=turn.answer.answer)]
        return turns

    def find(self, turn_id: str) -> ChatTurn | None:
        return next((t for t in self.turns if t.id == turn_id), None)

    def start(self, question: str) -> ChatTurn:
        turn = ChatTurn(question=question)
        self.turns.append(turn)
        return turn

    @property
    def busy(self) -> bool:
        return any(not t.finished for t in self.turns)


def summary(doc: DocumentLike) -> DocSummary:
    return DocSummary(doc_id=doc.doc_id, title=doc.title, source=doc.source, outlet=doc.outlet, date=doc.date)


def passage_around(text: str, start: int, end: int, margin: int = CONTEXT_CHARS) -> tuple[str, str, str, bool, bool]:
    """(before, span, after, clipped_before, clipped_after): the span with up to `margin` characters on each
    side, cut at a space or line break where there is one so words are not split."""
    a, b = max(0, start - margin), min(len(text), end + margin)
    if a > 0:
        cut = min((i for i in (text.find(" ", a, start), text.find("\n", a, start)) if i >= 0), default=-1)
        a = cut + 1 if cut >= 0 else a
    if b < len(text):
        cut = max(text.rfind(" ", end, b), text.rfind("\n", end, b))
        b = cut if cut > end else b
    return text[a:start], text[start:end], text[end:b], a > 0, b < len(text)


def sentence_bounds(start: int, end: int, context_start: int | None, context_end: int | None) -> tuple[int, int]:
    """The sentence a cited span belongs to: its context when that encloses it, else the span itself."""
    if context_start is None or context_end is None or not context_start <= start <= end <= context_end:
        return start, end
    return context_start, context_end


def cited_passages(answer: Answer, library: Library) -> list[CitedPassage]:
    docs = {d.doc_id: d for d in library.documents()}
    out: list[CitedPassage] = []
    texts: dict[str, str] = {}
    for c in answer.citations:
        if c.doc_id not in texts:
            texts[c.doc_id] = library.document_text(c.doc_id)
        text = texts[c.doc_id]
        s_start, s_end = sentence_bounds(c.start, c.end, c.context_start, c.context_end)
        before, _, after, cb, ca = passage_around(text, s_start, s_end)
        doc = summary(docs[c.doc_id]) if c.doc_id in docs else DocSummary(
            doc_id=c.doc_id, title=c.title, source=c.source, outlet=c.outlet, date=c.date)
        out.append(CitedPassage(n=c.n, doc=doc, start=c.start, end=c.end, before=before,
                                sentence_before=text[s_start:c.start], span=text[c.start:c.end],
                                sentence_after=text[c.end:s_end], after=after, clipped_before=cb, clipped_after=ca))
    return out


def nearby_passages(turn: ChatTurn, library: Library) -> list[NearbyPassage]:
    """The best retrieved text for a refused question: evidence sentences if retrieval found it relevant,
    else the top retrieved chunks (cut short)."""
    docs = {d.doc_id: d for d in library.documents()}
    spans = [(s.doc_id, s.start, s.end) for s in turn.sources] or [(c.doc_id, c.start, c.end) for c in turn.chunks]
    out: list[NearbyPassage] = []
    for doc_id, start, end in spans:
        if doc_id not in docs or any(p.doc.doc_id == doc_id and p.start == start for p in out):
            continue
        text = library.document_text(doc_id)[start:end].strip()
        if len(text) > NEARBY_CHARS:
            text = text[:NEARBY_CHARS].rsplit(" ", 1)[0] + "…"
        out.append(NearbyPassage(doc=summary(docs[doc_id]), start=start, end=end, text=text))
        if len(out) == NEARBY_SHOWN:
            break
    return out


def apply_event(turn: ChatTurn, event: StreamEvent, library: Library, *, model_busy: bool = False) -> None:
    """Advance a turn with one event of the answer stream."""
    if isinstance(event, SourcesEvent):
        turn.searched_as = event.question if event.rewritten else None
        turn.sources, turn.chunks = event.sources, event.chunks
        turn.phase = "waiting" if model_busy else "drafting"
    elif isinstance(event, DraftEvent):
        turn.draft += event.delta
        turn.phase = "drafting"
    elif isinstance(event, AnswerEvent):
        answer = event.answer
        turn.answer = answer
        turn.searched_as = answer.standalone_question
        if answer.refused:
            turn.covers = [summary(d) for d in library.documents()]
            turn.nearby = nearby_passages(turn, library)
        else:
            turn.cited = cited_passages(answer, library)
        turn.phase = "done"
    elif isinstance(event, ErrorEvent):
        fail(turn, event.message, event.code)


def fail(turn: ChatTurn, message: str, code: str = "error") -> None:
    turn.phase, turn.error, turn.error_code = "error", message, code
