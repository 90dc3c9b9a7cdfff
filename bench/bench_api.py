"""HTTP API figures on this machine: /api/v1/retrieve requests/s and latency, /api/v1/ask p50/p95 with 1 and 4
concurrent clients, and the waiting line under a burst (how many 503s, how fast they come, whether /healthz and
/retrieve stay fast meanwhile). Starts its own `chatbot serve --ingest` (temporary index and database, no rate
limit, max_waiting 3, no answer cache: every question is generated) and writes bench/results/api.json.

Usage: python bench/bench_api.py [--questions 8] [--retrieve-requests 200] [--burst 8]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from served import Server

REPO = Path(__file__).resolve().parent.parent
MAX_WAITING = 3


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "mean": float(np.mean(values)), "max": float(np.max(values))}


def questions(n: int) -> list[str]:
    """Answerable gold questions, English and Chinese alternating, spread over the whole set."""
    gold = [json.loads(line) for line in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    answerable = [g for g in gold if g.get("kind") != "unanswerable"]
    en = [g["question"] for g in answerable if g["language"] == "en"]
    zh = [g["question"] for g in answerable if g["language"] == "zh"]
    picked: list[str] = []
    for i in range(n):
        pool = en if i % 2 == 0 else zh
        picked.append(pool[(i * 7) % len(pool)])
    return picked


def start_server(root: Path) -> Server:
    """`chatbot serve --ingest` over a copy of corpus/ in a temporary index, with a short waiting line and no answer
    cache (every question is generated)."""
    shutil.copytree(REPO / "corpus", root / "corpus")
    return Server(root, args=("--ingest",), env={
        "CHATBOT_CORPUS_DIR": str(root / "corpus"), "CHATBOT_INDEX_DIR": str(root / "index"),
        "CHATBOT_MAX_WAITING": str(MAX_WAITING), "CHATBOT_ANSWER_CACHE_SIZE": "0"})


def timed(method: str, url: str, **kwargs) -> tuple[float, httpx.Response]:  # noqa: ANN003
    t = time.perf_counter()
    r = httpx.request(method, url, timeout=600, **kwargs)
    return time.perf_counter() - t, r


def bench_retrieve(url: str, qs: list[str], requests: int, clients: int) -> dict:
    def one(i: int) -> float:
        seconds, r = timed("POST", url + "/api/v1/retrieve", json={"question": qs[i % len(qs)]})
        assert r.status_code == 200, r.text
        return seconds

    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - t
    return {"clients": clients, "requests": requests, "requests_per_s": requests / wall,
            "latency_ms": {k: v * 1000 if k != "n" else v for k, v in stats(latencies).items()}}


def bench_ask(url: str, qs: list[str], clients: int) -> dict:
    """Each client asks its share of the questions one after another; latency includes waiting in line."""
    results: list[tuple[float, int, bool]] = []

    def client(share: list[str]) -> None:
        for q in share:
            seconds, r = timed("POST", url + "/api/v1/ask", json={"question": q})
            results.append((seconds, r.status_code, r.status_code == 200 and r.json()["refused"]))

    shares = [qs[i::clients] for i in range(clients)]
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, shares))
    wall = time.perf_counter() - t
    ok = [s for s, code, _ in results if code == 200]
    return {"clients": clients, "questions": len(qs), "answered": len(ok),
            "refused": sum(1 for _, code, refused in results if code == 200 and refused),
            "status_503": sum(1 for _, code, _ in results if code == 503), "wall_s": wall,
            "answers_per_min": 60 * len(ok) / wall, "latency_s": stats(ok)}


def bench_burst(url: str, qs: list[str], burst: int) -> dict:
    """`burst` questions at once: 1 answered now, MAX_WAITING wait, the rest get 503 + Retry-After at once."""
    out: list[tuple[float, httpx.Response]] = []
    probes: list[tuple[str, float]] = []
    line: dict = {}

    def ask(i: int) -> None:
        out.append(timed("POST", url + "/api/v1/ask", json={"question": qs[i % len(qs)]}))

    with ThreadPoolExecutor(burst + 1) as pool:
        futures = [pool.submit(ask, i) for i in range(burst)]
        time.sleep(1.0)  # the line has formed
        for path, body in (("/healthz", None), ("/api/v1/retrieve", {"question": qs[0]}), ("/readyz", None)):
            seconds, r = timed("GET" if body is None else "POST", url + path, json=body)
            probes.append((path, seconds))
            if path == "/readyz":
                line = r.json()
        for f in futures:
            f.result()
    refused = [(s, r) for s, r in out if r.status_code == 503]
    answered = [s for s, r in out if r.status_code == 200]
    return {"burst": burst, "max_waiting": MAX_WAITING, "answered": len(answered), "status_503": len(refused),
            "other": sorted(r.status_code for _, r in out if r.status_code not in (200, 503)),
            "retry_after_s": sorted(int(r.headers.get("retry-after", 0)) for _, r in refused),
            "time_to_503_ms": stats([s * 1000 for s, _ in refused]), "answered_latency_s": stats(answered),
            "during_burst_ms": {p: s * 1000 for p, s in probes},
            "readyz_during_burst": {"generating": line.get("generating"), "waiting": line.get("waiting")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=8, help="questions per /ask run (1 and 4 clients)")
    parser.add_argument("--retrieve-requests", type=int, default=200)
    parser.add_argument("--burst", type=int, default=8, help="simultaneous questions for the queue figure")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "api.json"))
    args = parser.parse_args()
    qs = questions(max(args.questions, 8))
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            start_s = server.wait_ready()
            print(f"Server ready in {start_s:.1f} s (ingest + models) at {server.url}", flush=True)
            url = server.url
            httpx.post(url + "/api/v1/ask", json={"question": qs[0]}, timeout=600)  # warm caches once
            load = os.getloadavg()[0]
            print(f"Load average (1 min) before measuring: {load:.1f} on {os.cpu_count()} CPUs "
                  "(other processes share the machine when above ~1)", flush=True)
            results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                         "python": platform.python_version(), "load_average_before": load},
                             "date": time.strftime("%Y-%m-%d %H:%M"), "server_start_s": start_s}
            results["retrieve"] = [bench_retrieve(url, qs, args.retrieve_requests, c) for c in (1, 4)]
            for r in results["retrieve"]:
                lat = r["latency_ms"]
                print(f"/retrieve  {r['clients']} client(s): {r['requests_per_s']:6.1f} requests/s   "
                      f"p50 {lat['p50']:6.1f} ms   p95 {lat['p95']:6.1f} ms   (n={r['requests']})", flush=True)
            results["ask"] = [bench_ask(url, qs[:args.questions], c) for c in (1, 4)]
            for r in results["ask"]:
                lat = r["latency_s"]
                print(f"/ask       {r['clients']} client(s): p50 {lat['p50']:5.1f} s   p95 {lat['p95']:5.1f} s   "
                      f"{r['answers_per_min']:4.1f} answers/min   ({r['answered']}/{r['questions']} answered, "
                      f"{r['refused']} refused, {r['status_503']} × 503)", flush=True)
            b = bench_burst(url, qs, args.burst)
            results["burst"] = b
            probes = ", ".join(f"{p} {ms:.0f} ms" for p, ms in b["during_burst_ms"].items())
            print(f"Burst of {b['burst']} at once (max_waiting {b['max_waiting']}): {b['answered']} answered, "
                  f"{b['status_503']} × 503 in p50 {b['time_to_503_ms'].get('p50', 0):.0f} ms with Retry-After "
                  f"{b['retry_after_s']} s; meanwhile {probes}", flush=True)
            results["machine"]["load_average_after"] = os.getloadavg()[0]
        finally:
            server.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"Wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
