"""Answer time through each real client against the native API, on one served app: the same questions asked
through `/api/v1/ask` (httpx), the openai SDK and LangChain's ChatOpenAI (both on `/v1/chat/completions`), one
after another, plain and streamed, with no answer cache (every question is generated). Prints p50/p95 per client
and its ratio to the native API, and writes bench/results/clients.json.

Usage: python bench/bench_clients.py [--questions 8] [--rounds 1]

Known flaw, not yet fixed: llama.cpp reuses the KV cache of an identical prompt, so the first client to ask a
question pays its prompt evaluation and the others do not (a run on 2e78956 gave the native API 6.08 s and every
other client about 3.0 s for the same questions). Fair figures need each client to be first equally often, or a
fresh context per question."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from bench_api import questions, start_server

REPO = Path(__file__).resolve().parent.parent
MODEL = "soe-ai-plus-qa"


def clients(url: str) -> dict[str, Callable[[str], str]]:
    from langchain_openai import ChatOpenAI
    from openai import OpenAI

    sdk = OpenAI(base_url=url + "/v1", api_key="none", timeout=600)
    chain = ChatOpenAI(base_url=url + "/v1", api_key="none", model=MODEL, timeout=600)

    def native(q: str) -> str:
        r = httpx.post(url + "/api/v1/ask", json={"question": q}, timeout=600)
        r.raise_for_status()
        return r.json()["answer"]

    def native_stream(q: str) -> str:
        with httpx.stream("POST", url + "/api/v1/ask/stream", json={"question": q}, timeout=600) as r:
            return "".join(line for line in r.iter_lines() if '"type":"answer"' in line)

    def openai_plain(q: str) -> str:
        reply = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": q}])
        return reply.choices[0].message.content or ""

    def openai_stream(q: str) -> str:
        parts = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": q}], stream=True)
        return "".join(c.choices[0].delta.content or "" for c in parts if c.choices)

    def langchain_invoke(q: str) -> str:
        return str(chain.invoke(q).content)

    def langchain_stream(q: str) -> str:
        return "".join(str(c.content) for c in chain.stream(q))

    return {"native /api/v1/ask": native, "native /api/v1/ask/stream": native_stream,
            "openai SDK": openai_plain, "openai SDK, streamed": openai_stream,
            "LangChain invoke": langchain_invoke, "LangChain stream": langchain_stream}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="times each client asks the whole list")
    args = parser.parse_args()
    qs = questions(args.questions)
    root = Path(tempfile.mkdtemp(prefix="bench-clients-"))
    server = start_server(root)
    server.wait_ready()
    try:
        runs = clients(server.url)
        httpx.post(server.url + "/api/v1/ask", json={"question": qs[0]}, timeout=600)  # warm-up, not counted
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for q in qs:  # each question through every client in turn, so drift affects them alike
                for name, ask in runs.items():
                    t = time.perf_counter()
                    text = ask(q)
                    seconds[name].append(time.perf_counter() - t)
                    assert text, f"{name} returned nothing for {q!r}"
    finally:
        server.stop()
    base = float(np.percentile(seconds["native /api/v1/ask"], 50))
    out = {name: {"n": len(v), "p50_s": round(float(np.percentile(v, 50)), 3),
                  "p95_s": round(float(np.percentile(v, 95)), 3),
                  "p50_vs_native": round(float(np.percentile(v, 50)) / base, 3)} for name, v in seconds.items()}
    for name, row in out.items():
        print(f"{name:28s} p50 {row['p50_s']:6.2f} s  p95 {row['p95_s']:6.2f} s  x{row['p50_vs_native']:.3f}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    result = {"commit": commit, "machine": platform.machine(), "cpus": __import__("os").cpu_count(),
              "questions": qs, "rounds": args.rounds, "clients": out}
    (REPO / "bench" / "results" / "clients.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
