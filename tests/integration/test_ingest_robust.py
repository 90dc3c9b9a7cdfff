"""A real `chatbot ingest` killed with SIGKILL midway, with the real embedders and the embedded Chroma: the
previous index keeps answering exactly as before, a second ingest is refused meanwhile, and the next ingest
ends with exactly the corpus's documents."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatbot.chunking import split_sentences
from chatbot.config import Settings
from chatbot.corpus import load_corpus
from chatbot.embeddings import Embedders, load_embedders
from chatbot.ingest import build_index, open_index
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.snapshot import read_local_catalog
from chatbot.store import chroma_client

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHATBOT = str(Path(sys.executable).with_name("chatbot"))


def gold_questions(n: int) -> list[str]:
    items = [json.loads(x) for x in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines() if x]
    en = [q["question"] for q in items if q["language"] == "en"][: n // 2]
    zh = [q["question"] for q in items if q["language"] == "zh"][: n - len(en)]
    return en + zh


def synthetic_documents(corpus: Path, count: int, *, prefix: str = "district") -> list[str]:
    """Documents made of the real document's sentences, each sentence made unique (so every text costs an
    embedding, as new documents would)."""
    text = (REPO / "corpus" / "shanghai-soe-ai-plus-initiative.txt").read_text(encoding="utf-8")
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    names = []
    for n in range(count):
        picked = [sentences[(n * 5 + i * 3) % len(sentences)] for i in range(5)]
        body = " ".join(f"In {prefix} {n}, item {i}: {s}" for i, s in enumerate(picked))
        name = f"{prefix}-{n:03d}"
        (corpus / f"{name}.txt").write_text(f"{prefix.title()} {n} report. {body} It counts {n * 17 + 3} sites.",
                                            encoding="utf-8")
        names.append(name)
    return names


def ranked(retriever: HybridRetriever, questions: list[str]) -> list[list[tuple[str, int, int]]]:
    return [[(c.chunk.doc_id, c.chunk.start, c.chunk.end) for c in retriever.retrieve(analyse_question(q), top_k=8).chunks]
            for q in questions]


@pytest.fixture(scope="module")
def embedders() -> Embedders:
    return load_embedders(Settings())


def test_sigkill_midway_loses_nothing(tmp_path, embedders):
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", corpus)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", collection_prefix="robust")
    build_index(settings, embedders=embedders, progress=False)
    questions = gold_questions(12)
    retriever = HybridRetriever(settings, embedders)
    before = ranked(retriever, questions)

    synthetic_documents(corpus, 36)
    text = (corpus / "shanghai-soe-ai-plus-initiative.txt").read_text(encoding="utf-8")
    (corpus / "shanghai-soe-ai-plus-initiative.txt").write_text(text + "\nA note added later.", encoding="utf-8")
    env = {**os.environ, "CHATBOT_CORPUS_DIR": str(corpus), "CHATBOT_INDEX_DIR": str(settings.index_dir),
           "CHATBOT_COLLECTION_PREFIX": "robust", "CHATBOT_INGEST_ROUND_TEXTS": "40"}
    proc = subprocess.Popen([CHATBOT, "ingest", "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        documents = open_index(settings).documents
        deadline = time.time() + 240
        answered = 0
        while documents.count() < 4 and time.time() < deadline and proc.poll() is None:
            assert all(ranked(retriever, questions[:2])), "a question asked during the re-index got nothing"
            answered += 1
            time.sleep(0.1)
        assert proc.poll() is None, f"the ingest finished before it could be killed: {proc.communicate()}"
        assert documents.count() >= 4, "the ingest did not get going in time"
        second = subprocess.run([CHATBOT, "ingest", "--quiet"], env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "Another ingest is already running" in second.stderr
        assert "Traceback" not in second.stderr
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert answered > 0
    index = open_index(settings)
    assert index.catalog.stamp() == (index.recipe, 1)  # killed before its commit

    chroma_client(settings.index_dir, fresh=True)  # what a new process would see on disk
    after = HybridRetriever(settings, embedders)
    assert set(after.documents) == {"shanghai-soe-ai-plus-initiative"}
    assert ranked(after, questions) == before

    done = subprocess.run([CHATBOT, "ingest", "--quiet"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "Found records no catalog lists" in done.stdout and "37 documents" in done.stdout
    wanted = {d.doc_id for d in load_corpus(corpus).documents}
    catalog = read_local_catalog(settings.index_dir)
    assert catalog is not None and set(catalog["documents"]) == wanted and catalog["generation"] == 2
    chroma_client(settings.index_dir, fresh=True)
    index = open_index(settings)
    chunks = sum(e["chunks"] for e in catalog["documents"].values())
    sentences = sum(e["sentences"] for e in catalog["documents"].values())
    for store in index.chunks.values():
        assert store.count() == chunks
    for store in index.sentences.values():
        assert store.count() == sentences
    assert index.documents.count() == len(wanted)
    final = HybridRetriever(settings, embedders)
    got = final.retrieve(analyse_question("How many sites does the district 7 report count?"))
    assert got.chunks[0].chunk.doc_id == "district-007"
    assert any("A note added later" in c.text for c in final._chunks_by_id.values())
