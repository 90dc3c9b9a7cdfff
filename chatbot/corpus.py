"""Reads documents (.txt .md .html .pdf .docx) and their manifest metadata from a corpus folder."""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from chatbot.config import display_path
from chatbot.errors import DocumentUnreadable
from chatbot.schemas import Document
from chatbot.text import cjk_count

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}
TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
MANIFEST = "manifest.toml"
DEFAULT_MAX_FILE_MB = 50.0
# Control characters that never occur in text (tab, line breaks and form feed do).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# Among candidates charset-normalizer finds equally plausible, the encodings this project's users save
# files in: Chinese Windows (GBK is a subset of GB18030) and Western European Windows / Latin-1.
_PREFERRED = ("gb18030", "cp1252", "latin_1")

logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about malformed files are our skip reasons


def detect_language(text: str) -> str:
    """'zh' when CJK characters make up a noticeable share of the letters, else 'en'."""
    if not text:
        return "en"
    cjk = cjk_count(text)
    letters = sum(ch.isalpha() for ch in text) or 1
    return "zh" if cjk / letters > 0.15 else "en"


def _slug(stem: str) -> str:
    slug = re.sub(r"[^\w\-]+", "-", stem.lower()).strip("-")
    return slug or hashlib.sha1(stem.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _printable_name(path: Path) -> str:
    """A file name as text: bytes that are not UTF-8 (possible in Linux file names) become U+FFFD."""
    return os.fsencode(path.name).decode("utf-8", "replace")


@dataclass
class Decoded:
    text: str
    encoding: str
    dropped: int = 0  # undecodable bytes left out

    def note(self) -> str | None:
        """What a user should know about how the file was read (None: plain UTF-8)."""
        parts = []
        if self.encoding not in {"utf-8", "ascii"}:
            parts.append(f"decoded as {self.encoding}")
        if self.dropped:
            parts.append(f"{self.dropped} undecodable byte{'s' if self.dropped != 1 else ''} skipped")
        return "; ".join(parts) or None


def decode_text(data: bytes, name: str = "file") -> Decoded:
    """Bytes of a text file as text: a byte-order mark, else UTF-8, else the encoding charset-normalizer
    detects (GB18030, Latin-1 ...). A UTF-8 file with a few broken bytes keeps its text and drops those
    bytes. Raises DocumentUnreadable for binary data or bytes no text encoding fits."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data.decode(encoding), encoding.removesuffix("-sig"))
            except UnicodeDecodeError:
                break
    try:
        return _checked(Decoded(data.decode("utf-8"), "utf-8"), name)
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:65536]:
        raise DocumentUnreadable(f"{name}: binary content, not text (it contains NUL bytes).")
    lenient = data.decode("utf-8", errors="replace")
    bad = lenient.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    multibyte = sum(1 for ch in lenient if ord(ch) > 0x7F and ch != "\ufffd")
    if multibyte and bad <= max(3, multibyte // 50):
        # Mostly valid UTF-8 with real multi-byte characters: a few broken bytes, not another encoding.
        return _checked(Decoded(data.decode("utf-8", errors="ignore"), "utf-8", dropped=bad), name)
    return _checked(_detected(data, name), name)


def _detected(data: bytes, name: str) -> Decoded:
    import charset_normalizer

    matches = [m for m in charset_normalizer.from_bytes(data) if not m.encoding.startswith(("utf_16", "utf_32"))]
    if not matches:
        raise DocumentUnreadable(f"{name}: not text in any encoding charset-normalizer recognises "
                                 "(binary, or bytes that are undecodable).")
    least = min(m.chaos for m in matches)
    plausible = [m for m in matches if m.chaos <= least + 0.01]
    for preferred in _PREFERRED:
        for m in plausible:
            if preferred in {m.encoding, *m.could_be_from_charset}:
                try:
                    return Decoded(data.decode(preferred), preferred)
                except UnicodeDecodeError:
                    continue
    best = plausible[0]
    return Decoded(str(best), best.encoding)


def _checked(decoded: Decoded, name: str) -> Decoded:
    """Text full of control characters is binary data that happened to decode."""
    sample = decoded.text[:65536]
    if sample and len(_CONTROL.findall(sample)) > max(2, len(sample) // 100):
        raise DocumentUnreadable(f"{name}: binary content, not text (control characters throughout).")
    return decoded


def extract_text(path: Path) -> str:
    """The document's text, exactly as citations will index it. Raises DocumentUnreadable."""
    return read_document(path)[0]


def read_document(path: Path) -> tuple[str, str | None]:
    """(text, note about how it was read). Raises DocumentUnreadable with a reason a user understands."""
    suffix = path.suffix.lower()
    name = _printable_name(path)
    try:
        if suffix in TEXT_SUFFIXES:
            data = path.read_bytes()
            if not data:
                raise DocumentUnreadable(f"{name}: empty file.")
            decoded = decode_text(data, name)
            return decoded.text, decoded.note()
        if suffix in {".html", ".htm"}:
            from bs4 import BeautifulSoup

            data = path.read_bytes()
            if not data:
                raise DocumentUnreadable(f"{name}: empty file.")
            decoded = decode_text(data, name)
            soup = BeautifulSoup(decoded.text, "html.parser")
            for tag in soup(["script", "style", "noscript"]):
                tag.decompose()
            lines = [ln.strip() for ln in soup.get_text("\n").splitlines()]
            return "\n".join(ln for ln in lines if ln), decoded.note()
        if suffix == ".pdf":
            return _pdf_text(path, name), None
        if suffix == ".docx":
            return _docx_text(path, name), None
    except DocumentUnreadable:
        raise
    except OSError as exc:
        raise DocumentUnreadable(f"{name}: could not be read ({exc.strerror or type(exc).__name__}).") from exc
    except Exception as exc:  # noqa: BLE001 - every parser failure means the same thing to a user
        raise DocumentUnreadable(f"{name}: could not be read ({type(exc).__name__}: {exc}).") from exc
    raise DocumentUnreadable(f"{name}: unsupported file type {suffix!r}.")


def _pdf_text(path: Path, name: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(str(path))
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise DocumentUnreadable(f"{name}: not a valid PDF ({exc}).") from exc
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")  # many PDFs are encrypted with an empty user password
        except (DependencyError, NotImplementedError, PdfReadError) as exc:
            raise DocumentUnreadable(f"{name}: encrypted PDF that cannot be opened ({exc}).") from exc
        if not opened:
            raise DocumentUnreadable(f"{name}: password-protected PDF; save an unprotected copy to index it.")
    try:
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise DocumentUnreadable(f"{name}: not a valid PDF ({exc}).") from exc
    text = "\n\n".join(pages).strip()
    if not text:
        raise DocumentUnreadable(f"{name}: the PDF has no text layer (a scanned image?); OCR is not supported.")
    return text


def _docx_text(path: Path, name: str) -> str:
    import zipfile

    if not zipfile.is_zipfile(path):
        raise DocumentUnreadable(f"{name}: not a valid DOCX file (a DOCX is a zip archive; this is not one).")
    import docx

    d = docx.Document(str(path))
    return "\n".join(p.text for p in d.paragraphs if p.text.strip())


@dataclass
class CorpusScan:
    documents: list[Document]
    skipped: list[tuple[str, str]]  # (path, reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, how it was read) for indexed files


def load_manifest(corpus_dir: Path) -> dict[str, dict[str, str]]:
    path = corpus_dir / MANIFEST
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        data = tomllib.load(f)
    return {entry["file"]: entry for entry in data.get("document", []) if "file" in entry}


def corpus_files(corpus_dir: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported files under corpus_dir, and the entries passed over with a reason. Symbolic links are
    followed only to files inside the corpus folder; linked folders are not entered (no loops)."""
    root = corpus_dir.resolve()
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(corpus_dir, followlinks=False):
        here = Path(dirpath)
        for d in sorted(dirnames):
            if (here / d).is_symlink():
                skipped.append((_shown(here / d), f"{d}: a linked folder; its files are not indexed."))
        for fname in filenames:
            path = here / fname
            if path.suffix.lower() not in SUPPORTED or fname.upper() in {"SOURCE.MD", "README.MD"}:
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.exists():
                    skipped.append((_shown(path), f"{_printable_name(path)}: a broken symbolic link."))
                    continue
                if not target.is_relative_to(root):
                    skipped.append((_shown(path), f"{_printable_name(path)}: a symbolic link to {target}, "
                                                  "outside the corpus folder; not followed."))
                    continue
                if not target.is_file():
                    continue
            elif not path.is_file():
                continue
            files.append(path)
    return sorted(files), skipped


def _shown(path: Path) -> str:
    """display_path without resolving symbolic links (a link is reported where it is)."""
    return os.fsencode(display_path(path.parent) + os.sep + path.name).decode("utf-8", "replace")


def load_corpus(corpus_dir: Path, *, max_file_mb: float = DEFAULT_MAX_FILE_MB) -> CorpusScan:
    """Every supported document under corpus_dir, with metadata; unreadable ones are listed, not fatal.
    Files above max_file_mb are skipped with the reason (read whole, a file that size would hold the
    ingest's memory for little gain: split it, or raise CHATBOT_MAX_FILE_MB)."""
    manifest = load_manifest(corpus_dir)
    documents: list[Document] = []
    paths, skipped = corpus_files(corpus_dir)
    notes: list[tuple[str, str]] = []
    seen: set[str] = set()
    limit = int(max_file_mb * 1024 * 1024)
    for path in paths:
        shown = _shown(path)
        name = _printable_name(path)
        try:
            size = path.stat().st_size
            if size > limit:
                raise DocumentUnreadable(f"{name}: {size / 1024 / 1024:.0f} MB, above the {max_file_mb:g} MB "
                                         "limit (CHATBOT_MAX_FILE_MB); split it or raise the limit.")
            text, note = read_document(path)
        except DocumentUnreadable as exc:
            skipped.append((shown, str(exc)))
            continue
        except OSError as exc:
            skipped.append((shown, f"{name}: could not be read ({exc.strerror or type(exc).__name__})."))
            continue
        if not text.strip():
            skipped.append((shown, f"{name}: no text could be extracted."))
            continue
        if note:
            notes.append((shown, f"{name}: {note}."))
        rel = os.fsencode(path.relative_to(corpus_dir).as_posix()).decode("utf-8", "replace")
        meta = manifest.get(rel, {})
        stem = os.fsencode(path.stem).decode("utf-8", "replace")
        doc_id = meta.get("doc_id") or _slug(stem)
        if doc_id in seen:
            doc_id = f"{doc_id}-{hashlib.sha1(rel.encode()).hexdigest()[:6]}"
        seen.add(doc_id)
        documents.append(
            Document(
                doc_id=doc_id,
                title=meta.get("title") or stem.replace("_", " ").replace("-", " "),
                source=shown,
                outlet=meta.get("outlet", ""),
                date=str(meta.get("date", "")),
                language=meta.get("language") or detect_language(text),
                text=text,
                content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            )
        )
    return CorpusScan(documents, skipped, notes)
