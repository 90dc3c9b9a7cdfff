import os
import time
from pathlib import Path

import pytest

from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.ingest import build_index, open_stores
from chatbot.query import analyse_question
from tests.fakes import FakeEmbedder


@pytest.fixture
def fake_embedders() -> Embedders:
    return Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))


def settings_for(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", collection_prefix="t")


def test_reingest_of_an_unchanged_corpus_does_no_work(tmp_path, corpus_dir, fake_embedders):
    s = settings_for(tmp_path, corpus_dir)
    first = build_index(s, embedders=fake_embedders, progress=False)
    assert first.added == ["shanghai-soe-ai-plus-initiative"] and first.chunks > 5
    second = build_index(s, embedders=fake_embedders, progress=False)
    assert not second.changed and second.unchanged == ["shanghai-soe-ai-plus-initiative"]
    assert second.chunks == first.chunks
    assert "0 added, 0 updated, 0 deleted, 1 unchanged" in second.line()


def test_changed_document_is_replaced_and_removed_one_deleted(tmp_path, corpus_dir, fake_embedders):
    s = settings_for(tmp_path, corpus_dir)
    (corpus_dir / "notes.md").write_text("# Notes\nThe pilot covers 7 districts. It starts in May 2025.\n",
                                         encoding="utf-8")
    build_index(s, embedders=fake_embedders, progress=False)
    (corpus_dir / "notes.md").write_text("# Notes\nThe pilot covers 9 districts.\n", encoding="utf-8")
    summary = build_index(s, embedders=fake_embedders, progress=False)
    assert summary.updated == ["notes"] and summary.unchanged == ["shanghai-soe-ai-plus-initiative"]
    stores = open_stores(s)
    for store in stores.values():
        texts = [c.text for c in store.all_chunks() if c.doc_id == "notes"]
        assert texts and all("9 districts" in t or "Notes" in t for t in texts)
        assert not any("7 districts" in c.text for c in store.all_chunks())
    (corpus_dir / "notes.md").unlink()
    summary = build_index(s, embedders=fake_embedders, progress=False)
    assert summary.deleted == ["notes"]
    for store in open_stores(s).values():
        assert {c.doc_id for c in store.all_chunks()} == {"shanghai-soe-ai-plus-initiative"}


def test_unreadable_file_is_reported_and_the_rest_indexed(tmp_path, corpus_dir, fake_embedders):
    (corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (corpus_dir / "latin1.txt").write_bytes("Le caf\xe9 co\xfbte cher \xe0 Z\xfcrich.".encode("latin-1"))
    summary = build_index(settings_for(tmp_path, corpus_dir), embedders=fake_embedders, progress=False)
    skipped = dict(summary.skipped)
    assert any(p.endswith("broken.pdf") and "not a valid PDF" in r for p, r in skipped.items())
    assert sorted(summary.added) == ["latin1", "shanghai-soe-ai-plus-initiative"]
    assert any(p.endswith("latin1.txt") and "decoded as" in r for p, r in summary.notes)
    assert "1 skipped" in summary.line()


def test_html_and_docx_documents_are_extracted(tmp_path, corpus_dir, fake_embedders):
    import docx

    (corpus_dir / "page.html").write_text("<html><body><script>x=1</script><p>Harbor water plan.</p></body></html>",
                                          encoding="utf-8")
    d = docx.Document()
    d.add_paragraph("The board met on 3 March.")
    d.save(str(corpus_dir / "minutes.docx"))
    summary = build_index(settings_for(tmp_path, corpus_dir), embedders=fake_embedders, progress=False)
    assert set(summary.added) == {"shanghai-soe-ai-plus-initiative", "page", "minutes"}
    chunks = {c.doc_id: c.text for c in next(iter(open_stores(settings_for(tmp_path, corpus_dir)).values())).all_chunks()}
    assert chunks["page"] == "Harbor water plan." and "x=1" not in chunks["page"]
    assert chunks["minutes"] == "The board met on 3 March."


# Batching, crash safety, the lock and the local copy -------------------------------------------------------

import threading  # noqa: E402

import numpy as np  # noqa: E402

from chatbot.chunking import chunk_document, split_sentences  # noqa: E402
from chatbot.corpus import load_corpus  # noqa: E402
from chatbot.ingest import IngestRunning, ingest_lock, open_index  # noqa: E402
from chatbot.retrieval import HybridRetriever  # noqa: E402
from chatbot.snapshot import CATALOG, KEYWORD, SENTENCES, TEXTS, read_local_catalog, text_path  # noqa: E402
from chatbot.store import IndexVectorStore, _Collection, chroma_client  # noqa: E402

QUESTIONS = ["How many enterprises launched the initiative?", "What is the AI+ action about?",
             "Which fund did the SASAC set up?", "中国太平的劳动生产率提升了多少？",
             "How many projects does report 99 list?", "What does report 3 list?"]


class FakeCountingEmbedder(FakeEmbedder):
    """Records every embed_documents call; can fail on a given call (an ingest dying midway) or be slow."""

    def __init__(self, name: str, *, fail_on_call: int | None = None, delay_s: float = 0.0) -> None:
        super().__init__(name)
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call
        self.delay_s = delay_s

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if self.fail_on_call is not None and len(self.calls) >= self.fail_on_call:
            raise RuntimeError("killed")
        time.sleep(self.delay_s)
        return super().embed_documents(texts)


def _results(retriever: HybridRetriever) -> list[list[tuple[str, int, int]]]:
    """The ranked chunks for each question; ten of them, so that every candidate list counts."""
    return [[(c.chunk.doc_id, c.chunk.start, c.chunk.end) for c in retriever.retrieve(analyse_question(q), top_k=10).chunks]
            for q in QUESTIONS]


def _variant(corpus_dir: Path, name: str, n: int) -> None:
    """Another document made of the real one's sentences, reordered and with its own numbers."""
    text = (corpus_dir / "shanghai-soe-ai-plus-initiative.txt").read_text(encoding="utf-8")
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    picked = [sentences[(i * 7 + n) % len(sentences)] for i in range(6)]
    (corpus_dir / f"{name}.txt").write_text(f"Report {n}. " + " ".join(picked) + f" It lists {n * 13} projects.",
                                            encoding="utf-8")


def _counts(settings: Settings) -> dict[str, int]:
    index = open_index(settings)
    return {c.name: c.count() for c in [*index.vector_collections(), index.documents]}


def _expected(settings: Settings) -> dict[str, int]:
    catalog = read_local_catalog(settings.index_dir)
    assert catalog is not None
    docs = catalog["documents"].values()
    index = open_index(settings)
    out = {c.name: sum(e["chunks"] for e in docs) for c in index.chunks.values()}
    out.update({c.name: sum(e["sentences"] for e in docs) for c in index.sentences.values()})
    out[index.documents.name] = len(catalog["documents"])
    return out


def test_each_distinct_text_is_embedded_once_in_one_call_per_embedder(tmp_path, corpus_dir, monkeypatch):
    import shutil

    shutil.copy(corpus_dir / "shanghai-soe-ai-plus-initiative.txt", corpus_dir / "copy.txt")
    (corpus_dir / "short.md").write_text("One sentence only.", encoding="utf-8")
    embedders = Embedders(FakeCountingEmbedder("minilm"), FakeCountingEmbedder("use"))
    upserts: list[str] = []
    original = _Collection._upsert

    def counting_upsert(self, ids, vectors, metadatas, documents=None):  # noqa: ANN001, ANN202
        upserts.append(self.name)
        return original(self, ids, vectors, metadatas, documents)

    monkeypatch.setattr(_Collection, "_upsert", counting_upsert)
    from llama_index.vector_stores.chroma import ChromaVectorStore

    chroma_add = ChromaVectorStore.add

    def counting_add(self, nodes, **kwargs):  # noqa: ANN001, ANN202 - chunk nodes, through llama-index's store
        upserts.append(self._collection.name)
        return chroma_add(self, nodes, **kwargs)

    monkeypatch.setattr(ChromaVectorStore, "add", counting_add)
    assert issubclass(IndexVectorStore, ChromaVectorStore)
    s = settings_for(tmp_path, corpus_dir)
    summary = build_index(s, embedders=embedders, progress=False)

    docs = load_corpus(corpus_dir).documents
    # Sentences only: a chunk's vector is made from its sentences' vectors (chunk_vectors="sentences")
    wanted = {d.text[x.start : x.end] for d in docs for x in split_sentences(d.text)}
    assert any(len(c.sentences) > 1 for c in chunk_document(docs[0]))  # chunks of several sentences exist
    for emb in embedders.by_name.values():
        assert len(emb.calls) == 1  # type: ignore[attr-defined]
        sent = emb.calls[0]  # type: ignore[attr-defined]
        assert len(sent) == len(set(sent)) and set(sent) == wanted
    assert summary.embedded_texts == len(wanted)
    assert summary.new_chunks == summary.chunks == 2 * len(chunk_document(docs[0])) + 1
    # one write per collection: chunks and sentences of each embedder, then the documents
    assert sorted(upserts) == sorted(["t_minilm", "t_use", "t_minilm_sentences", "t_use_sentences", "t_documents"])


def test_a_second_ingest_is_refused_with_a_message_or_waits(tmp_path, corpus_dir, fake_embedders):
    s = settings_for(tmp_path, corpus_dir)
    with ingest_lock(s.index_dir):
        with pytest.raises(IngestRunning, match="Another ingest is already running .*pid"):
            build_index(s, embedders=fake_embedders, progress=False)
    released = threading.Event()

    def hold() -> None:
        with ingest_lock(s.index_dir):
            time.sleep(1.0)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    summary = build_index(s, embedders=fake_embedders, progress=False, wait=True)
    assert released.is_set() and summary.added == ["shanghai-soe-ai-plus-initiative"]
    holder.join()


def test_an_ingest_that_dies_midway_leaves_the_previous_index_answering_and_the_next_one_repairs(
        tmp_path, corpus_dir, fake_embedders, monkeypatch):
    s = settings_for(tmp_path, corpus_dir)
    _variant(corpus_dir, "old-report", 1)
    _variant(corpus_dir, "changing", 2)
    build_index(s, embedders=fake_embedders, progress=False)
    before = _results(HybridRetriever(s, fake_embedders))
    before_docs = set(read_local_catalog(s.index_dir)["documents"])  # type: ignore[index]

    for n in range(3, 9):
        _variant(corpus_dir, f"new-{n}", n)
    _variant(corpus_dir, "changing", 99)
    (corpus_dir / "old-report.txt").unlink()
    s = s.model_copy(update={"ingest_round_texts": 30})  # several rounds
    dying = Embedders(FakeCountingEmbedder("minilm", fail_on_call=2), FakeCountingEmbedder("use"))
    with pytest.raises(RuntimeError, match="killed"):
        build_index(s, embedders=dying, progress=False)

    chroma_client(s.index_dir, fresh=True)  # as a new process would see the database
    after_crash = HybridRetriever(s, fake_embedders)
    assert set(after_crash.documents) == before_docs
    assert _results(after_crash) == before
    assert any(_counts(s)[k] > v for k, v in _expected(s).items())  # the dead run's records are there

    summary = build_index(s, embedders=fake_embedders, progress=False)
    assert summary.interrupted and summary.reused and summary.removed_records > 0
    assert "Found records no catalog lists" in summary.line()
    wanted = {d.doc_id for d in load_corpus(corpus_dir).documents}
    assert set(read_local_catalog(s.index_dir)["documents"]) == wanted  # type: ignore[index]
    assert _counts(s) == _expected(s)  # exactly the catalog's records, no left-overs
    fresh = HybridRetriever(s, fake_embedders)
    assert set(fresh.documents) == wanted
    assert {c.doc_id for c in fresh._chunks_by_id.values()} == wanted
    changed = [c.text for c in fresh._chunks_by_id.values() if c.doc_id == "changing"]
    assert any("1287 projects" in t for t in changed) and not any("26 projects" in t for t in changed)
    again = build_index(s, embedders=fake_embedders, progress=False)
    assert not again.changed and not again.interrupted


def test_missing_or_stale_local_files_are_rebuilt_from_chroma(tmp_path, corpus_dir, fake_embedders):
    import shutil

    s = settings_for(tmp_path, corpus_dir)
    build_index(s, embedders=fake_embedders, progress=False)
    before = _results(HybridRetriever(s, fake_embedders))
    text_before = text_path(s.index_dir, "shanghai-soe-ai-plus-initiative").read_text(encoding="utf-8")
    for name in (KEYWORD, SENTENCES, CATALOG):
        (s.index_dir / name).unlink()
    shutil.rmtree(s.index_dir / TEXTS)
    retriever = HybridRetriever(s, fake_embedders)
    assert _results(retriever) == before
    assert text_path(s.index_dir, "shanghai-soe-ai-plus-initiative").read_text(encoding="utf-8") == text_before
    assert all((s.index_dir / name).is_file() for name in (KEYWORD, SENTENCES, CATALOG))
    summary = build_index(s, embedders=fake_embedders, progress=False)
    assert not summary.changed


def test_a_running_retriever_notices_a_newer_index(tmp_path, corpus_dir, fake_embedders):
    s = settings_for(tmp_path, corpus_dir).model_copy(update={"index_check_s": 0.05})
    build_index(s, embedders=fake_embedders, progress=False)
    retriever = HybridRetriever(s, fake_embedders)
    assert not retriever.refresh()
    (corpus_dir / "harbour.md").write_text("The harbour pilot has 17 cranes.", encoding="utf-8")
    build_index(s, embedders=fake_embedders, progress=False)
    assert "harbour" not in retriever.documents
    time.sleep(0.1)
    retriever.retrieve(analyse_question("How many cranes does the harbour pilot have?"))  # starts the background check
    deadline = time.time() + 10
    while "harbour" not in retriever.documents and time.time() < deadline:
        time.sleep(0.05)
    got = retriever.retrieve(analyse_question("How many cranes does the harbour pilot have?"))
    assert got.chunks[0].chunk.doc_id == "harbour"


def test_questions_during_a_reindex_never_fail(tmp_path, corpus_dir, fake_embedders, monkeypatch):
    s = settings_for(tmp_path, corpus_dir)
    build_index(s, embedders=fake_embedders, progress=False)
    retriever = HybridRetriever(s, fake_embedders)
    before = _results(retriever)
    for n in range(3, 12):
        _variant(corpus_dir, f"new-{n}", n)
    (corpus_dir / "shanghai-soe-ai-plus-initiative.txt").write_text(
        (corpus_dir / "shanghai-soe-ai-plus-initiative.txt").read_text(encoding="utf-8") + "\nA late addition.",
        encoding="utf-8")
    s = s.model_copy(update={"ingest_round_texts": 30})
    slow = Embedders(FakeCountingEmbedder("minilm", delay_s=0.05), FakeCountingEmbedder("use", delay_s=0.05))
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: build_index(s, embedders=slow, progress=False))
    worker.start()
    answered = 0
    while worker.is_alive():
        try:
            got = _results(retriever)
            assert all(got), "a question got no chunks"
            answered += 1
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)
            break
    worker.join()
    assert not errors and answered >= 3
    assert before  # the old index answered the whole time


