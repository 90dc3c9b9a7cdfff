"""Sentence splitting (English and Chinese) and sentence-aware chunks that keep character offsets."""

from __future__ import annotations

import hashlib
import re

from chatbot.schemas import Chunk, Document, Sentence

# A sentence ends at . ! ? (plus closing quotes/brackets) before whitespace, at Chinese 。！？； (plus
# closing quotes), or at a line break. Abbreviations like "Mr." and "e.g." are not boundaries.
_END = re.compile(r"(?:[.!?][\"”’')\]]*(?=\s)|[。！？；][”’」』)）]*|\n+)")
_ABBREV = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|No|Co|Ltd|Inc|St|vs|etc|e\.g|i\.e|U\.S|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec))\.$")


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Sentence spans over `text`, without surrounding whitespace; offsets are into the full text."""
    spans: list[Sentence] = []
    start = 0
    for m in _END.finditer(text):
        end = m.end()
        if text[m.start()] == "." and _ABBREV.search(text[max(start, m.start() - 6) : m.start() + 1]):
            continue
        _add(spans, text, start, end, offset)
        start = end
    _add(spans, text, start, len(text), offset)
    return spans


def _add(spans: list[Sentence], text: str, start: int, end: int, offset: int) -> None:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    if end - trail > start + lead:
        spans.append(Sentence(start=offset + start + lead, end=offset + end - trail))


def chunk_id(doc_id: str, content_hash: str, start: int, end: int) -> str:
    """Stable for a document version: a changed document's chunks never overwrite the committed ones."""
    return hashlib.sha256(f"{doc_id}\x00{content_hash}\x00{start}\x00{end}".encode()).hexdigest()[:32]


def sentence_id(doc_id: str, content_hash: str, start: int, end: int) -> str:
    return "s" + hashlib.sha256(f"{doc_id}\x00{content_hash}\x00{start}\x00{end}".encode()).hexdigest()[:31]


def chunk_document(doc: Document, *, max_chars: int = 900, overlap_sentences: int = 1,
                   sentences: list[Sentence] | None = None) -> list[Chunk]:
    """Pack whole sentences into chunks of about max_chars; consecutive chunks share overlap sentences.
    `sentences`: split_sentences(doc.text) when the caller already has it."""
    sentences = split_sentences(doc.text) if sentences is None else sentences
    chunks: list[Chunk] = []
    i = 0
    while i < len(sentences):
        j = i
        while j < len(sentences) and (j == i or sentences[j].end - sentences[i].start <= max_chars):
            j += 1
        group = sentences[i:j]
        start, end = group[0].start, group[-1].end
        text = doc.text[start:end]
        chunks.append(
            Chunk(chunk_id=chunk_id(doc.doc_id, doc.content_hash, start, end), doc_id=doc.doc_id,
                  start=start, end=end, text=text, sentences=group)
        )
        if j >= len(sentences):
            break
        i = max(i + 1, j - overlap_sentences)
    return chunks
