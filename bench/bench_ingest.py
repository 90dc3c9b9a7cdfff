"""Ingest throughput and retrieval latency by index size, on synthetic corpora generated here (not committed).

Corpora:
  real            the corpus/ folder (one document)
  copies-20       20 copies of the real document (the corpus the earlier bench used: ~10 chunks/s then)
  recombined-N    about N chunks: documents of the real document's sentences in shuffled order
  unique-N        about N chunks, every sentence made distinct (a city district and a number woven in):
                  the worst case, where no text repeats and every sentence costs an embedding

Prints chunks/s (embedders loaded beforehand, not counted) by the clock and per second of processor time of this
process (on a shared machine the clock figure depends on what else runs; in server mode the Chroma server's own
processor time is not counted), distinct texts embedded, time per phase, a re-ingest
of the unchanged corpus, and retrieval p50/p95 over the gold questions at each size; writes
bench/results/ingest.json. Usage:
  python bench/bench_ingest.py                                  # the default set (takes a while at 100k)
  python bench/bench_ingest.py --sizes 1000 --unique-sizes 1000 --retrieval-sizes 10000
  python bench/bench_ingest.py --server                         # also through a Chroma server (`chroma run`)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from chatbot.chunking import chunk_document, split_sentences  # noqa: E402
from chatbot.config import Settings  # noqa: E402
from chatbot.embeddings import Embedders, load_embedders  # noqa: E402
from chatbot.ingest import build_index  # noqa: E402
from chatbot.query import analyse_question  # noqa: E402
from chatbot.retrieval import HybridRetriever  # noqa: E402
from chatbot.schemas import Document  # noqa: E402

REAL = REPO / "corpus" / "shanghai-soe-ai-plus-initiative.txt"
DISTRICTS = ["Huangpu", "Xuhui", "Changning", "Jing'an", "Putuo", "Hongkou", "Yangpu", "Minhang", "Baoshan",
             "Jiading", "Pudong", "Jinshan", "Songjiang", "Qingpu", "Fengxian", "Chongming"]


def real_sentences() -> list[str]:
    text = REAL.read_text(encoding="utf-8")
    return [text[s.start : s.end] for s in split_sentences(text)]


def chunks_of(text: str, settings: Settings) -> int:
    doc = Document(doc_id="x", title="x", source="x", text=text, content_hash="x")
    return len(chunk_document(doc, max_chars=settings.chunk_chars, overlap_sentences=settings.chunk_overlap_sentences))


def make_corpus(folder: Path, kind: str, target_chunks: int, settings: Settings, seed: int = 7) -> int:
    """Write documents of recombined sentences until they hold about target_chunks chunks; returns the count."""
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    sentences = real_sentences()
    total = n = 0
    while total < target_chunks:
        picked = rng.sample(sentences, k=min(12, len(sentences)))
        if kind == "unique":
            district = DISTRICTS[n % len(DISTRICTS)]
            picked = [f"In {district} (case {n}.{i}), {s[0].lower()}{s[1:]}" for i, s in enumerate(picked)]
        text = f"Synthetic report {n}\n" + "\n".join(picked) + "\n"
        (folder / f"{kind}-{n:06d}.txt").write_text(text, encoding="utf-8")
        total += chunks_of(text, settings)
        n += 1
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chroma(path: Path) -> tuple[subprocess.Popen, int]:
    from chatbot.errors import ChatbotError
    from chatbot.store import chroma_client

    port = free_port()
    chroma = str(Path(sys.executable).with_name("chroma"))
    proc = subprocess.Popen([chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while True:
        try:
            chroma_client(path, "127.0.0.1", port)
            return proc, port
        except ChatbotError:
            if proc.poll() is not None or time.time() > deadline:
                raise
            time.sleep(0.3)


def percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)), "n": len(values)}


def measure_retrieval(settings: Settings, embedders: Embedders, questions: list[str]) -> dict:
    t = time.perf_counter()
    retriever = HybridRetriever(settings, embedders)
    load_s = time.perf_counter() - t
    for q in questions[:5] + questions[-5:]:  # warm caches (and load the pinyin tables a Chinese question needs)
        retriever.retrieve(analyse_question(q))
    total, search = [], []
    for q in questions:
        t = time.perf_counter()
        got = retriever.retrieve(analyse_question(q))
        total.append((time.perf_counter() - t) * 1000)
        search.append(got.timings_ms.get("search", 0.0))
    return {"load_s": load_s, "total_ms": percentiles(total), "search_ms": percentiles(search)}


def run_case(name: str, corpus: Path, index: Path, embedders: Embedders, questions: list[str] | None,
             server: int | None, chunks_made: int) -> dict:
    extra = {"chroma_host": "127.0.0.1", "chroma_port": server} if server else {}
    settings = Settings(corpus_dir=corpus, index_dir=index, index_check_s=0, **extra)
    summary = build_index(settings, embedders=embedders, progress=False)
    rate = summary.new_chunks / summary.seconds if summary.seconds else 0.0
    cpu_rate = summary.new_chunks / summary.cpu_s if summary.cpu_s else 0.0
    t = time.perf_counter()
    again = build_index(settings, embedders=embedders, progress=False)
    reingest = time.perf_counter() - t
    row = {"case": name, "mode": "server" if server else "embedded", "documents": summary.documents,
           "chunks": summary.chunks, "distinct_texts_embedded": summary.embedded_texts,
           "seconds": round(summary.seconds, 2), "chunks_per_s": round(rate, 1),
           "cpu_seconds": round(summary.cpu_s, 2), "chunks_per_cpu_s": round(cpu_rate, 1),
           "load_average": round(os.getloadavg()[0], 1),
           "phases_s": {k: round(v, 2) for k, v in summary.phases_s.items()},
           "reingest_unchanged_s": round(reingest, 2), "reingest_changed": again.changed}
    phases = ", ".join(f"{k} {v:.1f}" for k, v in row["phases_s"].items())
    print(f"{name:<18} {row['mode']:<8} {summary.chunks:>7} chunks {summary.documents:>6} docs "
          f"{summary.embedded_texts:>6} texts embedded  {summary.seconds:>7.1f} s  {rate:>7.1f} chunks/s  "
          f"({summary.cpu_s:.1f} CPU-s{' here, the server not counted' if server else ''}: {cpu_rate:.1f} chunks per "
          f"CPU-s, load {os.getloadavg()[0]:.1f})  "
          f"[{phases}]  re-ingest {reingest:.2f} s", flush=True)
    if questions:
        r = measure_retrieval(settings, embedders, questions)
        row["retrieval"] = r
        print(f"{'':<18} retrieval over {r['total_ms']['n']} questions: p50 {r['total_ms']['p50']:.1f} ms, "
              f"p95 {r['total_ms']['p95']:.1f} ms (search alone p50 {r['search_ms']['p50']:.1f} ms); "
              f"retriever load {r['load_s']:.1f} s", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000], help="recombined corpora (chunks)")
    parser.add_argument("--unique-sizes", type=int, nargs="*", default=[1000], help="all-distinct corpora (chunks)")
    parser.add_argument("--retrieval-sizes", type=int, nargs="*", default=[10000, 100000],
                        help="recombined sizes at which retrieval latency is measured (ingested if not above)")
    parser.add_argument("--server", action="store_true", help="repeat the recombined sizes through `chroma run`")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "ingest.json"))
    args = parser.parse_args()

    gold = [json.loads(x)["question"] for x in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
            if x.strip()]
    base = Settings()
    t = time.perf_counter()
    embedders = load_embedders(base)
    for emb in embedders.by_name.values():  # first calls pay one-off set-up costs
        emb.embed_documents(real_sentences()[:4])
    print(f"Embedders loaded in {time.perf_counter() - t:.1f} s (not counted below). CPU cores: {os.cpu_count()}, "
          f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        rows.append(run_case("real", REPO / "corpus", root / "i-real", embedders, gold, None, 0))
        copies = root / "copies"
        copies.mkdir()
        for i in range(20):
            shutil.copy(REAL, copies / f"copy-{i:02d}.txt")
        rows.append(run_case("copies-20", copies, root / "i-copies", embedders, None, None, 0))
        for size in args.unique_sizes:
            made = make_corpus(root / f"u{size}", "unique", size, base)
            rows.append(run_case(f"unique-{size}", root / f"u{size}", root / f"i-u{size}", embedders,
                                 gold if size in args.retrieval_sizes else None, None, made))
        for size in sorted(set(args.sizes) | set(args.retrieval_sizes)):
            made = make_corpus(root / f"r{size}", "recombined", size, base)
            rows.append(run_case(f"recombined-{size}", root / f"r{size}", root / f"i-r{size}", embedders,
                                 gold if size in args.retrieval_sizes else None, None, made))
            if args.server and size in args.sizes:
                proc, port = start_chroma(root / f"srv{size}")
                try:
                    rows.append(run_case(f"recombined-{size}", root / f"r{size}", root / f"i-s{size}", embedders,
                                         gold if size in args.retrieval_sizes else None, port, made))
                finally:
                    proc.terminate()
                    proc.wait()
            shutil.rmtree(root / f"i-r{size}", ignore_errors=True)
            shutil.rmtree(root / f"r{size}", ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Peak memory of this process: {peak_mb:.0f} MB. Load average at the end: {os.getloadavg()[0]:.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%d %H:%M"), "cpu_cores": os.cpu_count(),
                               "peak_rss_mb": round(peak_mb), "cases": rows}, indent=1), encoding="utf-8")
    print(f"Written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
