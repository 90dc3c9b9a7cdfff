"""What the chat's events do: each handler calls the ChatService (or the database) and renders the result."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr
from pydantic import ValidationError

from chatbot.config import Settings
from chatbot.errors import ChatbotError, NotReady
from chatbot.schemas import Answer, DraftEvent, SourcesEvent
from chatbot.ui.conversation import ChatTurn, Conversation, DocSummary, apply_event, fail, summary
from chatbot.ui.i18n import t
from chatbot.ui.render import render_conversation, render_documents, render_reader

if TYPE_CHECKING:
    from chatbot.state import AppState

log = logging.getLogger(__name__)

DRAFT_REFRESH_S = 0.08  # at most ~12 repaints a second while a draft streams
INTERNAL_ERROR = "Something went wrong in the chat. The error was logged; please try again."
FEEDBACK_SETTINGS = ("llm_backend", "llm_model", "embed_model", "multilingual_embedder", "top_k", "candidate_k",
                     "evidence_sentences", "evidence_sentences_many", "relevance_floor", "relevance_floor_english",
                     "relevance_min_word_share", "min_lexical_support", "min_semantic_support",
                     "min_semantic_support_cross", "max_answer_tokens", "chunk_chars")

# The open document: doc_id, the highlighted span's start and end, and its sentence's start and end.
ReaderState = tuple[str, int, int, int, int] | None


def feedback_settings(settings: Settings, llm_name: str = "") -> dict[str, Any]:
    """The settings that produced an answer, stored with its feedback."""
    values = {key: getattr(settings, key) for key in FEEDBACK_SETTINGS if hasattr(settings, key)}
    if settings.llm_backend == "hosted":
        values["hosted_model"] = settings.hosted_model
    if llm_name:
        values["llm_name"] = llm_name
    return values


def _buttons(enabled: bool) -> tuple[Any, Any]:
    """Updates of the Ask and New conversation buttons: off while this browser's answer streams."""
    return gr.update(interactive=enabled), gr.update(interactive=enabled)


def _unchanged() -> tuple[Any, Any]:
    """Updates of the reader's state and HTML that leave both as they are."""
    return gr.skip(), gr.skip()


