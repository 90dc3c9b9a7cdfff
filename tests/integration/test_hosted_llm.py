"""The hosted (OpenAI-compatible) backend against a real server: llama.cpp's own, on loopback."""

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup
from pydantic import TypeAdapter

from chatbot.app import create_app
from chatbot.errors import LLMUnavailable
from chatbot.llm import HostedLLM, load_llm, resolve_model_path
from chatbot.schemas import Answer, DraftEvent, StreamEvent
from chatbot.service import ChatService
from chatbot.state import AppState
from chatbot.ui.conversation import Conversation, apply_event
from chatbot.ui.render import render_conversation
from tests.unit.test_api_concurrency import Uvicorn

pytestmark = pytest.mark.integration

QUESTION = "How many municipal state-owned enterprises jointly launched the initiative?"
EVENT: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(model: Path, port: int) -> subprocess.Popen:
    """llama.cpp's OpenAI-compatible server with the packaged model on loopback, returned once its port answers
    (it listens only after loading the model)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_threads", "2", "--chat_format", "chatml", "--n_ctx", "4096", "--interrupt_requests", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    proc.wait(timeout=30)
    raise RuntimeError(f"llama_cpp.server did not listen on port {port} (exit code {proc.returncode})")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def hosted_url(real_settings):
    port = free_port()
    proc = start_llama_server(resolve_model_path(real_settings.llm_model, real_settings.cache_dir), port)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


def test_answers_through_a_hosted_openai_compatible_endpoint(real_settings, hosted_url, doc_text):
    settings = real_settings.model_copy(update={"llm_backend": "hosted", "hosted_base_url": hosted_url,
                                                "hosted_model": "local-qwen"})
    service = ChatService.from_settings(settings)
    assert isinstance(service.llm.engine, HostedLLM)
    a = service.ask("How many municipal state-owned enterprises jointly launched the initiative?")
    assert not a.refused and "11" in a.answer, a
    assert all(doc_text[c.start : c.end] == c.text for c in a.citations)


def test_an_unreachable_hosted_endpoint_is_a_clear_error():
    llm = HostedLLM(f"http://127.0.0.1:{free_port()}/v1", "m", None, connect_timeout_s=3, backoff_s=0.05)
    with pytest.raises(LLMUnavailable, match=r"Cannot reach the hosted LLM .*\(3 tries\)"):
        list(llm.stream([{"role": "user", "content": "hi"}], max_tokens=5))


@pytest.fixture(scope="module")
def unreachable_service(real_settings):
    """The real embedders and index, and a hosted LLM on a port where nothing listens."""
    settings = real_settings.model_copy(update={
        "llm_backend": "hosted", "hosted_base_url": f"http://127.0.0.1:{free_port()}/v1", "hosted_model": "m",
        "hosted_backoff_s": 0.2})
    return ChatService.from_settings(settings)


def assert_quoted(answer, service, doc_text) -> None:
    assert answer.mode == "extractive" and not answer.refused and answer.notice
    assert answer.citations and [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for c in answer.citations:
        text = doc_text if c.doc_id == "shanghai-soe-ai-plus-initiative" else service.document_text(c.doc_id)
        assert text[c.start : c.end] == c.text
        assert f"“{' '.join(c.text.split())}”" in answer.answer


def test_an_unreachable_llm_answers_with_quotes_from_the_documents(unreachable_service, doc_text):
    t0 = time.perf_counter()
    answer = unreachable_service.ask("How many municipal state-owned enterprises jointly launched the initiative?")
    assert time.perf_counter() - t0 < 20  # three quick tries, not a hang
    assert_quoted(answer, unreachable_service, doc_text)
    assert answer.answer.startswith("Quoted from the documents:")
    assert any("11 municipal state-owned enterprises" in c.text for c in answer.citations)
    off_topic = unreachable_service.ask("What is the capital of France?")
    assert off_topic.refused and off_topic.mode == "generated"  # nothing relevant: the usual refusal


def test_a_chinese_question_gets_chinese_words_around_the_quotes(unreachable_service, doc_text):
    answer = unreachable_service.ask("中国太平构建了多少条高质量保险数据指令？")
    assert_quoted(answer, unreachable_service, doc_text)
    assert answer.language == "zh" and answer.answer.startswith("以下直接引用文件原文") and "语言模型" in answer.notice


def test_a_server_that_accepts_but_never_answers_times_out_into_quotes(unreachable_service, real_settings, doc_text):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings = real_settings.model_copy(update={
            "llm_backend": "hosted", "hosted_base_url": f"http://127.0.0.1:{silent.getsockname()[1]}/v1",
            "hosted_model": "m", "hosted_read_timeout_s": 1.0})
        service = ChatService(settings, embedders=unreachable_service.embedders,
                              retriever=unreachable_service.retriever, llm=load_llm(settings))
        t0 = time.perf_counter()
        answer = service.ask("What is China Taiping building with large models?")
        took = time.perf_counter() - t0
    assert took < 10  # one read timeout: a server that took the request is not sent it again
    assert_quoted(answer, service, doc_text)


def stream_events(response: httpx.Response) -> Iterator[StreamEvent]:
    """The typed events of an /api/v1/ask/stream response, as they arrive."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield EVENT.validate_json(line[len("data: ") :])


