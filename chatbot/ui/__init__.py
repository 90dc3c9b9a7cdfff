"""The Gradio chat for staff: handlers call the ChatService and render its typed stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import gradio as gr

from chatbot.errors import ChatbotError
from chatbot.schemas import AnswerEvent, DraftEvent, ErrorEvent

if TYPE_CHECKING:
    from chatbot.app import AppState


def build_ui(state: AppState) -> gr.Blocks:
    def respond(message: str, history: list) -> Iterator[str]:
        try:
            events = state.service.ask_stream(message)
        except ChatbotError as exc:
            yield str(exc)
            return
        draft = ""
        for event in events:
            if isinstance(event, DraftEvent):
                draft += event.delta
                yield draft
            elif isinstance(event, AnswerEvent):
                yield event.answer.answer
            elif isinstance(event, ErrorEvent):
                yield event.message

    with gr.Blocks(title="Shanghai SOE AI+ Q&A", analytics_enabled=False) as blocks:
        gr.ChatInterface(respond)
    return blocks
