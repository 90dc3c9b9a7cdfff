"""Corpus -> llama-index Documents -> sentence-aware chunk nodes -> vectors -> Chroma: idempotent by content hash,
batched, crash-safe.

The documents whose content hash the committed catalog already lists are skipped; the others become chunk
nodes (SentenceChunker) that a llama-index IngestionPipeline per embedder gives vectors (SentenceMeanEmbedding)
and writes to that embedder's ChromaVectorStore, round by round. An ingest writes new document versions beside
the committed ones, then commits by writing the catalog record (which versions make up the index), then
refreshes the local copy in index/ and removes what no catalog lists. Killed at any point, the previous index
still answers and the next ingest finishes the job: it reuses the document versions the killed run completed
and removes the rest. One ingest at a time per index folder (a lock file)."""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import BaseNode
from tqdm import tqdm

from chatbot.chunking import sentence_id
from chatbot.config import Settings
from chatbot.corpus import load_corpus
from chatbot.embeddings import Embedders, embedder_names, load_embedders
from chatbot.errors import ChatbotError
from chatbot.ingest.nodes import LABELS, SentenceChunker, as_llama_document, node_chunk, node_sentences
from chatbot.ingest.pipeline import SentenceMeanEmbedding, ingestion_pipeline
from chatbot.schemas import Chunk, Document
from chatbot.snapshot import build_snapshot, live_versions, load_local, local_files_current, save_local
from chatbot.store import ChromaIndex, ChromaStore, chroma_client, version_key

INDEX_VERSION = 4  # bump when chunking, keyword tokenisation or the catalog changes: forces a rebuild
LOCK = "ingest.lock"


class IngestRunning(ChatbotError):
    status_code = 409
    code = "ingest_running"


@dataclass
class IngestSummary:
    documents: int = 0
    chunks: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # indexed files read with a remark (encoding)
    new_chunks: int = 0  # chunks written by this run
    embedded_texts: int = 0  # distinct texts embedded (per embedder)
    reused: list[str] = field(default_factory=list)  # documents an interrupted ingest had completed
    removed_records: int = 0  # records no catalog lists (replaced versions, an interrupted run's left-overs)
    interrupted: bool = False  # records no catalog lists were found (an interrupted ingest) and repaired
    seconds: float = 0.0
    model_load_s: float = 0.0  # part of seconds spent loading the embedders
    phases_s: dict[str, float] = field(default_factory=dict)  # read, embed, write, commit (+ local copy), clean
    cpu_s: float = 0.0  # processor time of this process (all its threads), embedder loading excluded

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)

    def line(self) -> str:
        work = (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.deleted)} deleted, "
            f"{len(self.unchanged)} unchanged"
        )
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        work_s = self.seconds - self.model_load_s
        rate = f", {self.new_chunks / work_s:.0f} chunks/s" if self.new_chunks and work_s > 0 else ""
        load = f" (+{self.model_load_s:.1f} s loading the embedders)" if self.model_load_s else ""
        repaired = (f" Found records no catalog lists (an interrupted ingest, or an earlier index format): "
                    f"{len(self.reused)} completed documents reused, {self.removed_records} records removed."
                    ) if self.interrupted else ""
        return (
            f"Indexed {self.documents} documents, {self.chunks} chunks ({work}{skipped}) "
            f"in {work_s:.1f} s{rate}{load}.{repaired}"
        )


def recipe(settings: Settings) -> str:
    """What the index's records depend on besides the documents: records of another recipe are rebuilt."""
    return (f"v{INDEX_VERSION}|{','.join(embedder_names(settings))}|{settings.chunk_chars}|"
            f"{settings.chunk_overlap_sentences}" + ("" if settings.chunk_vectors == "text" else "|chunk=sentences"))


def open_index(settings: Settings, *, fresh: bool = False) -> ChromaIndex:
    client = chroma_client(settings.index_dir, settings.chroma_host, settings.chroma_port, fresh=fresh)
    return ChromaIndex(client, settings.collection_prefix, embedder_names(settings), recipe(settings))


def open_stores(settings: Settings) -> dict[str, ChromaStore]:
    """The chunk collection of every configured embedder."""
    return open_index(settings).chunks


