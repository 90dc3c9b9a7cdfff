"""Prints this machine's figures: ingest chunks/s, retrieval p50/p95, time to first token and total answer
time p50/p95 (default model: the packaged 1.5B), and peak memory. Usage: python bench/bench.py [--answers N]"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatbot.config import Settings  # noqa: E402
from chatbot.embeddings import load_embedders  # noqa: E402
from chatbot.evaluation.metrics import percentiles  # noqa: E402
from chatbot.ingest import build_index  # noqa: E402
from chatbot.retrieval import HybridRetriever  # noqa: E402
from chatbot.service import ChatService  # noqa: E402


def line(name: str, p: dict, unit: str = "ms") -> str:
    return f"{name:<28} p50 {p['p50']:>8.1f} {unit}   p95 {p['p95']:>8.1f} {unit}   (n={len(p['values'])})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=24, help="questions answered by the LLM")
    parser.add_argument("--copies", type=int, default=20, help="copies of the corpus for the ingest figure")
    args = parser.parse_args()
    questions = [json.loads(x) for x in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines() if x]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        src = REPO / "corpus" / "shanghai-soe-ai-plus-initiative.txt"
        for i in range(args.copies):
            shutil.copy(src, corpus / f"copy-{i:02d}.txt")
        settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
        t = time.perf_counter()
        embedders = load_embedders(settings)
        load_s = time.perf_counter() - t
        summary = build_index(settings, embedders=embedders, progress=False)
        results["ingest"] = {"documents": summary.documents, "chunks": summary.chunks, "seconds": summary.seconds,
                             "chunks_per_s": summary.chunks / summary.seconds, "embedder_load_s": load_s}
        print(f"Ingest: {summary.chunks} chunks from {summary.documents} documents in {summary.seconds:.1f} s "
              f"= {summary.chunks / summary.seconds:.1f} chunks/s (embedder load {load_s:.1f} s, not included)")
        t = time.perf_counter()
        again = build_index(settings, embedders=embedders, progress=False)
        print(f"Re-ingest of the unchanged corpus: {time.perf_counter() - t:.2f} s ({again.line()})")

    settings = Settings()
    embedders = load_embedders(settings)
    build_index(settings, embedders=embedders, progress=False)  # the real index (no work when up to date)
    retriever = HybridRetriever(settings, embedders)
    lat: dict[str, list[float]] = {"en": [], "zh": []}
    for _ in range(2):  # the first pass warms caches
        lat = {"en": [], "zh": []}
        for q in questions:
            t = time.perf_counter()
            retriever.retrieve(q["question"])
            lat[q["language"]].append((time.perf_counter() - t) * 1000)
    all_lat = lat["en"] + lat["zh"]
    results["retrieval_ms"] = {k: percentiles(v) for k, v in {"all": all_lat, **lat}.items()}
    print(line("Retrieval, all questions", results["retrieval_ms"]["all"]))
    print(line("Retrieval, English", results["retrieval_ms"]["en"]))
    print(line("Retrieval, Chinese", results["retrieval_ms"]["zh"]))

    t = time.perf_counter()
    service = ChatService.from_settings(settings)
    service.warmup()
    print(f"Service start (models, index, prompt prefix): {time.perf_counter() - t:.1f} s  LLM: {service.llm.name}")
    picked = questions[:: max(1, len(questions) // args.answers)][: args.answers]
    ttft, total, refused, in_service = [], [], 0, []
    for q in picked:
        a = service.ask(q["question"])
        total.append(a.timings_ms["total"])
        in_service.append(a.timings_ms["retrieve"])
        refused += a.refused
        if "first_token" in a.timings_ms:
            ttft.append(a.timings_ms["first_token"])
    results["retrieval_in_service_ms"] = percentiles(in_service)
    print(line("Retrieval inside the service", results["retrieval_in_service_ms"]))
    results["first_token_ms"] = percentiles(ttft)
    results["total_ms"] = percentiles(total)
    print(line("Time to first token", results["first_token_ms"]))
    print(line("Total answer time", results["total_ms"]) + f"   ({refused} refused before or after the LLM)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["peak_rss_mb"] = peak
    print(f"Peak memory (RSS): {peak:.0f} MB")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