def test_bulk_embedding_uses_only_free_cores(monkeypatch):
    """Scripted /proc/stat samples (a fake): busy jiffies over the 50 ms window decide the threads."""
    from chatbot import embeddings

    monkeypatch.setattr(embeddings.time, "sleep", lambda s: None)
    monkeypatch.setattr(embeddings.os, "sysconf", lambda name: 100)
    for busy_ticks, want in ((0, 2), (1, 2), (3, 1), (5, 1), (10, 1)):  # 5 ticks in 50 ms = one core busy
        samples = iter([(1000, 2), (1000 + busy_ticks, 2)])
        monkeypatch.setattr(embeddings, "_busy_jiffies", lambda: next(samples))
        assert embeddings.free_cores(2) == want, busy_ticks
    samples = iter([(0, 2), (0, 2)])
    monkeypatch.setattr(embeddings, "_busy_jiffies", lambda: next(samples))
    assert embeddings.free_cores(1) == 1
    monkeypatch.setattr(embeddings, "_busy_jiffies", lambda: None)
    assert embeddings.free_cores(2) == 1


def test_free_cores_sees_a_busy_process_but_not_its_own_finished_work():
    """Real /proc/stat: another process spinning on a core leaves one free; this process's own work a moment
    ago (an ingest's previous batch, which the load average counted) is not counted."""
    import subprocess
    import sys

    from chatbot import embeddings

    if embeddings._busy_jiffies() is None or (os.cpu_count() or 1) != 2:
        pytest.skip("needs /proc/stat and 2 processors")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert embeddings.free_cores(2, window_s=0.2) == 1
    finally:
        spinner.kill()
        spinner.wait()
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:  # our own busy second, like a batch just embedded
        sum(i * i for i in range(10_000))
    assert max(embeddings.free_cores(2, window_s=0.2) for _ in range(3)) == 2