class ChatHandlers:
    """The chat's event handlers, bound to the served process's AppState."""

    def __init__(self, state: AppState) -> None:
        self.examples = state.settings.example_questions
        self.state = state

    # Asking -------------------------------------------------------------------------------------------------

    def ask(self, question: str, conversation: Conversation, lang: str,
            opened: ReaderState = None) -> Iterator[tuple[Any, ...]]:
        """Stream one answer into the conversation: question box cleared, Ask and New conversation disabled, then
        drafts, then the verified answer (both buttons enabled again), which an open reader follows. Yields
        (question box, conversation, its HTML, Ask, New conversation, reader state, reader HTML)."""
        if not (question or "").strip():
            yield question, conversation, render_conversation(conversation, lang, self.examples), *_buttons(True), *_unchanged()
            return
        history = conversation.history()
        turn = conversation.start(question)
        yield "", conversation, render_conversation(conversation, lang, self.examples), *_buttons(False), *_unchanged()
        followed = False
        for _ in self._answer(turn, history):
            reader = _unchanged()
            if turn.finished and not followed:
                reader, followed = self.follow(turn, lang, opened), True
            yield "", conversation, render_conversation(conversation, lang, self.examples), *_buttons(turn.finished), *reader

    def ask_example(self, conversation: Conversation, lang: str, opened: ReaderState,
                    evt: gr.EventData) -> Iterator[tuple[Any, ...]]:
        yield from self.ask(str((evt._data or {}).get("text", "")), conversation, lang, opened)

    def follow(self, turn: ChatTurn, lang: str, opened: ReaderState) -> tuple[Any, Any]:
        """The reader after a new answer: an open document gives way to the answer's first cited span (empty for
        a refusal), so it never shows an older answer's evidence beside the latest answer. A closed reader stays
        closed, and a failed question leaves the latest answer's evidence in place."""
        if opened is None or turn.answer is None:
            return _unchanged()
        if turn.answer.refused or not turn.cited:
            return None, render_reader(lang)
        first = turn.cited[0]
        state: ReaderState = (first.doc.doc_id, first.start, first.end, first.start - len(first.sentence_before),
                              first.end + len(first.sentence_after))
        return state, self.reader(lang, state, followed=True)

    def _answer(self, turn: ChatTurn, history: list) -> Iterator[None]:
        """Advance `turn` through the service's stream, yielding whenever the page should repaint."""
        events = None
        unpainted = False
        try:
            service = self.state.service
            events = service.ask_stream(turn.question, history=history, id=turn.id)
            painted = 0.0
            for event in events:
                apply_event(turn, event, service, model_busy=isinstance(event, SourcesEvent) and service.gate.active > 0)
                unpainted = True
                if not isinstance(event, DraftEvent) or time.monotonic() - painted >= DRAFT_REFRESH_S:
                    painted, unpainted = time.monotonic(), False
                    yield
        except ChatbotError as exc:
            fail(turn, str(exc), exc.code)
        except Exception:  # noqa: BLE001 - the user gets a message, the log gets the trace
            log.exception("the chat failed to answer %r", turn.question[:200])
            fail(turn, INTERNAL_ERROR, "internal")
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # the service's stream is a generator: closing it frees the model mid-answer
        if not turn.finished:  # a stream that ended without its answer
            fail(turn, INTERNAL_ERROR, "internal")
        if unpainted or turn.phase == "error":
            yield

    # Feedback -----------------------------------------------------------------------------------------------

    def rate(self, conversation: Conversation, lang: str, evt: gr.EventData) -> tuple[Conversation, str]:
        data = evt._data or {}
        turn = conversation.find(str(data.get("turn", "")))
        rating = data.get("rating")
        if turn is not None and turn.answer is not None and turn.rating is None and rating in (1, -1):
            turn.feedback_id = self.record_feedback(turn.answer, int(rating), "", source="chat")
            turn.rating = int(rating) if turn.feedback_id is not None else None
        return conversation, render_conversation(conversation, lang, self.examples)

    def comment(self, conversation: Conversation, lang: str, evt: gr.EventData) -> tuple[Conversation, str]:
        data = evt._data or {}
        turn = conversation.find(str(data.get("turn", "")))
        text = str(data.get("text", "")).strip()
        if turn is not None and turn.feedback_id is not None and text:
            try:
                self.state.db.update_comment(turn.feedback_id, text)
                turn.comment = text
            except Exception:  # noqa: BLE001 - a lost comment must not break the chat
                log.exception("saving a feedback comment failed")
                gr.Warning("The comment could not be saved; please try again.")
        return conversation, render_conversation(conversation, lang, self.examples)

    def record_feedback(self, answer: Answer, rating: int, comment: str, *, source: str) -> int | None:
        llm_name = self.state.service.model_name if self.state.ready else ""
        try:
            return self.state.db.add_feedback(answer, rating, comment, source=source,
                                              settings=feedback_settings(self.state.settings, str(llm_name)))
        except ChatbotError as exc:
            gr.Warning(str(exc))
        except Exception:  # noqa: BLE001 - a lost rating must not break the chat
            log.exception("saving feedback failed")
            gr.Warning("The feedback could not be saved; please try again.")
        return None

    # Documents ----------------------------------------------------------------------------------------------

    def open_document(self, lang: str, evt: gr.EventData) -> tuple[ReaderState, str]:
        data = evt._data or {}
        try:
            start, end = int(data["start"]), int(data["end"])
            opened: ReaderState = (str(data["doc_id"]), start, end, int(data.get("sentence_start", start)),
                                   int(data.get("sentence_end", end)))
        except (KeyError, TypeError, ValueError):
            return None, render_reader(lang)
        return opened, self.reader(lang, opened)

    def reader(self, lang: str, opened: ReaderState, *, followed: bool = False) -> str:
        """The reader's HTML for `opened`; `followed`: opened by a new answer, not by the user's click."""
        if opened is None:
            return render_reader(lang)
        doc_id, start, end, s_start, s_end = opened
        try:
            service = self.state.service
            doc, text = service.document(doc_id), service.document_text(doc_id)
        except ChatbotError as exc:
            return render_reader(lang, DocSummary(doc_id=doc_id, title=str(exc)))
        start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
        end = max(start, end)
        sentence = (s_start, s_end) if 0 <= s_start <= start <= end <= s_end <= len(text) else None
        return render_reader(lang, summary(doc), text, start, end, sentence, followed=followed)

    def documents(self, lang: str) -> str:
        try:
            docs = self.state.service.documents()
        except NotReady:
            return render_documents(lang, None, t(lang, "loading"))
        except ChatbotError as exc:
            return render_documents(lang, None, str(exc))
        return render_documents(lang, docs, "" if docs else t(lang, "no_documents"))

    # The Gradio API (/ask, /feedback) -----------------------------------------------------------------------

    def api_ask(self, question: str, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Answer a question from the indexed documents. `history` (optional): the earlier turns, oldest first,
        as [{"role": "user" | "assistant", "content": "..."}], for a follow-up question. Returns the answer
        contract: id, question, answer, refused, language, citations, unsupported, standalone_question,
        mode ("generated", or "extractive": quotes, the LLM did not answer), notice, timings_ms."""
        try:
            return self.state.service.ask(question, history=history or None).model_dump()
        except ChatbotError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except ValidationError:
            raise gr.Error('history must be a list of {"role": "user" or "assistant", "content": "..."} objects.',
                           print_exception=False) from None

    def api_feedback(self, answer: dict[str, Any], rating: int, comment: str = "") -> dict[str, Any]:
        """Store feedback on an answer returned by /ask: rating 1 (helpful) or -1 (not helpful), an optional
        comment. Returns {"id": the feedback's id}."""
        try:
            parsed = Answer.model_validate(answer)
            feedback_id = self.state.db.add_feedback(
                parsed, rating, comment or "", source="gradio_api",
                settings=feedback_settings(self.state.settings,
                                           self.state.service.model_name if self.state.ready else ""))
        except ValidationError:
            raise gr.Error("answer must be the object /ask returned.", print_exception=False) from None
        except ChatbotError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return {"id": feedback_id}
