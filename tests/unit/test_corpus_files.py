"""Bad and unusual corpus files: each is indexed or skipped with a reason, and the rest of the corpus is indexed."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from chatbot.config import Settings
from chatbot.corpus import decode_text, load_corpus
from chatbot.embeddings import Embedders
from chatbot.errors import DocumentUnreadable
from chatbot.ingest import build_index, open_stores
from chatbot.snapshot import text_path
from tests.fakes import FakeEmbedder

REAL_DOC = "shanghai-soe-ai-plus-initiative"
ZH = ("上海市国资委发布《国有企业人工智能+行动倡议》，共有11家企业参与。倡议提出，到2025年推动百个以上应用场景落地。"
      "各企业要加强数据治理，建设智能工厂。")
LATIN = "Le café coûte cher à Zürich. Ça va très bien, merci. Über die naïve Façade: 7 Brücken."


@pytest.fixture
def fake_embedders() -> Embedders:
    return Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))


def _settings(tmp_path: Path, corpus_dir: Path, **kw) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", collection_prefix="t", **kw)


def pdf_with_text(path: Path, text: str, *, password: str | None = None, algorithm: str = "RC4-128") -> None:
    """A one-page PDF whose text layer holds `text` (pypdf writes it; no other PDF library is needed)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    stream = DecodedStreamObject()
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream.set_data(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(stream)
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner-secret", algorithm=algorithm)
    with path.open("wb") as f:
        writer.write(f)


def blank_pdf(path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    with path.open("wb") as f:
        writer.write(f)


def _skips(summary) -> dict[str, str]:  # noqa: ANN001
    return {Path(p).name: reason for p, reason in summary.skipped}


def test_bad_files_are_skipped_with_reasons_and_the_rest_is_indexed(tmp_path, corpus_dir, fake_embedders):
    (corpus_dir / "empty.txt").write_bytes(b"")
    (corpus_dir / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(4096))
    (corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    pdf_with_text(corpus_dir / "locked.pdf", "The vault code is 1234.", password="secret")
    blank_pdf(corpus_dir / "scan.pdf")
    (corpus_dir / "fake.docx").write_bytes(b"This is plain text pretending to be a Word file.")
    (corpus_dir / "blank.md").write_text("   \n\n  ", encoding="utf-8")
    with open(corpus_dir / "huge.txt", "wb") as f:  # 100 MB, sparse: created instantly
        f.truncate(100 * 1024 * 1024)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Salaries of the board: 9 million.", encoding="utf-8")
    (corpus_dir / "link.txt").symlink_to(outside / "secret.txt")
    (corpus_dir / "linked-folder").symlink_to(outside, target_is_directory=True)
    (corpus_dir / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")

    summary = build_index(_settings(tmp_path, corpus_dir), embedders=fake_embedders, progress=False)

    skipped = _skips(summary)
    assert "empty file" in skipped["empty.txt"]
    assert "binary" in skipped["photo.txt"] or "not text" in skipped["photo.txt"]
    assert "not a valid PDF" in skipped["broken.pdf"]
    assert "password-protected" in skipped["locked.pdf"]
    assert "no text layer" in skipped["scan.pdf"]
    assert "not a valid DOCX" in skipped["fake.docx"]
    assert "no text" in skipped["blank.md"]
    assert "100 MB" in skipped["huge.txt"] and "50 MB limit" in skipped["huge.txt"]
    assert "outside the corpus folder" in skipped["link.txt"]
    assert "linked folder" in skipped["linked-folder"]
    assert "broken symbolic link" in skipped["dangling.txt"]
    assert summary.added == [REAL_DOC]
    chunks = next(iter(open_stores(_settings(tmp_path, corpus_dir)).values())).all_chunks()
    assert not any("Salaries" in c.text or "vault" in c.text for c in chunks)
    assert {c.doc_id for c in chunks} == {REAL_DOC}


def test_a_pdf_with_a_text_layer_and_one_with_an_empty_user_password_are_indexed(tmp_path, corpus_dir, fake_embedders):
    pdf_with_text(corpus_dir / "memo.pdf", "The pilot covers 7 districts.")
    pdf_with_text(corpus_dir / "owner-only.pdf", "The budget is 40 million yuan.", password="")
    summary = build_index(_settings(tmp_path, corpus_dir), embedders=fake_embedders, progress=False)
    assert sorted(summary.added) == ["memo", "owner-only", REAL_DOC]
    texts = {c.doc_id: c.text for c in next(iter(open_stores(_settings(tmp_path, corpus_dir)).values())).all_chunks()}
    assert texts["memo"] == "The pilot covers 7 districts."
    assert texts["owner-only"] == "The budget is 40 million yuan."


def test_odd_file_names_are_indexed_and_their_texts_kept(tmp_path, corpus_dir, fake_embedders):
    name = "年度 \"报告\" it's final (v2).txt"
    (corpus_dir / name).write_text("The harbour project employs 300 engineers.", encoding="utf-8")
    s = _settings(tmp_path, corpus_dir)
    summary = build_index(s, embedders=fake_embedders, progress=False)
    [doc_id] = [d for d in summary.added if d != REAL_DOC]
    assert "年度" in doc_id and '"' not in doc_id and " " not in doc_id
    assert text_path(s.index_dir, doc_id).read_text(encoding="utf-8") == "The harbour project employs 300 engineers."
    scan = load_corpus(corpus_dir)
    assert any(d.source.endswith(name) for d in scan.documents)


def test_a_symlink_to_a_file_inside_the_corpus_is_indexed(tmp_path, corpus_dir, fake_embedders):
    sub = corpus_dir / "notes"
    sub.mkdir()
    (sub / "plan.md").write_text("The plan has three stages.", encoding="utf-8")
    (corpus_dir / "plan-link.md").symlink_to(sub / "plan.md")
    summary = build_index(_settings(tmp_path, corpus_dir), embedders=fake_embedders, progress=False)
    assert not summary.skipped
    assert {"plan", REAL_DOC} <= set(summary.added) and len(summary.added) == 3


def test_files_above_the_size_limit_setting_are_skipped(tmp_path, corpus_dir, fake_embedders):
    (corpus_dir / "big.txt").write_text("Big file. " * 30_000, encoding="utf-8")  # ~300 kB
    summary = build_index(_settings(tmp_path, corpus_dir, max_file_mb=0.1), embedders=fake_embedders, progress=False)
    assert "0.1 MB limit" in _skips(summary)["big.txt"]
    assert summary.added == [REAL_DOC]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_chinese_text_saved_in_a_chinese_encoding_is_indexed_with_matching_offsets(
        tmp_path, corpus_dir, fake_embedders, encoding):
    (corpus_dir / "zh-notice.txt").write_bytes(ZH.encode(encoding))
    s = _settings(tmp_path, corpus_dir)
    summary = build_index(s, embedders=fake_embedders, progress=False)
    assert "zh-notice" in summary.added
    assert any(p.endswith("zh-notice.txt") and "gb18030" in note for p, note in summary.notes)
    stored = text_path(s.index_dir, "zh-notice").read_text(encoding="utf-8")
    assert stored == ZH
    chunks = [c for c in next(iter(open_stores(s).values())).all_chunks() if c.doc_id == "zh-notice"]
    assert chunks
    for c in chunks:  # what a citation shows is what the document text holds at its offsets
        assert stored[c.start : c.end] == c.text
        for sent in c.sentences:
            assert stored[sent.start : sent.end] in c.text
    assert any("共有11家企业参与" in c.text for c in chunks)


def test_latin1_text_is_indexed_with_matching_offsets(tmp_path, corpus_dir, fake_embedders):
    (corpus_dir / "fr.txt").write_bytes(LATIN.encode("latin-1"))
    s = _settings(tmp_path, corpus_dir)
    summary = build_index(s, embedders=fake_embedders, progress=False)
    assert "fr" in summary.added
    stored = text_path(s.index_dir, "fr").read_text(encoding="utf-8")
    assert stored == LATIN
    for c in (c for c in next(iter(open_stores(s).values())).all_chunks() if c.doc_id == "fr"):
        assert stored[c.start : c.end] == c.text


def test_only_the_undecodable_bytes_of_a_utf8_file_are_skipped_and_reported(tmp_path, corpus_dir, fake_embedders):
    data = "第一句话。".encode() + b"\xff\xfe" + "Second sentence, café.".encode() + b"\x80"
    (corpus_dir / "mixed.txt").write_bytes(data)
    s = _settings(tmp_path, corpus_dir)
    summary = build_index(s, embedders=fake_embedders, progress=False)
    assert "mixed" in summary.added
    assert any(p.endswith("mixed.txt") and "3 undecodable bytes skipped" in note for p, note in summary.notes)
    assert text_path(s.index_dir, "mixed").read_text(encoding="utf-8") == "第一句话。Second sentence, café."


def test_decode_text_choices():
    assert decode_text("plain".encode("utf-8")).encoding == "utf-8"
    assert decode_text("\ufeffwith bom".encode("utf-8")).text == "with bom"
    assert decode_text(ZH.encode("utf-16")).text == ZH
    assert decode_text("“Quotes” — dash".encode("cp1252")).text == "“Quotes” — dash"
    with pytest.raises(DocumentUnreadable, match="binary"):
        decode_text(b"\x00\x01\x02binary\x00" * 100)
    with pytest.raises(DocumentUnreadable):
        decode_text(bytes(range(128, 256)) * 40)


def test_a_docx_with_broken_zip_content_is_skipped(tmp_path, corpus_dir, fake_embedders):
    with zipfile.ZipFile(corpus_dir / "halfword.docx", "w") as z:
        z.writestr("hello.txt", "not a word document")
    summary = build_index(_settings(tmp_path, corpus_dir), embedders=fake_embedders, progress=False)
    assert "halfword.docx" in _skips(summary)
    assert summary.added == [REAL_DOC]
