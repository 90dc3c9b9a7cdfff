"""The hosted (OpenAI-compatible) backend against a real server: llama.cpp's own, on loopback."""

import socket
import subprocess
import sys
import time

import pytest

from chatbot.errors import LLMUnavailable
from chatbot.llm import HostedLLM, load_llm, resolve_model_path
from chatbot.service import ChatService

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hosted_url(real_settings):
    port = free_port()
    model = resolve_model_path(real_settings.llm_model, real_settings.cache_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_threads", "2", "--chat_format", "chatml", "--n_ctx", "4096", "--interrupt_requests", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_answers_through_a_hosted_openai_compatible_endpoint(real_settings, hosted_url, doc_text):
    settings = real_settings.model_copy(update={"llm_backend": "hosted", "hosted_base_url": hosted_url,
                                                "hosted_model": "local-qwen"})
    service = ChatService.from_settings(settings)
    assert isinstance(service.llm, HostedLLM)
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