def test_a_new_title_in_the_manifest_reaches_the_catalog_without_embedding(tmp_path, corpus_dir, fake_embedders):
    s = settings_for(tmp_path, corpus_dir)
    build_index(s, embedders=fake_embedders, progress=False)
    manifest = corpus_dir / "manifest.toml"
    text = manifest.read_text(encoding="utf-8")
    old = read_local_catalog(s.index_dir)["documents"]["shanghai-soe-ai-plus-initiative"]["title"]  # type: ignore[index]
    manifest.write_text(text.replace(old, "A clearer title"), encoding="utf-8")
    counting = Embedders(FakeCountingEmbedder("minilm"), FakeCountingEmbedder("use"))
    summary = build_index(s, embedders=counting, progress=False)
    assert not summary.changed and counting.primary.calls == []  # type: ignore[attr-defined]
    assert read_local_catalog(s.index_dir)["documents"]["shanghai-soe-ai-plus-initiative"]["title"] == "A clearer title"  # type: ignore[index]
    assert HybridRetriever(s, fake_embedders).documents["shanghai-soe-ai-plus-initiative"].title == "A clearer title"


def test_a_retriever_with_a_stale_view_keeps_answering_after_a_reingest_deleted_its_chunks(
        tmp_path, corpus_dir, fake_embedders):
    """An embedded client keeps the vector index it loaded; an ingest in another process then replaces and
    deletes records. Simulated here with a second client, as another process would have."""
    s = settings_for(tmp_path, corpus_dir).model_copy(update={"index_check_s": 0})
    _variant(corpus_dir, "changing", 2)
    build_index(s, embedders=fake_embedders, progress=False)
    stale = HybridRetriever(s, fake_embedders)
    before = _results(stale)
    chroma_client(s.index_dir, fresh=True)  # the "other process"
    _variant(corpus_dir, "changing", 99)
    (corpus_dir / "shanghai-soe-ai-plus-initiative.txt").write_text("Only one short sentence is left.",
                                                                     encoding="utf-8")
    summary = build_index(s, embedders=fake_embedders, progress=False)
    assert summary.removed_records > 0
    assert _results(stale) == before  # the chunks it loaded, not errors
    assert stale.refresh() and "Only one short sentence is left." in [
        c.text for c in stale._chunks_by_id.values()]


