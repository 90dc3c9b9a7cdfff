"""HostedLLM's timeouts and retries against a scripted OpenAI-compatible server on loopback (FakeOpenAIServer)."""

import socket
import time

import pytest

from chatbot.config import Settings
from chatbot.errors import LLMUnavailable
from chatbot.llm import HostedLLM, load_llm, retry_after_seconds
from tests.fakes import FakeOpenAIServer, FakeReply

HI = [{"role": "user", "content": "hi"}]


def hosted(url: str, **options) -> tuple[HostedLLM, list[float]]:
    """A HostedLLM whose waits between tries are recorded instead of slept, and whose jitter is 1 (the longest)."""
    waits: list[float] = []
    defaults = {"connect_timeout_s": 2.0, "read_timeout_s": 2.0, "max_attempts": 3, "backoff_s": 0.5,
                "backoff_max_s": 8.0}
    llm = HostedLLM(url, "fake-model", None, **{**defaults, **options}, sleep=waits.append, jitter=lambda: 1.0)
    return llm, waits


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_server_errors_then_an_answer_is_retried_with_growing_backoff():
    with FakeOpenAIServer(FakeReply(status=503), FakeReply(status=502),
                          FakeReply(tokens=["Eleven ", "enterprises."])) as server:
        llm, waits = hosted(server.url)
        assert "".join(llm.stream(HI, max_tokens=5)) == "Eleven enterprises."
    assert len(server.requests) == 3
    assert all(r["messages"] == HI and r["stream"] is True for r in server.requests)  # the same request again
    assert waits == [0.5, 1.0]  # exponential: backoff_s, then twice that


def test_jitter_spreads_each_wait_between_half_and_all_of_the_backoff():
    llm = HostedLLM("http://127.0.0.1:9/v1", "m", None, backoff_s=1.0, backoff_max_s=3.0, max_attempts=9,
                    jitter=lambda: 0.0)
    import openai

    exc = openai.APIConnectionError(request=None)  # type: ignore[arg-type]
    assert [llm.retry_delay(exc, n) for n in (1, 2, 3)] == [0.5, 1.0, 1.5]  # 1, 2, 4 capped at 3, halved
    assert llm.retry_delay(exc, 9) is None  # the tries are used up


def test_429_waits_as_long_as_retry_after_says():
    with FakeOpenAIServer(FakeReply(status=429, headers={"Retry-After": "2"}), FakeReply(tokens=["OK."])) as server:
        llm, waits = hosted(server.url)
        assert "".join(llm.stream(HI, max_tokens=5)) == "OK."
    assert waits == [2.0] and len(server.requests) == 2


def test_a_retry_after_longer_than_the_longest_wait_is_not_waited_for():
    with FakeOpenAIServer(FakeReply(status=429, headers={"Retry-After": "120"}), FakeReply(tokens=["OK."])) as server:
        llm, waits = hosted(server.url)
        with pytest.raises(LLMUnavailable, match="HTTP 429"):
            list(llm.stream(HI, max_tokens=5))
    assert waits == [] and len(server.requests) == 1


def test_attempts_are_bounded():
    with FakeOpenAIServer(FakeReply(status=500)) as server:
        llm, waits = hosted(server.url, max_attempts=4)
        with pytest.raises(LLMUnavailable, match=r"HTTP 500 \(4 tries\)"):
            list(llm.stream(HI, max_tokens=5))
    assert len(server.requests) == 4 and waits == [0.5, 1.0, 2.0]


def test_a_refused_request_is_not_retried():
    with FakeOpenAIServer(FakeReply(status=400), FakeReply(tokens=["never"])) as server:
        llm, waits = hosted(server.url)
        with pytest.raises(LLMUnavailable, match="HTTP 400"):
            list(llm.stream(HI, max_tokens=5))
    assert len(server.requests) == 1 and waits == []
    with FakeOpenAIServer(FakeReply(status=401)) as server:
        with pytest.raises(LLMUnavailable, match="rejected the API key"):
            list(hosted(server.url)[0].stream(HI, max_tokens=5))
        assert len(server.requests) == 1


def test_an_unreachable_server_is_tried_max_attempts_times_then_reported():
    llm, waits = hosted(f"http://127.0.0.1:{unused_port()}/v1")
    with pytest.raises(LLMUnavailable, match=r"Cannot reach the hosted LLM .*\(3 tries\)"):
        list(llm.stream(HI, max_tokens=5))
    assert waits == [0.5, 1.0]


def test_a_stream_cut_off_after_its_first_token_is_not_sent_again():
    with FakeOpenAIServer(FakeReply(tokens=["Eleven ", "enter"], drop=True), FakeReply(tokens=["again"])) as server:
        llm, waits = hosted(server.url)
        got: list[str] = []
        with pytest.raises(LLMUnavailable, match="stopped answering in the middle"):
            for piece in llm.stream(HI, max_tokens=5):
                got.append(piece)
    assert got == ["Eleven ", "enter"]  # what was streamed stays the only output
    assert len(server.requests) == 1 and waits == []


def test_a_server_that_does_not_answer_within_the_read_timeout_is_reported_without_waiting_again():
    with FakeOpenAIServer(FakeReply(tokens=["late"], stall=3.0)) as server:
        llm, waits = hosted(server.url, read_timeout_s=0.5)
        t0 = time.perf_counter()
        with pytest.raises(LLMUnavailable, match=r"did not answer within 0.5 s"):
            list(llm.stream(HI, max_tokens=5))
        took = time.perf_counter() - t0
    assert took < 2.5 and len(server.requests) == 1 and waits == []


def test_retry_after_forms():
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_settings_reach_the_client():
    settings = Settings(llm_backend="hosted", hosted_base_url="http://127.0.0.1:9/v1", hosted_connect_timeout_s=1.5,
                        hosted_read_timeout_s=7.0, hosted_max_attempts=5, hosted_backoff_s=0.2,
                        hosted_backoff_max_s=4.0)
    llm = load_llm(settings)
    assert isinstance(llm, HostedLLM)
    assert (llm.max_attempts, llm.backoff_s, llm.backoff_max_s, llm.read_timeout_s) == (5, 0.2, 4.0, 7.0)
    timeout = llm._client.timeout
    assert timeout.connect == 1.5 and timeout.read == 7.0
