"""The index on Chroma's own server (`chroma run`): the same ingest and retrieval as the embedded database,
and several workers (each with its own index folder, as on separate machines) sharing one server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatbot.config import Settings
from chatbot.embeddings import Embedders, load_embedders
from chatbot.errors import ChatbotError
from chatbot.ingest import build_index
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.snapshot import text_path
from chatbot.store import chroma_client
from tests.integration.test_ingest_robust import gold_questions

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHROMA = str(Path(sys.executable).with_name("chroma"))
DOC = "shanghai-soe-ai-plus-initiative"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen([CHROMA, "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while True:
            try:
                chroma_client(root, "127.0.0.1", port)
                break
            except ChatbotError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"chroma run did not start: {(root / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def embedders() -> Embedders:
    return load_embedders(Settings())


def results(retriever: HybridRetriever, questions: list[str]) -> list[tuple]:
    out = []
    for q in questions:
        got = retriever.retrieve(analyse_question(q))
        out.append(([(c.chunk.doc_id, c.chunk.start, c.chunk.end, round(c.score, 9), round(c.dense, 4))
                     for c in got.chunks], [(e.doc_id, e.start, e.end) for e in got.evidence], got.relevant))
    return out


def test_server_mode_gives_the_embedded_results_and_workers_share_it(tmp_path, chroma_port, embedders):
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", corpus)
    questions = gold_questions(20)

    embedded = Settings(corpus_dir=corpus, index_dir=tmp_path / "embedded", index_check_s=0)
    build_index(embedded, embedders=embedders, progress=False)
    expected = results(HybridRetriever(embedded, embedders), questions)

    def server(folder: str) -> Settings:
        return Settings(corpus_dir=corpus, index_dir=tmp_path / folder, chroma_host="127.0.0.1",
                        chroma_port=chroma_port, index_check_s=0)

    summary = build_index(server("ingester"), embedders=embedders, progress=False)
    assert summary.added == [DOC]
    assert not (tmp_path / "ingester" / "chroma").exists()  # the vectors went to the server
    worker_a = HybridRetriever(server("worker-a"), embedders)
    assert results(worker_a, questions) == expected
    worker_b = HybridRetriever(server("worker-b"), embedders)  # an empty folder: rebuilt from the server
    assert results(worker_b, questions) == expected
    assert text_path(tmp_path / "worker-b", DOC).read_text(encoding="utf-8") == \
        (corpus / f"{DOC}.txt").read_text(encoding="utf-8")

    # A re-ingest elsewhere: both workers notice the newer index and answer from it.
    (corpus / "harbour.md").write_text("The Yangshan harbour pilot runs 17 automated cranes.", encoding="utf-8")
    summary = build_index(server("ingester"), embedders=embedders, progress=False)
    assert summary.added == ["harbour"]
    for worker in (worker_a, worker_b):
        assert "harbour" not in worker.documents
        assert worker.refresh() and not worker.refresh()
        got = worker.retrieve(analyse_question("How many automated cranes does the harbour pilot run?"))
        assert got.chunks[0].chunk.doc_id == "harbour"
        assert set(worker.documents) == {DOC, "harbour"}
    assert text_path(tmp_path / "worker-b", "harbour").read_text(encoding="utf-8").startswith("The Yangshan")
    # ... and a worker started now gets the same index.
    assert set(HybridRetriever(server("worker-c"), embedders).documents) == {DOC, "harbour"}


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    port = free_port()
    settings = Settings(corpus_dir=REPO / "corpus", index_dir=tmp_path / "i", chroma_host="127.0.0.1", chroma_port=port)
    with pytest.raises(ChatbotError, match=f"Cannot reach the Chroma server at 127.0.0.1:{port}"):
        build_index(settings, progress=False)
