"""When the LLM does not answer (unreachable, timed out), the question is answered with the best evidence sentences
quoted word for word, each cited, and labelled extractive in the answer contract, the API and the chat."""

from pathlib import Path

import openai
import pytest
from bs4 import BeautifulSoup

from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.errors import LLMUnavailable
from chatbot.ingest import build_index
from chatbot.markers import MARKER
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.schemas import Answer
from chatbot.service import ChatService
from chatbot.ui.conversation import Conversation, apply_event
from chatbot.ui.render import render_conversation
from tests.fakes import FakeEmbedder, FakeUnreachableLLM, ScriptedLLM, ScriptedSlowLLM
from tests.unit.api_app import QUESTION, build_fake_index, serve_fake
from tests.unit.test_api_routes import sse_events

ZH_DOC = ("中国太平保险集团构建了105万条高质量保险数据指令，并上线了11个数字员工岗位。"
          "上海机场集团正在建设智慧枢纽，覆盖三条业务线。")


@pytest.fixture
def service(tmp_path: Path, corpus_dir: Path) -> ChatService:
    (corpus_dir / "taiping-zh.txt").write_text(ZH_DOC, encoding="utf-8")
    embedders = Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", collection_prefix="t",
                        relevance_floor=0.2)
    build_index(settings, embedders=embedders, progress=False)
    # The translator (questions are also searched in the other document language) answers; the answer LLM not.
    return ChatService(settings, embedders=embedders, retriever=HybridRetriever(settings, embedders),
                       llm=FakeUnreachableLLM(), translator=ScriptedLLM())


def check_quotes(answer: Answer, service: ChatService) -> None:
    """Every citation is the document's exact text at start:end, and the answer quotes it before its [n]."""
    assert answer.mode == "extractive" and not answer.refused and answer.notice
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert 1 <= len(answer.citations) <= service.settings.extractive_quotes
    for c in answer.citations:
        assert service.document_text(c.doc_id)[c.start : c.end] == c.text
        assert f"“{' '.join(c.text.split())}”" in answer.answer
    assert sorted(int(m.group(1)) for m in MARKER.finditer(answer.answer)) == [c.n for c in answer.citations]


def test_an_unreachable_llm_gives_the_best_evidence_quoted_with_citations(service):
    events = list(service.ask_stream(QUESTION, id="q1"))
    assert [e.type for e in events] == ["sources", "answer"]
    answer = events[-1].answer
    check_quotes(answer, service)
    assert answer.id == "q1" and answer.language == "en"
    assert answer.answer.startswith("Quoted from the documents:")
    assert "did not answer" in answer.notice
    assert "11 municipal state-owned enterprises" in answer.citations[0].text  # the best sentence first
    assert len(service.llm.engine.prompts) == 1 and service.gate.active == 0


CUT_OFF = LLMUnavailable("The hosted LLM stopped answering in the middle of an answer (RemoteProtocolError).")


def test_an_llm_failing_mid_answer_also_ends_with_quotes_that_replace_the_draft(service):
    service.llm = ScriptedSlowLLM("Eleven enterprises launched it [1].", delay=0, fail=CUT_OFF)
    events = list(service.ask_stream(QUESTION))
    assert [e.type for e in events] == ["sources", "draft", "answer"]
    answer = events[-1].answer
    check_quotes(answer, service)
    assert "Eleven" not in answer.answer  # the half answer is not presented as the answer
    # The user saw the draft begin, so the notice says it was cut off (not that the model never answered).
    assert "stopped in the middle of its answer" in answer.notice and "did not answer" not in answer.notice
    assert service.gate.active == 0
    service.llm = ScriptedSlowLLM("十一家企业 [1]。", delay=0, fail=CUT_OFF)
    service.translator = ScriptedLLM("How many municipal state-owned enterprises jointly launched the initiative?")
    zh = service.ask("多少家市属国有企业共同发起了倡议？")
    assert zh.mode == "extractive" and "中途中断" in zh.notice


def test_the_api_stream_ends_a_cut_off_answer_with_labelled_quotes_not_an_error(index, tmp_path):
    served = serve_fake(index, tmp_path, ScriptedSlowLLM("Eleven enterprises launched it [1].", delay=0, fail=CUT_OFF))
    r = served.client.post("/api/v1/ask/stream", json={"question": QUESTION})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert [name for name, _ in events] == ["sources", "draft", "answer"]
    assert events[1][1]["delta"].startswith("Eleven")
    answer = events[-1][1]["answer"]
    assert answer["mode"] == "extractive" and answer["refused"] is False
    assert "stopped in the middle" in answer["notice"] and answer["answer"].startswith("Quoted from the documents:")
    assert answer["citations"] and all(index.text[c["start"] : c["end"]] == c["text"] for c in answer["citations"])
    assert "Traceback" not in r.text and served.service.gate.active == 0


