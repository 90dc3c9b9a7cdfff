"""The API under uvicorn on loopback (a real socket, so a client can really go away): a disconnect mid-stream
frees the model at once, questions queue fairly, and retrieval/documents/health stay fast during a generation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

from chatbot.gate import GenerationGate
from tests.fakes import ScriptedSlowLLM
from tests.unit.api_app import QUESTION, build_fake_index, serve_fake


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("api-index"))


class Uvicorn:
    def __init__(self, app) -> None:  # noqa: ANN001
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def endless(index, tmp_path) -> Iterator[tuple[str, object, ScriptedSlowLLM]]:
    """A server whose model writes a word every 20 ms for ever: only a disconnect ends a generation."""
    llm = ScriptedSlowLLM("Eleven enterprises launched it [1].", delay=0.02, endless=True)
    served = serve_fake(index, tmp_path, llm, gate=GenerationGate(slots=1, max_waiting=2))
    with Uvicorn(served.app) as url:
        yield url, served, llm


def first_draft_then_leave(url: str) -> None:
    with httpx.Client(timeout=10) as client, client.stream("POST", url + "/api/v1/ask/stream",
                                                            json={"question": QUESTION}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line == "event: draft":
                return  # leaving the with-blocks closes the connection mid-stream


def wait_for(condition, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_client_that_disconnects_mid_stream_frees_the_model(endless):
    url, served, llm = endless
    first_draft_then_leave(url)
    # the generation would never end on its own: only closing the stream releases the gate
    assert wait_for(lambda: served.service.gate.active == 0, 3.0), "the model was not released"
    assert llm.closed_early == 1
    first_draft_then_leave(url)  # the next question gets the model
    assert wait_for(lambda: served.service.gate.active == 0 and llm.closed_early == 2, 3.0)


def test_a_client_that_disconnects_while_waiting_in_line_leaves_it(endless):
    url, served, llm = endless
    gate = served.service.gate
    with httpx.Client(timeout=10) as a, a.stream("POST", url + "/api/v1/ask/stream", json={"question": QUESTION}) as held:
        lines = held.iter_lines()  # kept: a dropped line iterator closes the connection
        assert next(line for line in lines if line == "event: draft")  # A has the model, for ever
        with httpx.Client(timeout=10) as b, b.stream("POST", url + "/api/v1/ask/stream",
                                                     json={"question": QUESTION}) as waiting:
            assert waiting.status_code == 200
            b_lines = waiting.iter_lines()
            assert wait_for(lambda: gate.waiting == 1, 5.0), "B did not get in line"
            del b_lines
        # B hung up before its turn: it leaves the line while A still generates
        assert wait_for(lambda: gate.waiting == 0, 2.0), "a client that went away kept its place in line"
        assert gate.active == 1
        with ThreadPoolExecutor(1) as pool:
            c = pool.submit(first_draft_then_leave, url)  # C waits behind A only
            assert wait_for(lambda: gate.waiting == 1, 5.0)
            held.close()  # A leaves: the model goes to C, not to B's old place
            c.result(timeout=10)
    assert wait_for(lambda: gate.active == 0 and gate.waiting == 0, 3.0)
    assert llm.closed_early == 2  # A's and C's generations; B's never started


def test_retrieval_documents_and_health_stay_fast_during_a_generation(endless):
    url, served, llm = endless
    with httpx.Client(timeout=10) as client, client.stream("POST", url + "/api/v1/ask/stream",
                                                            json={"question": QUESTION}) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line == "event: draft")
        assert served.service.gate.active == 1
        for method, path, body in (("POST", "/api/v1/retrieve", {"question": QUESTION}),
                                   ("GET", "/api/v1/documents", None), ("GET", "/healthz", None),
                                   ("GET", "/readyz", None), ("GET", "/metrics", None)):
            with httpx.Client(timeout=5) as other:
                t = time.perf_counter()
                r = other.request(method, url + path, json=body)
                assert r.status_code == 200, path
                assert time.perf_counter() - t < 1.0, path
        assert 'chatbot_generations_active 1.0' in httpx.get(url + "/metrics").text
        assert served.service.gate.active == 1  # still generating
    assert wait_for(lambda: served.service.gate.active == 0, 3.0)


def test_questions_wait_in_a_bounded_line_and_the_rest_get_503(index, tmp_path):
    llm = ScriptedSlowLLM(*["Eleven enterprises launched it [1]."] * 3, delay=0.1)
    served = serve_fake(index, tmp_path, llm, gate=GenerationGate(slots=1, max_waiting=1))
    with Uvicorn(served.app) as url, ThreadPoolExecutor(4) as pool:
        def ask(i: int) -> httpx.Response:
            time.sleep(0.15 * i)  # arrive in order: 0 answers, 1 waits, 2 and 3 find the line full
            return httpx.post(url + "/api/v1/ask", json={"question": QUESTION}, timeout=30)

        responses = list(pool.map(ask, range(4)))
    assert [r.status_code for r in responses] == [200, 200, 503, 503]
    for r in responses[2:]:
        assert r.json()["error"]["code"] == "busy" and int(r.headers["retry-after"]) >= 1