def test_chunk_vectors_are_the_length_weighted_mean_of_their_sentences_unless_text_is_asked_for(
        tmp_path, corpus_dir, fake_embedders):
    s = settings_for(tmp_path, corpus_dir)
    build_index(s, embedders=fake_embedders, progress=False)
    doc = load_corpus(corpus_dir).documents[0]
    chunks = chunk_document(doc)
    several = next(c for c in chunks if len(c.sentences) > 1)
    single = next((c for c in chunks if len(c.sentences) == 1), None)
    emb = fake_embedders.primary
    collection = open_index(s).chunks[emb.name]
    stored = dict(zip(*_vectors(collection, [several.chunk_id] + ([single.chunk_id] if single else []))))
    parts = [doc.text[x.start : x.end] for x in several.sentences]
    vecs = emb.embed_documents(parts)
    mean = (vecs * np.array([len(p) for p in parts], dtype=np.float32)[:, None]).sum(axis=0)
    assert np.allclose(stored[several.chunk_id], mean / np.linalg.norm(mean), atol=1e-5)
    assert not np.allclose(stored[several.chunk_id], emb.embed_documents([several.text])[0], atol=1e-3)
    if single is not None:
        assert np.allclose(stored[single.chunk_id], emb.embed_documents([single.text])[0], atol=1e-5)

    # chunk_vectors="text": a new recipe, so the index is rebuilt and each chunk's own text embedded
    counting = Embedders(FakeCountingEmbedder("minilm"), FakeCountingEmbedder("use"))
    text_settings = s.model_copy(update={"chunk_vectors": "text"})
    summary = build_index(text_settings, embedders=counting, progress=False)
    assert several.text in counting.primary.calls[0]  # type: ignore[attr-defined]
    assert summary.embedded_texts == len({c.text for c in chunks} | {doc.text[x.start : x.end] for x in split_sentences(doc.text)})
    stored = dict(zip(*_vectors(open_index(text_settings).chunks[emb.name], [several.chunk_id])))
    assert np.allclose(stored[several.chunk_id], emb.embed_documents([several.text])[0], atol=1e-5)


def _vectors(collection, ids: list[str]) -> tuple[list[str], list[np.ndarray]]:  # noqa: ANN001
    got = collection._collection.get(ids=ids, include=["embeddings"])
    return list(got["ids"]), [np.asarray(v, dtype=np.float32) for v in got["embeddings"]]
