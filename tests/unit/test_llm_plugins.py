"""Any llama-index LLM plugs into the answer path (CHATBOT_LLM_FACTORY), explicitly, never through Settings."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Settings as LlamaSettings
from llama_index.core.base.llms.types import (
    ChatMessage, ChatResponse, CompletionResponse, LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.errors import LLMUnavailable
from chatbot.pipeline import load_llms
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.service import ChatService
from tests.unit.api_app import build_fake_index

QUESTION = "How many municipal state-owned enterprises jointly launched the initiative?"


class ScriptedIndexLLM(CustomLLM):
    """A llama-index LLM (not one of the project's engines) that replies with a scripted text, word by word, and
    records the chat messages it was given; `fail` makes it raise like a client library whose server is down."""

    reply: str = "The documents do not say."
    fail: bool = False
    seen: list[Any] = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted-index-llm", is_chat_model=True)

    @llm_chat_callback()
    def stream_chat(self, messages: Any, **kwargs: Any):  # noqa: ANN201
        self.seen.append(list(messages))
        if self.fail:
            raise ConnectionError("connection refused")

        def gen():  # noqa: ANN202
            text = ""
            for word in self.reply.split(" "):
                text += word + " "
                yield ChatResponse(message=ChatMessage(role="assistant", content=text), delta=word + " ")

        return gen()

    @llm_chat_callback()
    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        *_, last = self.stream_chat(messages, **kwargs)
        return last

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.reply)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):  # noqa: ANN201
        yield CompletionResponse(text=self.reply, delta=self.reply)


def make_scripted(settings: Settings) -> ScriptedIndexLLM:  # the factory CHATBOT_LLM_FACTORY names
    return ScriptedIndexLLM(seen=[])


def make_not_an_llm(settings: Settings) -> str:
    return "not an LLM"


def test_the_factory_setting_loads_any_llama_index_llm_for_every_job():
    llm, translator, rewriter = load_llms(Settings(llm_factory="tests.unit.test_llm_plugins:make_scripted"))
    assert isinstance(llm, ScriptedIndexLLM) and translator is llm and rewriter is llm


def test_a_factory_that_is_not_there_or_returns_something_else_is_a_clear_error():
    with pytest.raises(LLMUnavailable, match="cannot be imported"):
        load_llms(Settings(llm_factory="tests.unit.no_such_module:make"))
    with pytest.raises(LLMUnavailable, match="not a llama-index LLM"):
        load_llms(Settings(llm_factory="tests.unit.test_llm_plugins:make_not_an_llm"))


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> tuple[Settings, Embedders]:
    built = build_fake_index(tmp_path_factory.mktemp("plugins"))
    return built.settings, built.embedders


def test_a_plugged_llm_answers_and_is_verified_like_the_packaged_one(index):
    settings, embedders = index
    retriever = HybridRetriever(settings, embedders)
    n = next(i for i, e in enumerate(retriever.retrieve(analyse_question(QUESTION)).evidence, 1)
             if "11 municipal" in e.text)
    llm = ScriptedIndexLLM(reply=f"11 municipal state-owned enterprises jointly launched it [{n}].", seen=[])
    before = LlamaSettings._llm
    service = ChatService(settings, embedders=embedders, retriever=retriever, llm=llm)
    events = list(service.ask_stream(QUESTION))
    assert [e.type for e in events][0] == "sources" and events[-1].type == "answer"
    assert any(e.type == "draft" for e in events)  # streamed through the LLM's stream_chat
    answer = events[-1].answer
    assert not answer.refused and answer.answer == "11 municipal state-owned enterprises jointly launched it [1]."
    assert llm.seen[0][0].role == "system" and QUESTION in llm.seen[0][-1].content
    assert service.model_name == "scripted-index-llm"
    assert LlamaSettings._llm is before  # llama-index's global Settings were never set


def test_a_plugged_llm_that_fails_gets_the_quoted_answer_not_an_error(index):
    settings, embedders = index
    llm = ScriptedIndexLLM(fail=True, seen=[])
    service = ChatService(settings, embedders=embedders, retriever=HybridRetriever(settings, embedders), llm=llm)
    answer = service.ask(QUESTION)
    assert answer.mode == "extractive" and answer.citations and "11 municipal" in answer.answer
