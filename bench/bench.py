"""Prints this machine's figures: ingest chunks/s, retrieval p50/p95, service start (prompt prefix evaluated, then
loaded from the saved state), time to first token and total answer time p50/p95 per language (default model: the
packaged 1.5B), a repeated question (answer cache), and peak memory.

Answer latency is measured over the held-out `test` questions by default: for SPEED only, never to tune answers.
Usage: python bench/bench.py [--answers N] [--split test|dev|all] [--skip-ingest]"""

from __future__ import annotations

import argparse
import gc
import json
import os
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
from chatbot.query import analyse_question  # noqa: E402
from chatbot.retrieval import HybridRetriever  # noqa: E402
from chatbot.service import ChatService  # noqa: E402


def line(name: str, p: dict, unit: str = "ms") -> str:
    return f"{name:<28} p50 {p['p50']:>8.1f} {unit}   p95 {p['p95']:>8.1f} {unit}   (n={len(p['values'])})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=24, help="questions answered by the LLM")
    parser.add_argument("--copies", type=int, default=20, help="copies of the corpus for the ingest figure")
    parser.add_argument("--split", default="test", choices=["test", "dev", "all"],
                        help="gold questions whose answers are timed (latency only)")
    parser.add_argument("--skip-ingest", action="store_true", help="skip the ingest and retrieval figures")
    args = parser.parse_args()
    gold = [json.loads(x) for x in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines() if x]
    questions = [q for q in gold if args.split == "all" or q.get("split") == args.split]
    results: dict = {"split": args.split, "load_average": os.getloadavg()}
    if not args.skip_ingest:
        ingest_and_retrieval(args, questions, results)
    answers(args, questions, results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["peak_rss_mb"] = peak
    results["load_average_end"] = os.getloadavg()
    print(f"Peak memory (RSS): {peak:.0f} MB   load average at start {results['load_average'][0]:.1f}, "
          f"at end {results['load_average_end'][0]:.1f} (other work on the machine slows every figure)")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def ingest_and_retrieval(args: argparse.Namespace, questions: list[dict], results: dict) -> None:
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
            retriever.retrieve(analyse_question(q["question"]))
            lat[q["language"]].append((time.perf_counter() - t) * 1000)
    all_lat = lat["en"] + lat["zh"]
    results["retrieval_ms"] = {k: percentiles(v) for k, v in {"all": all_lat, **lat}.items()}
    print(line("Retrieval, all questions", results["retrieval_ms"]["all"]))
    print(line("Retrieval, English", results["retrieval_ms"]["en"]))
    print(line("Retrieval, Chinese", results["retrieval_ms"]["zh"]))



def answers(args: argparse.Namespace, questions: list[dict], results: dict) -> None:
    with tempfile.TemporaryDirectory() as cache:
        # The first start evaluates the fixed prompt prefixes and saves their state; the second loads it.
        settings = Settings(cache_dir=Path(cache))
        for label in ("first start (prefix evaluated and saved)", "later start (prefix state loaded)"):
            t = time.perf_counter()
            service = ChatService.from_settings(settings)
            t_models = time.perf_counter() - t
            how = service.warmup()
            took = time.perf_counter() - t
            results.setdefault("service_start_s", {})[label] = {"total": took, "models": t_models, "prefix": how}
            print(f"Service start, {label}: {took:.1f} s (models and index {t_models:.1f} s, prefixes {how})")
            if label.startswith("first"):
                del service
                gc.collect()
    picked = questions[:: max(1, len(questions) // args.answers)][: args.answers]
    by_lang: dict[str, dict[str, list[float]]] = {}
    refused = 0
    for q in picked:
        a = service.ask(q["question"])
        lat = by_lang.setdefault(q["language"], {"total": [], "first_token": [], "retrieve": []})
        lat["total"].append(a.timings_ms["total"])
        lat["retrieve"].append(a.timings_ms.get("retrieve", 0.0))
        refused += a.refused
        if "first_token" in a.timings_ms:
            lat["first_token"].append(a.timings_ms["first_token"])
    every = {k: [v for lat in by_lang.values() for v in lat[k]] for k in ("total", "first_token", "retrieve")}
    results["answers"] = {"questions": len(picked), "refused": refused,
                          "all": {k: percentiles(v) for k, v in every.items()},
                          **{lang: {k: percentiles(v) for k, v in lat.items()} for lang, lat in by_lang.items()}}
    print(line("Retrieval inside the service", percentiles(every["retrieve"])))
    print(line("Time to first token", percentiles(every["first_token"])))
    print(line("Total answer time", percentiles(every["total"])) + f"   ({refused} refused before or after the LLM)")
    for lang, lat in sorted(by_lang.items()):
        print(line(f"Total answer time, {lang}", percentiles(lat["total"])))
    repeat = []
    for q in picked:
        t = time.perf_counter()
        service.ask(q["question"])
        repeat.append((time.perf_counter() - t) * 1000)
    results["repeated_question_ms"] = percentiles(repeat)
    print(line("Repeated question (cache)", results["repeated_question_ms"]))


if __name__ == "__main__":
    sys.exit(main())
