"""Chat latency as a user sees it: in a real browser on the served app, the time from pressing Enter to the first
streamed draft token on screen, and to the verified answer replacing the draft; p50/p95 over 13 questions
(8 English, 5 Chinese), each in a new conversation. Prints the figures and writes bench/results/chat.json.

Usage: python bench/bench_chat.py [--url http://127.0.0.1:7860/]   (without --url it starts `chatbot serve
--ingest` on a free port with a copy of corpus/, as the e2e tests do)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatbot.evaluation.metrics import percentiles  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

# Written for this benchmark from corpus/shanghai-soe-ai-plus-initiative.txt (not taken from eval/gold.jsonl).
QUESTIONS = [
    ("en", "When was the Shanghai SOE AI+ Action Initiative launched?"),
    ("en", "What does the initiative promise to do for state-owned enterprises?"),
    ("en", "What is the United Investment Company doing about language data?"),
    ("en", "What kind of computing power is Shanghai Electric supplying?"),
    ("en", "What does the Airport Group's intelligent hub improve?"),
    ("en", "What did China Taiping build around its business processes?"),
    ("en", "How does Guotai Junan Securities regard artificial intelligence?"),
    ("en", "What is SAIC Group doing with large models?"),
    ("zh", "国资国企AI+行动倡议是在什么场合发布的？"),
    ("zh", "中国太平的保险大模型每年带来多少业务价值？"),
    ("zh", "上海电气在“AI for engineering”方向做了什么？"),
    ("zh", "市国资委打造了多少个高质量产业互联网平台？"),
    ("zh", "贺青在论坛上说要发挥人工智能的哪些效应？"),
]
WARMUP = "Who jointly launched the initiative?"

# Timestamps taken in the page: Enter pressed in the question box, first draft text painted, final answer painted.
PROBE_JS = """() => {
  window.__cb = {};
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.target.closest('#cb-question')) window.__cb = { t0: performance.now() };
  }, true);
  new MutationObserver(() => {
    const s = window.__cb;
    if (s.t0 === undefined || s.final !== undefined) return;
    const last = document.querySelector('.cb-conv > .cb-turn:last-child');
    if (!last) return;
    const draft = last.querySelector('.cb-draft-text');
    if (s.first === undefined && draft && draft.textContent.trim()) s.first = performance.now();
    const done = last.querySelector('.cb-answer, .cb-refusal, .cb-error');
    if (done) {
      s.final = performance.now();
      s.kind = done.classList.contains('cb-answer') ? 'answer' : done.classList.contains('cb-refusal') ? 'refusal' : 'error';
      s.text = (done.querySelector('.cb-text') || done).textContent.trim();
    }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
}"""


def ask(page, question: str, timeout_ms: int) -> dict:  # noqa: ANN001
    page.click("#cb-new")
    page.wait_for_selector(".cb-welcome")
    page.evaluate("() => { window.__cb = {}; }")
    page.fill("#cb-question textarea", question)
    page.press("#cb-question textarea", "Enter")
    page.wait_for_function("window.__cb.final !== undefined", timeout=timeout_ms)
    s = page.evaluate("window.__cb")
    first = s["first"] - s["t0"] if s.get("first") is not None else None
    return {"first_token_ms": round(first, 1) if first is not None else None,
            "final_ms": round(s["final"] - s["t0"], 1), "outcome": s["kind"], "answer": s["text"]}


def line(name: str, p: dict) -> str:
    if p["p50"] is None:
        return f"{name:<34} (no values)"
    return f"{name:<34} p50 {p['p50'] / 1000:>5.2f} s   p95 {p['p95'] / 1000:>5.2f} s   (n={len(p['values'])})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running chat (default: start one with a copy of corpus/)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for one answer")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "chat.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    served = None
    tmp = tempfile.TemporaryDirectory()
    try:
        if args.url:
            url = args.url.rstrip("/") + "/"
        else:
            t = time.perf_counter()
            served = start_server(Path(tmp.name))
            url = served.url + "/"
            print(f"Started the chat at {url} (ingest + models) in {time.perf_counter() - t:.1f} s")
        rows = []
        load_before = os.getloadavg()[0]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
            page.goto(url)
            page.wait_for_selector(".cb-welcome", timeout=60_000)
            page.evaluate(PROBE_JS)
            warm = ask(page, WARMUP, int(args.timeout * 1000))
            print(f"warm-up (not counted): first token {warm['first_token_ms']} ms, final {warm['final_ms']} ms")
            for lang, question in QUESTIONS:
                row = {"language": lang, "question": question, **ask(page, question, int(args.timeout * 1000))}
                rows.append(row)
                first = f"{row['first_token_ms'] / 1000:5.2f} s" if row["first_token_ms"] is not None else "   --  "
                print(f"  {lang}  first token {first}   final {row['final_ms'] / 1000:5.2f} s   {row['outcome']:<7}  "
                      f"{question[:48]}")
            browser.close()
    finally:
        if served is not None:
            stop_server(served)
        tmp.cleanup()

    def figures(subset: list[dict]) -> dict:
        return {"first_token_ms": percentiles([r["first_token_ms"] for r in subset if r["first_token_ms"] is not None]),
                "final_ms": percentiles([r["final_ms"] for r in subset])}

    results = {
        "measured": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {platform.processor() or ''}",
        "what": "browser: Enter pressed -> first draft token painted / verified answer painted; new conversation per "
                "question; one warm-up question not counted",
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2),
                              "cpus": os.cpu_count()},
        "all": figures(rows), "en": figures([r for r in rows if r["language"] == "en"]),
        "zh": figures([r for r in rows if r["language"] == "zh"]),
        "outcomes": {k: sum(r["outcome"] == k for r in rows) for k in ("answer", "refusal", "error")},
        "questions": rows,
    }
    print()
    for key, name in (("all", "all"), ("en", "English"), ("zh", "Chinese")):
        print(line(f"Enter -> first token ({name})", results[key]["first_token_ms"]))
        print(line(f"Enter -> verified answer ({name})", results[key]["final_ms"]))
    print(f"Outcomes: {results['outcomes']}; 1-minute load average {load_before:.1f} before, "
          f"{results['load_average_1min']['after']:.1f} after, on {os.cpu_count()} CPUs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
