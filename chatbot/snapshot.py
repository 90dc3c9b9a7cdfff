"""The committed index as one process holds it: catalog, chunks, keyword index, sentence vectors, texts.

Chroma holds the index (chatbot/store.py); index/ keeps a local copy of what queries need in memory
(catalog.json, keyword.npz, sentences.npz, texts/), each file stamped with the catalog generation it was
made from. A process loads the local files when their stamp is the committed generation, and otherwise
rebuilds them from Chroma (a worker on another machine, a copy an interrupted ingest left behind), so
several workers can share one Chroma server. Files are replaced by atomic renames, catalog.json last."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.keyword import BM25Index, bridge_tokens, tokenize
from chatbot.schemas import Chunk
from chatbot.store import ChromaIndex, version_key

CATALOG = "catalog.json"
KEYWORD = "keyword.npz"
SENTENCES = "sentences.npz"
TEXTS = "texts"  # each document's extracted text, what citation offsets point into
LEGACY = ("keyword.json",)  # files of earlier index versions, removed when a new copy is written

# doc_id -> {"spans": n×2 int64, <embedder name>: n×dim float32}
SentenceVectors = dict[str, dict[str, np.ndarray]]


@dataclass
class Snapshot:
    index: ChromaIndex
    catalog: dict[str, Any]
    chunks: list[Chunk]
    keyword: BM25Index
    sentences: SentenceVectors
    from_local_files: bool = False
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        return int(self.catalog.get("generation", 0))

    def live_versions(self) -> set[str]:
        return live_versions(self.catalog)


def live_versions(catalog: dict[str, Any]) -> set[str]:
    return {version_key(doc_id, e["content_hash"]) for doc_id, e in catalog.get("documents", {}).items()}


def text_path(index_dir: Path, doc_id: str) -> Path:
    """A file name safe for any doc_id (a manifest may give one with slashes)."""
    return index_dir / TEXTS / f"{hashlib.sha1(doc_id.encode('utf-8')).hexdigest()[:16]}.txt"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_local_catalog(index_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((index_dir / CATALOG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _stamp(catalog: dict[str, Any]) -> tuple[str, int]:
    return str(catalog.get("recipe", "")), int(catalog.get("generation", 0))


def local_files_current(index_dir: Path, catalog: dict[str, Any]) -> bool:
    """Whether index/ holds the copy of exactly this catalog (every file stamped with its generation)."""
    local = read_local_catalog(index_dir)
    if local is None or _stamp(local) != _stamp(catalog):
        return False
    try:
        with np.load(index_dir / KEYWORD, allow_pickle=False) as k, np.load(index_dir / SENTENCES,
                                                                            allow_pickle=False) as s:
            stamps = {(str(d["extra_recipe"]), int(d["extra_generation"])) for d in (k, s)}
    except (OSError, ValueError, KeyError):
        return False
    return stamps == {_stamp(catalog)} and all(
        text_path(index_dir, doc_id).is_file() for doc_id in catalog.get("documents", {}))


def load_local(index: ChromaIndex, catalog: dict[str, Any], index_dir: Path, chunks: list[Chunk]) -> Snapshot:
    keyword = BM25Index.load(index_dir / KEYWORD)
    sentences = _load_sentences(index_dir / SENTENCES)
    return Snapshot(index, catalog, chunks, keyword, sentences, from_local_files=True)


def build_snapshot(
    index: ChromaIndex, catalog: dict[str, Any], *, previous: Snapshot | None = None,
    fresh_sentences: SentenceVectors | None = None, chunks: list[Chunk] | None = None,
) -> Snapshot:
    """The snapshot of `catalog` from Chroma, reusing what `previous` (an older snapshot) and
    `fresh_sentences` (vectors an ingest just computed) already hold."""
    live = live_versions(catalog)
    first = next(iter(index.chunks.values()))
    chunks = first.all_chunks(live) if chunks is None else chunks
    previous_hashes = {d: e["content_hash"] for d, e in (previous.catalog["documents"].items() if previous else [])}
    current_hashes = {d: e["content_hash"] for d, e in catalog["documents"].items()}
    tokens: list[list[str]] = []
    old = previous.keyword if previous is not None else None
    seen: dict[str, list[str]] = {}  # the same text in several documents is tokenised once
    for c in chunks:
        row = old.row(c.chunk_id) if old is not None else None
        if old is not None and row is not None:
            tokens.append(old.term_counts(row))
        else:
            if c.text not in seen:
                seen[c.text] = tokenize(c.text) + bridge_tokens(c.text)
            tokens.append(seen[c.text])
    keyword = BM25Index([c.chunk_id for c in chunks], tokens, doc_ids=[c.doc_id for c in chunks])

    sentences: SentenceVectors = {}
    missing: set[str] = set()
    for doc_id, h in current_hashes.items():
        if fresh_sentences and doc_id in fresh_sentences:
            sentences[doc_id] = fresh_sentences[doc_id]
        elif previous is not None and previous_hashes.get(doc_id) == h and doc_id in previous.sentences:
            sentences[doc_id] = previous.sentences[doc_id]
        else:
            missing.add(version_key(doc_id, h))
    if missing:
        for name, store in index.sentences.items():
            for doc_id, (spans, vectors) in store.vectors(missing).items():
                sentences.setdefault(doc_id, {"spans": spans})[name] = vectors
    return Snapshot(index, catalog, chunks, keyword, sentences)


def save_local(index_dir: Path, snap: Snapshot, texts: dict[str, str] | None = None) -> None:
    """Write the snapshot's local copy: texts, then the keyword index and sentence vectors, catalog.json last.
    `texts` (doc_id -> text) saves reading them back from Chroma; any text not given and not already
    on disk for this document version is read from Chroma."""
    catalog = snap.catalog
    texts = dict(texts or {})
    (index_dir / TEXTS).mkdir(parents=True, exist_ok=True)
    local = read_local_catalog(index_dir) or {}
    known = {d: e.get("content_hash") for d, e in local.get("documents", {}).items()}
    need = [d for d, e in catalog["documents"].items()
            if d not in texts and (known.get(d) != e["content_hash"] or not text_path(index_dir, d).is_file())]
    if need:
        got = snap.index.documents.texts([version_key(d, catalog["documents"][d]["content_hash"]) for d in need])
        for d in need:
            key = version_key(d, catalog["documents"][d]["content_hash"])
            if key in got:
                texts[d] = got[key]
    for doc_id, text in texts.items():
        if doc_id in catalog["documents"]:
            _atomic_write_bytes(text_path(index_dir, doc_id), text.encode("utf-8"))
    recipe, generation = _stamp(catalog)
    snap.keyword.save(index_dir / KEYWORD, recipe=recipe, generation=generation)
    _save_sentences(index_dir / SENTENCES, snap.sentences, recipe=recipe, generation=generation)
    _atomic_write_bytes(index_dir / CATALOG, json.dumps(catalog, ensure_ascii=False, indent=1).encode("utf-8"))
    keep = {text_path(index_dir, d).name for d in catalog["documents"]}
    for path in (index_dir / TEXTS).glob("*.txt"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
    for name in LEGACY:
        (index_dir / name).unlink(missing_ok=True)


def _save_sentences(path: Path, sentences: SentenceVectors, **extra: int | str) -> None:
    """One flat table (rows grouped by document): loading it is a few array reads, not one per document."""
    docs = sorted(sentences)
    parts = [sentences[d] for d in docs]
    names = sorted({k for p in parts for k in p if k != "spans"})
    ptr = np.cumsum([0] + [len(p["spans"]) for p in parts]).astype(np.int64)
    arrays: dict[str, np.ndarray] = {
        "docs": np.asarray(docs, dtype=str), "ptr": ptr,
        "spans": np.concatenate([p["spans"] for p in parts]).astype(np.int64) if parts else np.zeros((0, 2), np.int64),
    }
    for name in names:
        dims = {p[name].shape[1] for p in parts if name in p and p[name].ndim == 2}
        dim = dims.pop() if dims else 0
        arrays[f"vec_{name}"] = np.concatenate([p[name] for p in parts]).astype(np.float32) if parts else np.zeros(
            (0, dim), np.float32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays, **{f"extra_{k}": np.asarray(v) for k, v in extra.items()})  # type: ignore[arg-type]
    os.replace(tmp, path)


def _load_sentences(path: Path) -> SentenceVectors:
    with np.load(path, allow_pickle=False) as data:
        docs = [str(d) for d in data["docs"]]
        ptr = data["ptr"]
        spans = data["spans"]
        vecs = {k.removeprefix("vec_"): data[k] for k in data.files if k.startswith("vec_")}
    out: SentenceVectors = {}
    for i, doc_id in enumerate(docs):
        lo, hi = int(ptr[i]), int(ptr[i + 1])
        out[doc_id] = {"spans": spans[lo:hi], **{name: v[lo:hi] for name, v in vecs.items()}}
    return out


def load_snapshot(index: ChromaIndex, index_dir: Path, *, write_local: bool = True) -> Snapshot | None:
    """The committed index (None when Chroma holds no catalog of this recipe): from index/ when that copy
    is current, else rebuilt from Chroma and, when write_local, saved to index/ for the next start."""
    catalog = index.catalog.read()
    if catalog is None or catalog.get("recipe") != index.recipe:
        return None
    live = live_versions(catalog)
    chunks = next(iter(index.chunks.values())).all_chunks(live)
    if local_files_current(index_dir, catalog):
        try:
            return load_local(index, catalog, index_dir, chunks)
        except (OSError, ValueError, KeyError):
            pass  # a damaged copy: rebuild it
    snap = build_snapshot(index, catalog, chunks=chunks)
    if write_local:
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
            save_local(index_dir, snap)
        except OSError:
            pass  # a read-only index/ only costs the next start a rebuild
    return snap
