"""The hosted (OpenAI-compatible) backend against a real server: llama.cpp's own, on loopback."""

import socket
import subprocess
import sys
import time

import pytest

from chatbot.errors import LLMUnavailable
from chatbot.llm import HostedLLM, resolve_model_path
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
         "--n_threads", "2", "--chat_format", "chatml", "--n_ctx", "4096"],
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
    llm = HostedLLM(f"http://127.0.0.1:{free_port()}/v1", "m", None, timeout_s=3)
    with pytest.raises(LLMUnavailable, match="Cannot reach the hosted LLM"):
        list(llm.stream([{"role": "user", "content": "hi"}], max_tokens=5))