@contextmanager
def ingest_lock(index_dir: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold the index folder's ingest lock: another ingest is refused with a clear message, or waited for.
    The kernel releases the lock when its holder exits, killed or not."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            if not wait:
                raise IngestRunning(
                    f"Another ingest is already running on {index_dir} ({holder}). Wait for it to finish "
                    "(or stop it) and run the ingest again."
                ) from None
            print(f"Another ingest is running on {index_dir} ({holder}); waiting for it to finish...",
                  file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class _Planned:
    doc: Document
    nodes: list[BaseNode]  # its chunks
    sentences: list[tuple[int, int]]  # every sentence's span, in text order

    def entry(self, indexed_at: str) -> dict[str, Any]:
        d = self.doc
        return {"doc_id": d.doc_id, "title": d.title, "source": d.source, "outlet": d.outlet, "date": d.date,
                "language": d.language, "content_hash": d.content_hash, "chars": len(d.text),
                "chunks": len(self.nodes), "sentences": len(self.sentences), "indexed_at": indexed_at}


def build_index(
    settings: Settings,
    *,
    corpus_dir: Path | None = None,
    embedders: Embedders | None = None,
    progress: bool = True,
    wait: bool = False,
) -> IngestSummary:
    """Bring the index in line with the corpus: add new, replace changed, delete removed documents.
    Raises IngestRunning when another ingest holds the index (unless wait)."""
    with ingest_lock(settings.index_dir, wait=wait):
        return _build(settings, corpus_dir or settings.corpus_dir, embedders, progress)


def _build(settings: Settings, corpus_dir: Path, embedders: Embedders | None, progress: bool) -> IngestSummary:
    t0 = time.perf_counter()
    c0 = time.process_time()
    index_dir = settings.index_dir
    scan = load_corpus(corpus_dir, max_file_mb=settings.max_file_mb)
    summary = IngestSummary(documents=len(scan.documents), skipped=scan.skipped, notes=scan.notes)
    phases = summary.phases_s
    index = open_index(settings, fresh=True)  # what the database holds now, whatever this process saw before

    stamp = index.catalog.stamp()
    committed = index.catalog.read() if stamp is not None and stamp[0] == index.recipe else None
    previous: dict[str, dict[str, Any]] = committed["documents"] if committed else {}
    complete = index.documents.complete_versions()
    if committed is not None and _missing_records(index, committed):
        previous, complete = {}, set()  # records of the committed index are missing: rebuild every document
    summary.interrupted = _has_leftovers(index, committed)

    current = {d.doc_id: d for d in scan.documents}
    to_index: list[Document] = []
    for doc in scan.documents:
        before = previous.get(doc.doc_id)
        if before is not None and before["content_hash"] == doc.content_hash:
            summary.unchanged.append(doc.doc_id)
            continue
        (summary.updated if doc.doc_id in (committed or {}).get("documents", {}) else summary.added).append(doc.doc_id)
        to_index.append(doc)
    summary.deleted = sorted(set((committed or {}).get("documents", {})) - set(current))

    relabelled = any(previous[d.doc_id].get(k) != getattr(d, k) for d in scan.documents if d.doc_id in previous
                     for k in LABELS)
    if committed is not None and not to_index and not summary.deleted and not summary.interrupted and not relabelled:
        if not local_files_current(index_dir, committed):  # a copy an interrupted run left stale, or none
            save_local(index_dir, build_snapshot(index, committed))
        summary.chunks = sum(int(e["chunks"]) for e in committed["documents"].values())
        summary.seconds = time.perf_counter() - t0
        summary.cpu_s = time.process_time() - c0
        return summary

    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    planned = _plan(to_index, settings)
    phases["read"] = time.perf_counter() - t0
    embed = [p for p in planned.values() if version_key(p.doc.doc_id, p.doc.content_hash) not in complete]
    summary.reused = sorted(set(planned) - {p.doc.doc_id for p in embed})
    if embed:
        if embedders is None:
            t, c = time.perf_counter(), time.process_time()
            embedders = load_embedders(settings)
            summary.model_load_s = time.perf_counter() - t
            c0 += time.process_time() - c
        _embed_and_store(index, embedders, embed, summary, now, progress, settings.ingest_round_texts,
                         chunk_text_vectors=settings.chunk_vectors == "text")
    summary.new_chunks = sum(len(p.nodes) for p in planned.values())
    t = time.perf_counter()

    documents = {}
    for doc in scan.documents:
        if doc.doc_id in planned:
            documents[doc.doc_id] = planned[doc.doc_id].entry(now)
        else:
            documents[doc.doc_id] = {**previous[doc.doc_id], **{k: getattr(doc, k) for k in LABELS}}
    catalog = {"version": INDEX_VERSION, "recipe": index.recipe, "generation": (stamp[1] if stamp else 0) + 1,
               "embedders": index.embedders, "built_at": now, "documents": documents}
    index.catalog.write(catalog)  # the commit: from here on the new versions are the index

    old_copy = None
    if committed is not None and local_files_current(index_dir, committed):
        try:
            old_copy = load_local(index, committed, index_dir, [])
        except (OSError, ValueError, KeyError):
            old_copy = None
    # New sentence vectors are read back: Chroma stores them re-normalised (a last-bit difference), and every
    # copy, made here or by a worker from the server, must hold the same numbers to rank ties the same way.
    snap = build_snapshot(index, catalog, previous=old_copy, chunks=_chunks(index, live_versions(catalog), planned))
    save_local(index_dir, snap, texts={d.doc_id: d.text for d in to_index})
    phases["commit"] = time.perf_counter() - t
    t = time.perf_counter()

    live = live_versions(catalog)
    collections = [*index.vector_collections(), index.documents]
    if not summary.interrupted and (summary.deleted or summary.updated):  # only these documents' old versions
        replaced = set(summary.deleted) | set(summary.updated)
        summary.removed_records = sum(c.remove_unlisted(live, replaced) for c in collections)
    if summary.interrupted or _has_leftovers(index, catalog):  # anything may be left over: look at every record
        summary.removed_records += sum(c.remove_unlisted(live) for c in collections)
    phases["clean"] = time.perf_counter() - t
    summary.chunks = len(snap.chunks)
    summary.seconds = time.perf_counter() - t0
    summary.cpu_s = time.process_time() - c0
    return summary


def _plan(docs: list[Document], settings: Settings) -> dict[str, _Planned]:
    """Every document's chunk nodes: the pipeline's first stage, run on all documents before any is embedded
    (the catalog and the write rounds need their counts)."""
    chunker = SentenceChunker(max_chars=settings.chunk_chars, overlap_sentences=settings.chunk_overlap_sentences)
    nodes = IngestionPipeline(transformations=[chunker], disable_cache=True).run(
        documents=[as_llama_document(d) for d in docs])
    by_doc: dict[str, list[BaseNode]] = {d.doc_id: [] for d in docs}
    for node in nodes:
        by_doc[str(node.ref_doc_id)].append(node)
    out = {}
    for doc in docs:
        spans = sorted({span for node in by_doc[doc.doc_id] for span in node_sentences(node)})
        out[doc.doc_id] = _Planned(doc, by_doc[doc.doc_id], spans)
    return out


def _chunks(index: ChromaIndex, live: set[str], planned: dict[str, _Planned]) -> list[Chunk]:
    """The committed index's chunks, in (doc_id, start) order: those of the documents this run chunked from
    their nodes, the others read from Chroma (none when every document was chunked here)."""
    chunks = [node_chunk(n) for p in planned.values() for n in p.nodes]
    if len(live) > len(planned):
        first = next(iter(index.chunks.values()))
        chunks += [c for c in first.all_chunks(live) if c.doc_id not in planned]
    return sorted(chunks, key=lambda c: (c.doc_id, c.start))


def _expected_counts(index: ChromaIndex, catalog: dict[str, Any]) -> dict[str, int]:
    docs = catalog["documents"].values()
    chunks = sum(int(e.get("chunks", 0)) for e in docs)
    sentences = sum(int(e.get("sentences", 0)) for e in docs)
    out = {s.name: chunks for s in index.chunks.values()}
    out.update({s.name: sentences for s in index.sentences.values()})
    out[index.documents.name] = len(catalog["documents"])
    return out


def _has_leftovers(index: ChromaIndex, catalog: dict[str, Any] | None) -> bool:
    """More records than the catalog lists: an ingest was interrupted (or its clean-up was)."""
    collections = [*index.vector_collections(), index.documents]
    if catalog is None:
        return any(c.count() for c in collections)
    expected = _expected_counts(index, catalog)
    return any(c.count() > expected[c.name] for c in collections)


def _missing_records(index: ChromaIndex, catalog: dict[str, Any]) -> bool:
    expected = _expected_counts(index, catalog)
    return any(c.count() < expected[c.name] for c in [*index.vector_collections(), index.documents])


def _embed_and_store(index: ChromaIndex, embedders: Embedders, planned: list[_Planned], summary: IngestSummary,
                     indexed_at: str, progress: bool, round_texts: int, *, chunk_text_vectors: bool = False) -> None:
    """Embed every distinct text once and write in rounds of about round_texts texts: per embedder and round,
    one bulk embedding call, then one IngestionPipeline run (the chunk vectors, its chunk nodes to the
    ChromaVectorStore) and one write of its sentence vectors; a killed ingest loses at most one round. A
    document's record (its completion mark) follows its vectors.

    Only sentences are embedded unless chunk_text_vectors: a chunk's vector is then the length-weighted mean of
    its sentences' vectors (a chunk of one sentence gets that sentence's vector)."""
    names = list(index.chunks)
    steps = {name: SentenceMeanEmbedding(embedder=embedders.by_name[name], chunk_text=chunk_text_vectors)
             for name in names}
    pipelines = {name: ingestion_pipeline(embedders.by_name[name], index.chunks[name].vector_store,
                                          embedding=steps[name]) for name in names}
    phases = summary.phases_s
    bar = tqdm(total=sum(len(p.nodes) for p in planned), unit="chunk", desc="Embedding", disable=not progress)
    for batch in _rounds(planned, round_texts):
        nodes = [n for p in batch for n in p.nodes]
        keys = [(p.doc.doc_id, p.doc.content_hash) for p in batch for _ in p.sentences]
        spans = [span for p in batch for span in p.sentences]
        sent_texts = [p.doc.text[s:e] for p in batch for s, e in p.sentences]
        ids = [sentence_id(d, h, s, e) for (d, h), (s, e) in zip(keys, spans)]
        for name in names:  # every embedder's texts first, then the writes (see SentenceMeanEmbedding.embed)
            step = steps[name]
            seconds, embedded = step.seconds, step.embedded
            step.embed(nodes)
            phases[f"embed_{name}"] = phases.get(f"embed_{name}", 0.0) + step.seconds - seconds
            summary.embedded_texts += step.embedded - embedded if name == names[0] else 0
        t0 = time.perf_counter()
        for name in names:
            pipelines[name].run(nodes=nodes)  # the round's vectors are there: sets the chunk vectors and writes
            index.sentences[name].upsert_sentences(ids, keys, spans, _stack([steps[name].vectors[t] for t in sent_texts],
                                                                            int(embedders.by_name[name].dim)))
        index.documents.upsert_documents([p.doc.text for p in batch],
                                         [{**p.entry(indexed_at), "source": p.doc.source} for p in batch])
        for node in nodes:
            node.embedding = None  # written: only the sentence vectors are kept (for later rounds)
        phases["write"] = phases.get("write", 0.0) + time.perf_counter() - t0
        bar.update(len(nodes))
    bar.close()


def _stack(rows: list[np.ndarray], dim: int) -> np.ndarray:
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)


def _rounds(planned: list[_Planned], size_limit: int) -> Iterator[list[_Planned]]:
    """Groups of whole documents of about size_limit texts (a bigger document is a round alone)."""
    batch: list[_Planned] = []
    size = 0
    for p in planned:
        n = len(p.nodes) + len(p.sentences)
        if batch and size + n > size_limit:
            yield batch
            batch, size = [], 0
        batch.append(p)
        size += n
    if batch:
        yield batch
