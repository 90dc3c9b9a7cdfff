"""Reads documents (.txt .md .html .pdf .docx) and their manifest metadata from a corpus folder."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from chatbot.config import display_path
from chatbot.errors import DocumentUnreadable
from chatbot.schemas import Document

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}
MANIFEST = "manifest.toml"
_CJK = re.compile(r"[\u3400-\u9fff]")


def detect_language(text: str) -> str:
    """'zh' when CJK characters make up a noticeable share of the letters, else 'en'."""
    if not text:
        return "en"
    cjk = len(_CJK.findall(text))
    letters = sum(ch.isalpha() for ch in text) or 1
    return "zh" if cjk / letters > 0.15 else "en"


def _slug(stem: str) -> str:
    slug = re.sub(r"[^\w\-]+", "-", stem.lower()).strip("-")
    return slug or hashlib.sha1(stem.encode()).hexdigest()[:12]


def extract_text(path: Path) -> str:
    """The document's text, exactly as citations will index it. Raises DocumentUnreadable."""
    suffix = path.suffix.lower()
    try:
        if suffix in {".txt", ".md", ".markdown"}:
            return path.read_text(encoding="utf-8")
        if suffix in {".html", ".htm"}:
            from bs4 import BeautifulSoup

            soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
            for tag in soup(["script", "style", "noscript"]):
                tag.decompose()
            lines = [ln.strip() for ln in soup.get_text("\n").splitlines()]
            return "\n".join(ln for ln in lines if ln)
        if suffix == ".pdf":
            from pypdf import PdfReader

            reader = PdfReader(str(path))
            return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
        if suffix == ".docx":
            import docx

            d = docx.Document(str(path))
            return "\n".join(p.text for p in d.paragraphs if p.text.strip())
    except UnicodeDecodeError as exc:
        raise DocumentUnreadable(f"{path.name}: not valid UTF-8 text ({exc.reason}).") from exc
    except Exception as exc:  # noqa: BLE001 - every parser failure means the same thing to a user
        raise DocumentUnreadable(f"{path.name}: could not be read ({type(exc).__name__}: {exc}).") from exc
    raise DocumentUnreadable(f"{path.name}: unsupported file type {suffix!r}.")


@dataclass
class CorpusScan:
    documents: list[Document]
    skipped: list[tuple[str, str]]  # (path, reason)


def load_manifest(corpus_dir: Path) -> dict[str, dict[str, str]]:
    path = corpus_dir / MANIFEST
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        data = tomllib.load(f)
    return {entry["file"]: entry for entry in data.get("document", []) if "file" in entry}


def load_corpus(corpus_dir: Path) -> CorpusScan:
    """Every supported document under corpus_dir, with metadata; unreadable ones are listed, not fatal."""
    manifest = load_manifest(corpus_dir)
    documents: list[Document] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for path in sorted(p for p in corpus_dir.rglob("*") if p.is_file()):
        if path.suffix.lower() not in SUPPORTED or path.name.upper() in {"SOURCE.MD", "README.MD"}:
            continue
        try:
            text = extract_text(path)
        except DocumentUnreadable as exc:
            skipped.append((display_path(path), str(exc)))
            continue
        if not text.strip():
            skipped.append((display_path(path), f"{path.name}: no text could be extracted."))
            continue
        rel = path.relative_to(corpus_dir).as_posix()
        meta = manifest.get(rel, {})
        doc_id = meta.get("doc_id") or _slug(path.stem)
        if doc_id in seen:
            doc_id = f"{doc_id}-{hashlib.sha1(rel.encode()).hexdigest()[:6]}"
        seen.add(doc_id)
        documents.append(
            Document(
                doc_id=doc_id,
                title=meta.get("title") or path.stem.replace("_", " ").replace("-", " "),
                source=display_path(path),
                outlet=meta.get("outlet", ""),
                date=str(meta.get("date", "")),
                language=meta.get("language") or detect_language(text),
                text=text,
                content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            )
        )
    return CorpusScan(documents, skipped)