def test_a_hosted_llm_killed_mid_answer_ends_with_labelled_quotes_and_the_next_answers_follow(
        unreachable_service, real_settings, doc_text, tmp_path):
    """llama.cpp's server is SIGKILLed as soon as the first draft token reaches a client of /api/v1/ask/stream
    (the API under uvicorn on loopback, over a service with the real embedders and index)."""
    port = free_port()
    model = resolve_model_path(real_settings.llm_model, real_settings.cache_dir)
    settings = real_settings.model_copy(update={
        "llm_backend": "hosted", "hosted_base_url": f"http://127.0.0.1:{port}/v1", "hosted_model": "local-qwen",
        "hosted_connect_timeout_s": 2.0, "hosted_read_timeout_s": 60.0, "hosted_backoff_s": 0.5,
        "db_path": tmp_path / "chatbot.sqlite3", "rate_limit_per_minute": 0})
    service = ChatService(settings, embedders=unreachable_service.embedders,
                          retriever=unreachable_service.retriever, llm=load_llm(settings))
    app = create_app(settings, state=AppState(settings, service=service), ui=False)
    server = start_llama_server(model, port)
    try:
        assert service.warmup() == {"answer": "evaluated"}  # the server caches the fixed prompt prefix
        with Uvicorn(app) as url, httpx.Client(base_url=url, timeout=120) as client:
            # 1. Killed while it writes: the stream still ends with an answer event, quotes labelled as such.
            events: list[StreamEvent] = []
            with client.stream("POST", "/api/v1/ask/stream", json={"question": QUESTION}) as r:
                assert r.status_code == 200
                for event in stream_events(r):
                    events.append(event)
                    if isinstance(event, DraftEvent) and server.poll() is None:
                        server.send_signal(signal.SIGKILL)
                        server.wait(timeout=10)
            assert server.returncode == -signal.SIGKILL
            kinds = [e.type for e in events]
            assert kinds[0] == "sources" and "draft" in kinds and kinds[-1] == "answer", kinds  # no error event
            cut = events[-1].answer
            assert_quoted(cut, service, doc_text)
            assert cut.answer.startswith("Quoted from the documents:")
            assert "stopped in the middle of its answer" in cut.notice
            assert any("11 municipal state-owned enterprises" in c.text for c in cut.citations)

            # The chat, fed the same events, shows the quotes under their label with the notice; the half answer
            # is gone and nothing is marked verified.
            conversation = Conversation()
            turn = conversation.start(QUESTION)
            for event in events:
                apply_event(turn, event, service)
            page = BeautifulSoup(render_conversation(conversation, "en"), "html.parser")
            block = page.select_one(".cb-answer")
            assert turn.phase == "done" and block["data-mode"] == "extractive"
            assert "Quoted from the documents" in block.select_one(".cb-label").get_text()
            assert block.select_one(".cb-notice").get_text(strip=True) == cut.notice
            assert page.select(".cb-draft") == [] and page.select(".cb-verified") == [] and not page.select(".cb-error")

            # 2. The server stays down: the next question gets quotes at once (connections refused, tries spent),
            # well within the configured connect timeouts and waits.
            t0 = time.perf_counter()
            r = client.post("/api/v1/ask", json={"question": QUESTION})
            took = time.perf_counter() - t0
            assert r.status_code == 200, r.text
            down = Answer.model_validate(r.json())
            assert_quoted(down, service, doc_text)
            assert "did not answer" in down.notice
            tries = settings.hosted_max_attempts
            assert took < tries * settings.hosted_connect_timeout_s + (tries - 1) * settings.hosted_backoff_max_s

            # 3. The server is back on the same port: the answer is written by the LLM again (quotes are not cached).
            server = start_llama_server(model, port)
            r = client.post("/api/v1/ask", json={"question": QUESTION})
            assert r.status_code == 200, r.text
            back = Answer.model_validate(r.json())
            assert back.mode == "generated" and back.notice == "" and not back.refused, back
            assert "11" in back.answer and back.citations
            assert all(doc_text[c.start : c.end] == c.text for c in back.citations)
    finally:
        stop(server)
