"""The only chromadb importer. Chroma holds the whole index: chunk nodes (through llama-index's
ChromaVectorStore) and sentence vectors per embedder, each document's text, and the catalog record whose write
commits an ingest. Embedded or a Chroma server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.schema import BaseNode
from llama_index.vector_stores.chroma import ChromaVectorStore

from chatbot.errors import ChatbotError
from chatbot.schemas import Chunk, Sentence

# At most this many extra candidates are asked for to step over records an ingest is writing (see query).
MAX_OVERFETCH = 2000
# A query may use a record count this old: an ingest starting meanwhile shifts candidates for that long at most.
COUNT_MAX_AGE_S = 2.0
_ONE = [1.0]  # Chroma requires a vector per record; the document and catalog collections are never searched


def version_key(doc_id: str, content_hash: str) -> str:
    return f"{content_hash}:{doc_id}"


@dataclass
class DenseHit:
    chunk: Chunk
    cosine: float


def chroma_client(index_dir: Path, host: str | None = None, port: int = 8000, *, fresh: bool = False):  # noqa: ANN201
    """A chromadb client: embedded under index_dir, or a Chroma server when host is given.

    fresh (embedded only): a new client rather than this process's cached one. An embedded client keeps its
    vector index in memory and does not see vectors that another process (an ingest) wrote later."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if host:
        try:
            client = chromadb.HttpClient(host=host, port=port, settings=settings)
            client.heartbeat()
        except Exception as exc:  # noqa: BLE001 - any connection failure reads the same to a user
            raise ChatbotError(
                f"Cannot reach the Chroma server at {host}:{port} ({type(exc).__name__}). Start it with "
                f"`chroma run --path DIR --host {host} --port {port}` or unset CHATBOT_CHROMA_HOST."
            ) from exc
        return client
    path = index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    if fresh:
        from chromadb.api.shared_system_client import SharedSystemClient

        # chromadb caches one system per path and process; dropping our entry makes the next client new.
        # Clients made before keep theirs (a retriever keeps answering from what it loaded).
        SharedSystemClient._identifier_to_system.pop(str(path), None)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def _batches(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


class _Collection:
    """A Chroma collection with batched writes (Chroma caps the records of one call)."""

    HNSW: dict[str, str | int] = {"hnsw:space": "cosine"}  # applies when the collection is created

    def __init__(self, client, name: str, recipe: str) -> None:  # noqa: ANN001
        self.name = name
        # A record belongs to the index when its document version is in the catalog and it was made by the
        # catalog's recipe (index version, embedders, chunking); other records are left-overs to remove.
        self.recipe = recipe
        self._collection = client.get_or_create_collection(name=name, metadata=dict(self.HNSW))
        try:
            self._max_batch = int(client.get_max_batch_size())
        except Exception:  # noqa: BLE001 - older servers do not say
            self._max_batch = 4096

    def count(self, max_age_s: float = 0.0) -> int:
        """Records in the collection; a count at most max_age_s old will do (counting 30,000 records took
        8 ms, more than the search itself)."""
        now = time.monotonic()
        cached = getattr(self, "_counted", None)
        if cached is not None and now - cached[1] <= max_age_s:
            return cached[0]
        value = int(self._collection.count())
        self._counted = (value, now)
        return value

    def _upsert(self, ids: list[str], vectors: np.ndarray | list, metadatas: list[dict],
                documents: list[str] | None = None) -> None:
        for part in _batches(len(ids), self._max_batch):
            self._collection.upsert(
                ids=ids[part], embeddings=vectors[part], metadatas=metadatas[part],  # type: ignore[arg-type]
                documents=documents[part] if documents is not None else None,
            )

    def delete_ids(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for part in _batches(len(ids), self._max_batch):
            self._collection.delete(ids=ids[part])

    def _get(self, include: list[str], where: dict | None = None) -> dict[str, Any]:
        """Every record (paged: a server answers big reads slowly or not at all)."""
        out: dict[str, list] = {"ids": [], **{k: [] for k in include}}
        offset, page = 0, 20000
        while True:
            got = self._collection.get(include=include, where=where, limit=page, offset=offset)  # type: ignore[arg-type]
            out["ids"].extend(got["ids"])
            for k in include:
                values = got.get(k)
                out[k].extend(list(values) if values is not None else [None] * len(got["ids"]))
            if len(got["ids"]) < page:
                return out
            offset += page

    def _live(self, meta: dict, live_versions: set[str]) -> bool:
        return meta.get("recipe") == self.recipe and \
            version_key(meta.get("doc_id", ""), meta.get("content_hash", "")) in live_versions

    def remove_unlisted(self, live_versions: set[str], doc_ids: set[str] | None = None) -> int:
        """Delete records not of live_versions or made by another recipe, looking only at the records of
        doc_ids when given (a few documents replaced or deleted); returns how many."""
        if doc_ids is None:
            parts = [self._get(["metadatas"])]
        else:
            ordered = sorted(doc_ids)
            parts = [self._get(["metadatas"], where={"doc_id": {"$in": ordered[part]}})
                     for part in _batches(len(ordered), 200)]
        dead = [i for got in parts for i, m in zip(got["ids"], got["metadatas"]) if not self._live(m, live_versions)]
        self.delete_ids(dead)
        return len(dead)


class IndexVectorStore(ChromaVectorStore):
    """llama-index's ChromaVectorStore over one chunk collection of the index. Each node written is stamped
    with the index's recipe, replaces a record of the same id (Chroma's add keeps an existing one: a chunk
    whose vector changed with the recipe keeps its id) and goes in batches Chroma accepts."""

    recipe: str = ""
    max_batch: int = 4096

    def __init__(self, collection: Any, recipe: str, max_batch: int) -> None:
        super().__init__(chroma_collection=collection)
        # ChromaVectorStore's __init__ passes on only its own fields
        self.recipe = recipe
        self.max_batch = max_batch

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        ids: list[str] = []
        for part in _batches(len(nodes), self.max_batch):
            batch = list(nodes[part])
            for node in batch:
                node.metadata["recipe"] = self.recipe
            # Looking first: a read costs a few ms, a delete (a write, even of nothing) about 0.1 s per 1,000 ids.
            existing = self._collection.get(ids=[n.node_id for n in batch], include=[])["ids"]
            if existing:
                self._collection.delete(ids=existing)
            ids += super().add(batch, **add_kwargs)
        return ids


class ChromaStore(_Collection):
    """Chunk nodes and their vectors for one embedder (cosine space): written through `vector_store`, read
    back as the project's Chunks (from the metadata keys doc_id and sentences)."""

    def __init__(self, client, name: str, recipe: str) -> None:  # noqa: ANN001
        super().__init__(client, name, recipe)
        self.vector_store = IndexVectorStore(self._collection, recipe, self._max_batch)

    def all_chunks(self, live_versions: set[str] | None = None) -> list[Chunk]:
        """The chunks of live_versions (every chunk when None), in (doc_id, start) order."""
        got = self._get(["metadatas", "documents"])
        chunks = [
            self._to_chunk(i, t, m) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])
            if live_versions is None or self._live(m, live_versions)
        ]
        return sorted(chunks, key=lambda c: (c.doc_id, c.start))

    def query(self, vector: np.ndarray, k: int, doc_ids: frozenset[str] | None = None,
              live: Mapping[str, Chunk] | Iterable[str] | None = None) -> list[DenseHit]:
        """The k nearest chunks, only from `doc_ids` when given, only among `live` chunk ids when given
        (a mapping of them to chunks: the chunks returned are those).

        While an ingest writes (or after one was killed) the collection holds records no catalog lists yet;
        asking for as many more candidates as there are such records returns exactly the k nearest live
        chunks (up to MAX_OVERFETCH extra). An embedded client searches the vectors it loaded: records
        another process deleted since come back without their data, and only `live` can still tell them."""
        if k <= 0 or (doc_ids is not None and not doc_ids):
            return []
        total = self.count(max_age_s=COUNT_MAX_AGE_S)
        if total == 0:
            return []
        live_set = live if isinstance(live, (set, frozenset, Mapping)) or live is None else set(live)
        extra = 0 if live_set is None else min(MAX_OVERFETCH, max(0, total - len(live_set)))
        # Not capped by the count: an embedded client may search more vectors than the database now counts.
        n = k + extra
        where = None
        if doc_ids is not None:
            where = {"doc_id": {"$in": sorted(doc_ids)}}
        res = self._collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=n,
                                     where=where, include=["metadatas", "documents", "distances"])  # type: ignore[arg-type]
        hits = []
        for cid, text, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],  # type: ignore[index]
                                         res["distances"][0]):  # type: ignore[index]
            if live_set is not None and cid not in live_set:
                continue
            chunk = live_set.get(cid) if isinstance(live_set, Mapping) else None
            if chunk is None:
                if meta is None or text is None:
                    continue  # deleted since this client loaded its vectors
                chunk = self._to_chunk(cid, text, meta)
            hits.append(DenseHit(chunk, 1.0 - float(dist)))  # cosine space
            if len(hits) == k:
                break
        return hits

    @staticmethod
    def _to_chunk(chunk_id: str, text: str, meta: dict) -> Chunk:
        """A chunk's offsets are its first sentence's start and last sentence's end."""
        spans = json.loads(meta["sentences"])
        return Chunk(
            chunk_id=chunk_id,
            doc_id=meta["doc_id"],
            start=int(spans[0][0]),
            end=int(spans[-1][1]),
            text=text,
            sentences=[Sentence(start=s, end=e) for s, e in spans],
        )


