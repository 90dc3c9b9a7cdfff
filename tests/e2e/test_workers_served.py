"""`chatbot serve --workers 2` as the README's "When one machine is not enough" runs it: a Chroma server
(`chroma run`), llama.cpp's OpenAI-compatible server with the packaged model, `chatbot ingest` into Chroma,
then two API workers, each rebuilding its in-memory index from Chroma into an empty folder. Real clients (httpx)
check that both workers serve, give the same passages, answer with correct citations, and both notice a
re-ingest done elsewhere."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from chatbot.app import WORKER_HEADER
from chatbot.config import Settings
from chatbot.llm import resolve_model_path
from tests.e2e.conftest import CHATBOT, REPO, Served, free_port, stop_server
from tests.e2e.test_api_served import assert_cited
from tests.integration.test_chroma_server import chroma_port  # noqa: F401 - the Chroma server fixture

pytestmark = pytest.mark.e2e

QUESTION = "How many municipal state-owned enterprises jointly launched the initiative?"
DOC = "shanghai-soe-ai-plus-initiative"
MODEL_ALIAS = "qwen2.5-coder-1.5b"


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def by_worker(url: str, requests: list[tuple[str, str, dict | None]]) -> list[tuple[str, httpx.Response]]:
    """Send the requests at once, each on its own connection (so the kernel hands them to either worker)."""

    def send(req: tuple[str, str, dict | None]) -> tuple[str, httpx.Response]:
        method, path, body = req
        r = httpx.request(method, url + path, json=body, timeout=120)
        return r.headers[WORKER_HEADER], r

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


@pytest.fixture(scope="module")
def workers(tmp_path_factory, chroma_port) -> Iterator[Served]:  # noqa: F811
    root = tmp_path_factory.mktemp("workers")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in (f"{DOC}.txt", "manifest.toml"):
        (corpus / name).write_bytes((REPO / "corpus" / name).read_bytes())
    llm_port = free_port()
    llm_log = (root / "llm.log").open("wb")
    model = resolve_model_path(Settings().llm_model, Settings().cache_dir)
    llm = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
                            MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(llm_port), "--n_threads", "2",
                            "--chat_format", "chatml", "--n_ctx", "4096", "--interrupt_requests", "false"],
                           stdout=llm_log, stderr=subprocess.STDOUT)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    env = {**base, "CHATBOT_CORPUS_DIR": str(corpus), "CHATBOT_CHROMA_HOST": "127.0.0.1",
           "CHATBOT_CHROMA_PORT": str(chroma_port), "CHATBOT_LLM_BACKEND": "hosted",
           "CHATBOT_HOSTED_BASE_URL": f"http://127.0.0.1:{llm_port}/v1", "CHATBOT_HOSTED_MODEL": MODEL_ALIAS,
           "CHATBOT_DB_PATH": str(root / "chatbot.sqlite3"), "CHATBOT_RATE_LIMIT_PER_MINUTE": "0",
           "CHATBOT_INDEX_CHECK_S": "1", "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False"}
    served = None
    try:
        ingest = subprocess.run([str(CHATBOT), "ingest", "--quiet", "--index", str(root / "ingester")], env=env,
                                capture_output=True, text=True, timeout=300)
        assert ingest.returncode == 0, ingest.stderr
        wait_for_port(llm_port, llm, 120)
        port = free_port()
        log = (root / "server.log").open("ab")
        # The workers' index folder starts empty: each rebuilds what queries need from Chroma.
        serve_env = {**env, "CHATBOT_INDEX_DIR": str(root / "workers-index")}
        process = subprocess.Popen([str(CHATBOT), "serve", "--port", str(port), "--workers", "2"], env=serve_env,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=root)
        served = Served(f"http://127.0.0.1:{port}", root, process, env)
        wait_for_port(port, process, 60)
        ready: set[str] = set()
        deadline = time.monotonic() + 240
        while len(ready) < 2:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"two ready workers not seen (ready: {ready}):\n{served.log()[-3000:]}")
            for worker, r in by_worker(served.url, [("GET", "/readyz", None)] * 4):
                assert r.json()["worker"] == int(worker)
                if r.status_code == 200:
                    ready.add(worker)
                elif r.json()["status"] == "failed":
                    raise RuntimeError(f"a worker failed to load: {r.text}")
            time.sleep(0.5)
        yield served
    finally:
        if served is not None:
            stop_server(served)
        llm.terminate()
        llm.wait(timeout=30)
        llm_log.close()


def test_both_workers_serve_the_same_passages(workers):
    seen: dict[str, dict] = {}
    for _ in range(10):
        for worker, r in by_worker(workers.url, [("POST", "/api/v1/retrieve", {"question": QUESTION})] * 6):
            assert r.status_code == 200, r.text
            seen.setdefault(worker, r.json())
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"only worker(s) {list(seen)} answered"
    first, second = ([(p["doc_id"], p["start"], p["end"], p["text"]) for p in body["passages"]]
                     for body in seen.values())
    assert first == second and first[0][0] == DOC
    text = httpx.get(f"{workers.url}/api/v1/documents/{DOC}", timeout=30).json()["text"]
    assert all(text[start:end] == passage for _, start, end, passage in first)
    assert any("11 municipal state-owned enterprises" in e["text"] for e in seen.popitem()[1]["evidence"])


def test_an_answer_from_the_workers_is_correct_and_cited(workers):
    for worker, r in by_worker(workers.url, [("POST", "/api/v1/ask", {"question": QUESTION})] * 2):
        assert r.status_code == 200, r.text
        answer = r.json()
        assert not answer["refused"] and "11" in answer["answer"], (worker, json.dumps(answer, ensure_ascii=False))
        assert_cited(workers.url, answer["answer"], answer["citations"])
        assert all(c["doc_id"] == DOC for c in answer["citations"])


def test_a_reingest_elsewhere_reaches_both_workers(workers):
    corpus = Path(workers.env["CHATBOT_CORPUS_DIR"])
    (corpus / "harbour.md").write_text("The Yangshan harbour pilot runs 17 automated cranes.", encoding="utf-8")
    ingest = subprocess.run([str(CHATBOT), "ingest", "--quiet", "--index", str(workers.root / "ingester")],
                            env=workers.env, capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    question = {"question": "How many automated cranes does the harbour pilot run?"}
    updated: set[str] = set()
    deadline = time.monotonic() + 60
    while len(updated) < 2 and time.monotonic() < deadline:
        for worker, r in by_worker(workers.url, [("POST", "/api/v1/retrieve", question)] * 6):
            assert r.status_code == 200, r.text  # questions never fail while a worker switches index
            if r.json()["passages"][0]["doc_id"] == "harbour":
                updated.add(worker)
        time.sleep(0.5)
    assert len(updated) == 2, f"only worker(s) {updated} noticed the new index"
