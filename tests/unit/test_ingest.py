from pathlib import Path

import pytest

from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.ingest import build_index, open_stores
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