class SentenceStore(_Collection):
    """Sentence vectors for one embedder: the evidence ranking compares the question with each sentence."""

    # Searched only on big indexes (chatbot/sentence_index.py); a cheaper graph build (measured: 10,000 vectors
    # in 3.8 instead of 5.3 s of processor time) costs little there.
    HNSW = {"hnsw:space": "cosine", "hnsw:construction_ef": 40}

    def upsert_sentences(self, ids: list[str], keys: list[tuple[str, str]], spans: list[tuple[int, int]],
                         vectors: np.ndarray) -> None:
        metas = [{"doc_id": d, "content_hash": h, "recipe": self.recipe, "start": s, "end": e}
                 for (d, h), (s, e) in zip(keys, spans)]
        self._upsert(ids, vectors, metas)

    def vectors(self, live_versions: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """doc_id -> (spans n×2 in text order, vectors n×dim) for the live document versions."""
        hashes = sorted({key.split(":", 1)[0] for key in live_versions})
        # A few versions (an update): ask for their records only; many: one pass over the collection.
        where = {"content_hash": {"$in": hashes}} if len(hashes) <= 200 else None
        got = self._get(["metadatas", "embeddings"], where=where)
        rows: dict[str, list[tuple[int, int, int]]] = {}
        for j, m in enumerate(got["metadatas"]):
            if self._live(m, live_versions):
                rows.setdefault(m["doc_id"], []).append((int(m["start"]), int(m["end"]), j))
        if not rows:
            return {}
        matrix = np.asarray(got["embeddings"], dtype=np.float32)
        out = {}
        for doc_id, items in rows.items():
            items.sort()
            out[doc_id] = (np.array([[s, e] for s, e, _ in items], dtype=np.int64).reshape(-1, 2),
                           matrix[[j for _, _, j in items]])
        return out


    def nearest(self, vector: np.ndarray, n: int,
                doc_ids: frozenset[str] | None = None) -> list[tuple[str, str, int, float]]:
        """(doc_id, content_hash, start, distance) of the n nearest sentences, nearest first."""
        if n <= 0 or (doc_ids is not None and not doc_ids):
            return []
        where = {"doc_id": {"$in": sorted(doc_ids)}} if doc_ids is not None else None
        res = self._collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=n,
                                     where=where, include=["metadatas", "distances"])  # type: ignore[arg-type]
        return [(m["doc_id"], m.get("content_hash", ""), int(m["start"]), float(d))
                for m, d in zip(res["metadatas"][0], res["distances"][0])  # type: ignore[index]
                if m is not None]  # None: deleted since this (embedded) client loaded its vectors


