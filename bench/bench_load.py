"""Load on the served API, in two bounded phases on loopback: 16 concurrent clients on /api/v1/retrieve, then 4 on
/api/v1/ask, each for 60 s. Prints and writes bench/results/load.json: requests, throughput, p50/p95/p99 latency,
errors by status, the 503 `busy` answers (the designed back-pressure of /ask; the client waits the Retry-After they
give and asks again) counted apart from failures, and the server's memory (RSS of the process and its children)
at the start and end of each phase.

Starts its own `chatbot serve` on the real index in index/ (run `chatbot ingest` first) with the packaged local
model, a temporary database, no rate limit and no answer cache (every /ask is generated, unless --answer-cache).
Each client is one keep-alive connection asking the dev split's questions of eval/gold.jsonl, English and
Chinese, from its own place in the list. One /retrieve and one /ask warm the server up first (timed apart).

Usage: python bench/bench_load.py [--seconds 60] [--retrieve-clients 16] [--ask-clients 4] [--output PATH]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from served import Server

REPO = Path(__file__).resolve().parent.parent
REQUEST_TIMEOUT_S = 300.0  # an /ask waits in line behind the others' generations
MAX_RETRY_AFTER_S = 30.0


def dev_questions(seed: int = 7) -> list[str]:
    """The dev split's questions (English and Chinese), in a fixed shuffled order."""
    gold = [json.loads(line) for line in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    questions = [g["question"] for g in gold if g.get("split") == "dev"]
    random.Random(seed).shuffle(questions)
    return questions


def rss_kib(pid: int) -> int:
    """VmRSS of `pid` and all its descendants, in KiB (0 for a process that is gone)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return total


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def start_server(root: Path, *, answer_cache: bool) -> Server:
    """`chatbot serve` over the real index in index/ (the answer cache off unless asked for)."""
    env = {"CHATBOT_INDEX_DIR": str(REPO / "index"), "CHATBOT_CORPUS_DIR": str(REPO / "corpus")}
    if not answer_cache:
        env["CHATBOT_ANSWER_CACHE_SIZE"] = "0"
    return Server(root, env=env)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, of the 200s
    statuses: Counter = field(default_factory=Counter)  # every answer by HTTP status ("transport:<Error>" when none)
    refused: int = 0  # /ask answers with refused: true
    busy: int = 0  # 503 with Retry-After: the waiting line for the model is full (designed back-pressure)
    busy_waited_s: float = 0.0  # time spent honouring Retry-After


async def client_loop(url: str, path: str, questions: list[str], start: int, deadline: float, tally: Tally) -> None:
    """One client: ask, read the whole answer, ask the next question, until the deadline (the request in flight
    at the deadline finishes and counts). A 503 with Retry-After waits that long before the next request."""
    i = start
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S,
                                 limits=httpx.Limits(max_connections=1)) as http:
        while time.monotonic() < deadline:
            question = questions[i % len(questions)]
            i += 1
            t = time.perf_counter()
            try:
                r = await http.post(path, json={"question": question})
            except httpx.HTTPError as exc:
                tally.statuses[f"transport:{type(exc).__name__}"] += 1
                await asyncio.sleep(0.5)
                continue
            seconds = time.perf_counter() - t
            if r.status_code == 200:
                tally.statuses["200"] += 1
                tally.latencies.append(seconds)
                if path.endswith("/ask") and r.json().get("refused"):
                    tally.refused += 1
            elif r.status_code != 503 or "retry-after" not in r.headers:
                tally.statuses[str(r.status_code)] += 1
            else:
                tally.busy += 1
                wait = min(float(r.headers["retry-after"]), MAX_RETRY_AFTER_S, max(0.0, deadline - time.monotonic()))
                tally.busy_waited_s += wait
                await asyncio.sleep(wait)


async def run_phase(server: Server, path: str, clients: int, seconds: float, questions: list[str]) -> dict:
    pid = server.process.pid
    rss_start = rss_kib(pid)
    load_start = os.getloadavg()
    tally = Tally()
    t0 = time.monotonic()
    deadline = t0 + seconds
    step = max(1, len(questions) // clients)
    await asyncio.gather(*(client_loop(server.url, path, questions, c * step, deadline, tally)
                           for c in range(clients)))
    wall = time.monotonic() - t0
    rss_end = rss_kib(pid)
    requests = sum(tally.statuses.values()) + tally.busy
    ok = tally.statuses.get("200", 0)
    errors = {status: n for status, n in sorted(tally.statuses.items()) if status != "200"}
    lat = np.array(tally.latencies) * 1000.0
    latency = ({"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                "p99": round(float(np.percentile(lat, 99)), 1), "mean": round(float(lat.mean()), 1),
                "max": round(float(lat.max()), 1)} if len(lat) else {})
    return {"endpoint": path, "clients": clients, "seconds": seconds, "wall_s": round(wall, 2),
            "requests": requests, "ok": ok, "throughput_rps": round(ok / wall, 3) if wall else 0.0,
            "latency_ms": latency, "errors": errors, "error_count": sum(errors.values()),
            "busy_503": tally.busy, "busy_waited_s": round(tally.busy_waited_s, 1),
            **({"refused": tally.refused} if path.endswith("/ask") else {}),
            "server_rss_mib": {"start": round(rss_start / 1024, 1), "end": round(rss_end / 1024, 1),
                               "change": round((rss_end - rss_start) / 1024, 1)},
            "load_average": {"start": [round(x, 2) for x in load_start],
                             "end": [round(x, 2) for x in os.getloadavg()]}}


def warm_up(url: str, questions: list[str]) -> dict[str, float]:
    """One /retrieve and one /ask before the phases, timed: the first requests load what the server loads
    lazily, which is not what a steady load measures."""
    took = {}
    for path in ("/api/v1/retrieve", "/api/v1/ask"):
        t = time.perf_counter()
        r = httpx.post(url + path, json={"question": questions[0]}, timeout=REQUEST_TIMEOUT_S)
        took[path] = round((time.perf_counter() - t) * 1000.0, 1)
        if r.status_code != 200:
            raise SystemExit(f"warm-up {path} answered {r.status_code}: {r.text[:500]}")
    return took


def show(phase: dict) -> None:
    lat = phase["latency_ms"]
    rss = phase["server_rss_mib"]
    print(f"{phase['endpoint']}: {phase['clients']} clients × {phase['seconds']:.0f} s: {phase['requests']} requests, "
          f"{phase['ok']} ok, {phase['throughput_rps']:.2f} req/s")
    if lat:
        print(f"  latency ms: p50 {lat['p50']:.0f}, p95 {lat['p95']:.0f}, p99 {lat['p99']:.0f}, max {lat['max']:.0f}")
    print(f"  errors: {phase['error_count']} {phase['errors'] or ''}".rstrip()
          + (f"; busy 503: {phase['busy_503']} (waited {phase['busy_waited_s']} s)" if phase["busy_503"] else "")
          + (f"; refused answers: {phase['refused']}" if "refused" in phase else ""))
    print(f"  server RSS MiB: {rss['start']:.0f} → {rss['end']:.0f} ({rss['change']:+.0f}); load average "
          f"{phase['load_average']['start'][0]:.2f} → {phase['load_average']['end'][0]:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase (default 60)")
    parser.add_argument("--retrieve-clients", type=int, default=16, help="concurrent /retrieve clients (16)")
    parser.add_argument("--ask-clients", type=int, default=4, help="concurrent /ask clients (4)")
    parser.add_argument("--answer-cache", action="store_true",
                        help="keep the server's answer cache (default: off, every /ask is generated)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "load.json")
    args = parser.parse_args()

    if not (REPO / "index" / "catalog.json").is_file():
        print("No index in index/: run `chatbot ingest` first.", file=sys.stderr)
        return 1
    questions = dev_questions()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        server = start_server(Path(tmp), answer_cache=args.answer_cache)
        try:
            ready_s = server.wait_ready()
            print(f"server ready in {ready_s:.1f} s (pid {server.process.pid}, {len(questions)} dev questions)")
            warmup = warm_up(server.url, questions)
            print("warm-up (first request) ms: " + ", ".join(f"{k} {v:.0f}" for k, v in warmup.items()))
            phases = []
            for path, clients in (("/api/v1/retrieve", args.retrieve_clients), ("/api/v1/ask", args.ask_clients)):
                if clients <= 0:
                    continue
                phase = asyncio.run(run_phase(server, path, clients, args.seconds, questions))
                show(phase)
                phases.append(phase)
            alive = server.process.poll() is None and httpx.get(server.url + "/readyz", timeout=30).status_code == 200
        finally:
            server.stop()
            log_tail = server.log.read_text(errors="replace")[-2000:]
    if not alive:
        print(f"the server did not survive the load:\n{log_tail}", file=sys.stderr)
    result = {"commit": git_commit(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": {"cores": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
                          "python": platform.python_version(),
                          "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
              "server": {"command": "chatbot serve", "index": "index/", "rate_limit_per_minute": 0,
                         "answer_cache": args.answer_cache, "ready_s": round(ready_s, 1), "alive_at_end": alive,
                         "warmup_ms": warmup},
              "questions": f"eval/gold.jsonl dev split ({len(questions)})", "phases": phases}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0 if alive and not any(p["error_count"] for p in phases) else 1


if __name__ == "__main__":
    sys.exit(main())