def test_a_chinese_question_is_told_in_chinese_that_the_documents_are_quoted(service):
    service.translator = ScriptedLLM("How many high-quality insurance data instructions did China Taiping build?")
    answer = service.ask("中国太平构建了多少条高质量保险数据指令？")
    check_quotes(answer, service)
    assert answer.language == "zh" and answer.answer.startswith("以下直接引用文件原文")
    assert "语言模型" in answer.notice
    assert any("105万条" in c.text or "1.05 million" in c.text for c in answer.citations)


def test_a_service_started_while_the_llm_is_down_starts_and_answers_with_quotes(service):
    assert service.warmup()["answer"] == "unavailable"  # not raised: the app becomes ready
    check_quotes(service.ask(QUESTION), service)


def test_nothing_relevant_is_still_the_usual_refusal(service):
    answer = service.ask("What is the capital of France?")
    assert answer.refused and answer.mode == "generated" and answer.citations == []
    assert service.llm.engine.prompts == []


def test_quotes_are_not_cached_so_the_llm_answers_once_it_is_back(service):
    assert service.ask(QUESTION).mode == "extractive"
    n = next(i for i, e in enumerate(service.retriever.retrieve(analyse_question(QUESTION)).evidence, 1) if "11 municipal" in e.text)
    service.llm = ScriptedLLM(f"Representatives from 11 municipal state-owned enterprises jointly launched it [{n}].")
    answer = service.ask(QUESTION)
    assert answer.mode == "generated" and answer.notice == "" and answer.answer.endswith("[1].")


def test_a_follow_up_whose_rewrite_fails_is_searched_as_written_without_asking_the_llm_again(service):
    rewriter = FakeUnreachableLLM()
    service.rewriter = rewriter
    history = [{"role": "user", "content": "Who launched the AI+ Action Initiative?"},
               {"role": "assistant", "content": "Municipal state-owned enterprises launched it [1]."}]
    answer = service.ask(QUESTION, history=history)
    check_quotes(answer, service)
    assert len(rewriter.prompts) == 1 and service.llm.engine.prompts == []  # one wait for the LLM, not two


def test_the_chat_labels_quotes_in_the_interface_language(service):
    conversation = Conversation()
    turn = conversation.start(QUESTION)
    for event in service.ask_stream(QUESTION):
        apply_event(turn, event, service)
    for lang, label in (("en", "Quoted from the documents"), ("zh", "直接引用文件原文")):
        page = BeautifulSoup(render_conversation(conversation, lang), "html.parser")
        block = page.select_one(".cb-answer")
        assert block["data-mode"] == "extractive" and "cb-extractive" in block["class"]
        assert label in block.select_one(".cb-label").get_text()
        assert block.select_one(".cb-verified") is None  # quotes are not presented as a verified answer
        assert "did not answer" in block.select_one(".cb-notice").get_text()
        assert len(block.select(".cb-source")) == len(turn.answer.citations)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("api-index"))


def test_the_api_returns_the_mode_and_notice(index, tmp_path):
    served = serve_fake(index, tmp_path, FakeUnreachableLLM())
    body = served.client.post("/api/v1/ask", json={"question": QUESTION}).json()
    assert body["mode"] == "extractive" and "did not answer" in body["notice"] and body["refused"] is False
    assert all(index.text[c["start"] : c["end"]] == c["text"] for c in body["citations"]) and body["citations"]
    metrics = served.client.get("/metrics").text
    assert 'chatbot_answers_total{outcome="extractive"} 1.0' in metrics


def test_the_openai_compatible_endpoint_has_mode_and_notice_at_the_top_level(index, tmp_path):
    served = serve_fake(index, tmp_path, FakeUnreachableLLM())
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=served.client,
                           max_retries=0)
    messages = [{"role": "user", "content": QUESTION}]
    completion = client.chat.completions.create(model="m", messages=messages).model_dump()
    assert completion["mode"] == "extractive" and "did not answer" in completion["notice"]
    assert completion["choices"][0]["message"]["content"].startswith("Quoted from the documents:")
    chunks = [c.model_dump() for c in client.chat.completions.create(model="m", messages=messages, stream=True)]
    assert chunks[-1]["mode"] == "extractive" and chunks[-1]["notice"] == completion["notice"]
    assert all("mode" not in c for c in chunks[:-1])
