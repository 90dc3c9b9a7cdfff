"""The Gradio chat for staff: layout and event wiring; handlers (handlers.py) call the ChatService, templates
(render.py, templates/) draw its typed stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from chatbot.ui.conversation import Conversation
from chatbot.ui.handlers import ChatHandlers, ReaderState
from chatbot.ui.i18n import LANGUAGES, t
from chatbot.ui.render import (
    head_html,
    render_conversation,
    render_footer,
    render_header,
    render_reader,
    script,
)

if TYPE_CHECKING:
    from chatbot.state import AppState

# Runs in the browser on page load: the interface follows the browser's language until the user switches.
BROWSER_LANGUAGE_JS = "() => ((navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en')"
PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # UI events are not API endpoints (only /ask, /feedback)


def build_ui(state: AppState) -> gr.Blocks:
    """The chat (conversation, question box, document reader) and the Documents tab, plus the /ask and /feedback
    API endpoints for gradio_client."""
    handlers = ChatHandlers(state)
    brand = state.settings

    def header_html(lang: str) -> str:
        return render_header(lang, brand.title, brand.subtitle, brand.brand_mark)

    lang0 = "en"
    with gr.Blocks(title=f"{brand.title['en']} — Q&A", analytics_enabled=False) as blocks:
        conversation = gr.State(Conversation())
        opened = gr.State(None)  # ReaderState
        with gr.Row(elem_id="cb-top", equal_height=True):
            header = gr.HTML(header_html(lang0), head=head_html(), elem_id="cb-header", js_on_load=None,
                             apply_default_css=False)
            lang = gr.Radio(LANGUAGES, value=lang0, show_label=False, container=False, elem_id="cb-lang")
        with gr.Tabs():
            with gr.Tab(t(lang0, "tab_chat"), id="chat") as chat_tab:
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chat = gr.HTML(render_conversation(Conversation(), lang0, brand.example_questions),
                                       elem_id="cb-conversation",
                                       js_on_load=script("conversation.js"), autoscroll=True, apply_default_css=False)
                        with gr.Row(elem_id="cb-input-row"):
                            question = gr.Textbox(show_label=False, placeholder=t(lang0, "question_placeholder"),
                                                  lines=1, max_lines=6, scale=8, autofocus=True, elem_id="cb-question",
                                                  container=False)
                            send = gr.Button(t(lang0, "send"), variant="primary", elem_id="cb-send")
                            new_chat = gr.Button(t(lang0, "new_chat"), variant="secondary", elem_id="cb-new")
                    with gr.Column(scale=2, min_width=320, elem_id="cb-reader-col"):
                        reader = gr.HTML(render_reader(lang0), elem_id="cb-reader", js_on_load=script("reader.js"),
                                         apply_default_css=False)
            with gr.Tab(t(lang0, "tab_documents"), id="documents") as docs_tab:
                documents = gr.HTML(elem_id="cb-documents", js_on_load=None, apply_default_css=False)
        footer = gr.HTML(render_footer(lang0), elem_id="cb-footer", js_on_load=None, apply_default_css=False)

        # Each browser asks one question at a time (its buttons are off while the answer streams); across browsers
        # the service's gate queues the model, so no concurrency limit here.
        # The reader is an output too (an open document follows the new answer), without a progress overlay.
        streamed = [question, conversation, chat, send, new_chat, opened, reader]
        progress = [question, chat, send, new_chat]
        asking: dict[str, Any] = {"inputs": [question, conversation, lang, opened], "outputs": streamed,
                                  "show_progress_on": progress, "concurrency_limit": None, **PRIVATE}
        question.submit(handlers.ask, api_name="chat_submit", **asking)
        send.click(handlers.ask, api_name="chat_send", **asking)
        chat.ask_example(handlers.ask_example, [conversation, lang, opened], streamed, show_progress_on=progress,
                         concurrency_limit=None, **PRIVATE)
        chat.rate(handlers.rate, [conversation, lang], [conversation, chat], **PRIVATE)
        chat.comment(handlers.comment, [conversation, lang], [conversation, chat], **PRIVATE)
        chat.open_doc(handlers.open_document, [lang], [opened, reader], **PRIVATE)
        reader.close_doc(lambda lang: (None, render_reader(lang)), [lang], [opened, reader], **PRIVATE)

        def restart(lang: str) -> tuple[Conversation, str, None, str]:
            fresh = Conversation()
            return fresh, render_conversation(fresh, lang, brand.example_questions), None, render_reader(lang)

        new_chat.click(restart, [lang], [conversation, chat, opened, reader], **PRIVATE)

        def relabel(lang: str, conv: Conversation, open_doc: ReaderState) -> tuple[Any, ...]:
            return (header_html(lang), render_conversation(conv, lang, brand.example_questions), handlers.reader(lang, open_doc),
                    handlers.documents(lang), gr.update(placeholder=t(lang, "question_placeholder")),
                    gr.update(value=t(lang, "send")), gr.update(value=t(lang, "new_chat")),
                    gr.update(label=t(lang, "tab_chat")), gr.update(label=t(lang, "tab_documents")),
                    render_footer(lang))

        lang.change(relabel, [lang, conversation, opened],
                    [header, chat, reader, documents, question, send, new_chat, chat_tab, docs_tab, footer], **PRIVATE)
        blocks.load(None, None, [lang], js=BROWSER_LANGUAGE_JS, **PRIVATE)
        blocks.load(handlers.documents, [lang], [documents], **PRIVATE)
        docs_tab.select(handlers.documents, [lang], [documents], **PRIVATE)

        gr.api(handlers.api_ask, api_name="ask", concurrency_limit=None)
        gr.api(handlers.api_feedback, api_name="feedback")
    return blocks