class DocumentStore(_Collection):
    """One record per document version: its text (what citation offsets point into) and catalog entry.
    Written after the version's chunks and sentences, so its presence says they are complete."""

    def upsert_documents(self, texts: list[str], entries: list[dict[str, Any]]) -> None:
        ids = [version_key(e["doc_id"], e["content_hash"]) for e in entries]
        metas = [{**{k: v for k, v in e.items() if isinstance(v, (str, int, float, bool))},
                  "recipe": self.recipe} for e in entries]
        self._upsert(ids, [_ONE] * len(ids), metas, texts)

    def complete_versions(self) -> set[str]:
        """Versions whose records were all written, by this recipe."""
        got = self._get(["metadatas"])
        return {version_key(m.get("doc_id", ""), m.get("content_hash", "")) for m in got["metadatas"]
                if m.get("recipe") == self.recipe}

    def texts(self, versions: list[str]) -> dict[str, str]:
        """version key -> text."""
        out: dict[str, str] = {}
        wanted = set(versions)
        hashes = sorted({key.split(":", 1)[0] for key in wanted})
        for part in _batches(len(hashes), 200):
            got = self._get(["metadatas", "documents"], where={"content_hash": {"$in": hashes[part]}})
            for meta, text in zip(got["metadatas"], got["documents"]):
                key = version_key(meta.get("doc_id", ""), meta.get("content_hash", ""))
                if key in wanted:
                    out[key] = text
        return out


