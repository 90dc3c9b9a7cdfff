"""Corpus -> sentence-aware chunks -> embeddings -> Chroma, idempotent by content hash; keyword index too."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from chatbot.chunking import chunk_document, split_sentences
from chatbot.config import Settings
from chatbot.corpus import load_corpus
from chatbot.keyword import BM25Index
from chatbot.embeddings import Embedders, embedder_names, load_embedders
from chatbot.store import ChromaStore, chroma_client

CATALOG = "catalog.json"
KEYWORD = "keyword.json"
SENTENCES = "sentences.npz"
TEXTS = "texts"  # each document's extracted text, what citation offsets point into
INDEX_VERSION = 3  # bump when chunking, keyword tokenisation or the catalog changes: forces a rebuild


@dataclass
class IngestSummary:
    documents: int = 0
    chunks: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)

    def line(self) -> str:
        work = (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.deleted)} deleted, "
            f"{len(self.unchanged)} unchanged"
        )
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return (
            f"Indexed {self.documents} documents, {self.chunks} chunks ({work}{skipped}) "
            f"in {self.seconds:.1f} s."
        )


def open_stores(settings: Settings) -> dict[str, ChromaStore]:
    client = chroma_client(settings.index_dir, settings.chroma_host, settings.chroma_port)
    return {
        name: ChromaStore(client, f"{settings.collection_prefix}_{name}") for name in embedder_names(settings)
    }


def build_index(
    settings: Settings,
    *,
    corpus_dir: Path | None = None,
    embedders: Embedders | None = None,
    progress: bool = True,
) -> IngestSummary:
    """Bring the index in line with the corpus: add new, replace changed, delete removed documents."""
    t0 = time.perf_counter()
    corpus_dir = corpus_dir or settings.corpus_dir
    index_dir = settings.index_dir
    index_dir.mkdir(parents=True, exist_ok=True)
    scan = load_corpus(corpus_dir)
    summary = IngestSummary(documents=len(scan.documents), skipped=scan.skipped)
    stores = open_stores(settings)

    stored = [store.doc_hashes() for store in stores.values()]
    current = {d.doc_id: d for d in scan.documents}
    sidecars_ok = all((index_dir / f).is_file() for f in (CATALOG, KEYWORD, SENTENCES)) and _catalog_version(
        index_dir) == INDEX_VERSION
    to_index = []
    for doc in scan.documents:
        state = {h.get(doc.doc_id) for h in stored}
        if state == {doc.content_hash} and sidecars_ok:
            summary.unchanged.append(doc.doc_id)
        else:
            (summary.updated if any(s is not None for s in state) else summary.added).append(doc.doc_id)
            to_index.append(doc)
    removed = sorted({d for h in stored for d in h} - set(current))
    summary.deleted = removed

    if not summary.changed and sidecars_ok:
        summary.chunks = next(iter(stores.values())).count()
        summary.seconds = time.perf_counter() - t0
        return summary

    old_vectors = _load_sentence_vectors(index_dir / SENTENCES)
    previous = _load_catalog(index_dir).get("documents", {}) if sidecars_ok else {}
    texts_dir = index_dir / TEXTS
    texts_dir.mkdir(exist_ok=True)
    for doc_id in removed:
        for store in stores.values():
            store.delete_document(doc_id)
        old_vectors.pop(doc_id, None)
        text_path(index_dir, doc_id).unlink(missing_ok=True)
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    if to_index:
        embedders = embedders or load_embedders(settings)
        planned = [(doc, chunk_document(doc, max_chars=settings.chunk_chars,
                                        overlap_sentences=settings.chunk_overlap_sentences)) for doc in to_index]
        total = sum(len(chunks) for _, chunks in planned)
        bar = tqdm(total=total, unit="chunk", desc="Embedding", disable=not progress)
        for doc, chunks in planned:
            texts = [c.text for c in chunks]
            extra = {"title": doc.title, "source": doc.source}
            for name, store in stores.items():
                store.delete_document(doc.doc_id)
                store.add(chunks, embedders.by_name[name].embed_documents(texts), doc.content_hash, extra)
            spans = split_sentences(doc.text)
            sent_texts = [doc.text[s.start : s.end] for s in spans]
            old_vectors[doc.doc_id] = {
                "spans": np.array([[s.start, s.end] for s in spans], dtype=np.int64).reshape(-1, 2),
                **{name: embedders.by_name[name].embed_documents(sent_texts) for name in stores},
            }
            tmp = text_path(index_dir, doc.doc_id).with_suffix(".tmp")
            tmp.write_text(doc.text, encoding="utf-8")
            tmp.replace(text_path(index_dir, doc.doc_id))
            bar.update(len(chunks))
        bar.close()
    for doc in scan.documents:  # an index from before texts were kept
        if not text_path(index_dir, doc.doc_id).is_file():
            text_path(index_dir, doc.doc_id).write_text(doc.text, encoding="utf-8")

    chunks_all = next(iter(stores.values())).all_chunks()
    BM25Index.build([c.chunk_id for c in chunks_all], [c.text for c in chunks_all]).save(index_dir / KEYWORD)
    _save_sentence_vectors(index_dir / SENTENCES, {k: v for k, v in old_vectors.items() if k in current})
    chunk_counts: dict[str, int] = {}
    for c in chunks_all:
        chunk_counts[c.doc_id] = chunk_counts.get(c.doc_id, 0) + 1
    fresh = {d.doc_id for d in to_index}
    catalog = {
        "version": INDEX_VERSION,
        "embedders": list(stores),
        "built_at": now,
        "documents": {
            d.doc_id: {"title": d.title, "source": d.source, "outlet": d.outlet, "date": d.date,
                       "language": d.language, "content_hash": d.content_hash, "chars": len(d.text),
                       "chunks": chunk_counts.get(d.doc_id, 0),
                       "indexed_at": now if d.doc_id in fresh else previous.get(d.doc_id, {}).get("indexed_at", now)}
            for d in scan.documents
        },
    }
    (index_dir / CATALOG).write_text(json.dumps(catalog, ensure_ascii=False, indent=1), encoding="utf-8")
    summary.chunks = len(chunks_all)
    summary.seconds = time.perf_counter() - t0
    return summary


def text_path(index_dir: Path, doc_id: str) -> Path:
    """A file name safe for any doc_id (a manifest may give one with slashes)."""
    return index_dir / TEXTS / f"{hashlib.sha1(doc_id.encode('utf-8')).hexdigest()[:16]}.txt"


def _load_catalog(index_dir: Path) -> dict:
    try:
        return json.loads((index_dir / CATALOG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _catalog_version(index_dir: Path) -> int | None:
    try:
        return int(json.loads((index_dir / CATALOG).read_text(encoding="utf-8")).get("version", 0))
    except (OSError, ValueError):
        return None


def _load_sentence_vectors(path: Path) -> dict[str, dict[str, np.ndarray]]:
    if not path.is_file():
        return {}
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            doc_id, _, part = key.rpartition("|")
            out.setdefault(doc_id, {})[part] = data[key]
    return out


def _save_sentence_vectors(path: Path, vectors: dict[str, dict[str, np.ndarray]]) -> None:
    flat = {f"{doc_id}|{part}": arr for doc_id, parts in vectors.items() for part, arr in parts.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **flat)  # type: ignore[arg-type]
    tmp.replace(path)