class CatalogStore(_Collection):
    """The catalog record: which document versions make up the index. Writing it commits an ingest."""

    RECORD = "catalog"

    def read(self) -> dict[str, Any] | None:
        got = self._collection.get(ids=[self.RECORD], include=["documents"])
        if not got["ids"]:
            return None
        try:
            return json.loads(got["documents"][0])  # type: ignore[index]
        except (TypeError, ValueError):
            return None

    def stamp(self) -> tuple[str, int] | None:
        """(recipe, generation) of the committed catalog, without reading the whole catalog."""
        got = self._collection.get(ids=[self.RECORD], include=["metadatas"])
        if not got["ids"]:
            return None
        meta = got["metadatas"][0]  # type: ignore[index]
        return str(meta.get("recipe", "")), int(meta.get("generation", 0))

    def write(self, catalog: dict[str, Any]) -> None:
        self._collection.upsert(
            ids=[self.RECORD], embeddings=[_ONE], documents=[json.dumps(catalog, ensure_ascii=False)],
            metadatas=[{"recipe": catalog["recipe"], "generation": int(catalog["generation"]),
                        "built_at": str(catalog.get("built_at", ""))}],
        )


class ChromaIndex:
    """Every collection of one index (a name prefix): chunks and sentences per embedder, documents, catalog."""

    def __init__(self, client, prefix: str, embedders: list[str], recipe: str) -> None:  # noqa: ANN001
        self.embedders = list(embedders)
        self.recipe = recipe
        self.chunks = {name: ChromaStore(client, f"{prefix}_{name}", recipe) for name in embedders}
        self.sentences = {name: SentenceStore(client, f"{prefix}_{name}_sentences", recipe) for name in embedders}
        self.documents = DocumentStore(client, f"{prefix}_documents", recipe)
        self.catalog = CatalogStore(client, f"{prefix}_catalog", recipe)

    def vector_collections(self) -> list[_Collection]:
        return [*self.chunks.values(), *self.sentences.values()]
