"""Off-topic questions (eval/offtopic.txt): how many are refused before the LLM runs (the relevance floor), and how
many are refused in the end. Uses the index in index/ and the default settings. Writes bench/results/offtopic.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatbot.config import Settings  # noqa: E402
from chatbot.schemas import AnswerEvent, ErrorEvent, SourcesEvent  # noqa: E402
from chatbot.service import ChatService  # noqa: E402

LIST = REPO / "eval" / "offtopic.txt"


def questions() -> list[str]:
    lines = LIST.read_text(encoding="utf-8").splitlines()
    return [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "offtopic.json")
    args = parser.parse_args()
    service = ChatService.from_settings(Settings())
    service.warmup()
    rows = []
    for q in questions():
        t0 = time.perf_counter()
        before_llm, refused, answer = None, None, ""
        for event in service.ask_stream(q):
            if isinstance(event, SourcesEvent):
                before_llm = not event.relevant
            elif isinstance(event, AnswerEvent):
                refused, answer = event.answer.refused, event.answer.answer
            elif isinstance(event, ErrorEvent):
                refused, answer = None, f"error: {event.message}"
        rows.append({"question": q, "refused_before_llm": bool(before_llm), "refused": refused, "answer": answer,
                     "seconds": round(time.perf_counter() - t0, 2)})
        mark = "floor" if before_llm else ("llm  " if refused else "ANSWERED")
        print(f"{mark} {q} -> {answer[:90]}", flush=True)
    n = len(rows)
    summary = {"questions": n, "refused_before_llm": sum(r["refused_before_llm"] for r in rows),
               "refused": sum(bool(r["refused"]) for r in rows)}
    print(f"\nOff-topic questions: {summary['refused']}/{n} refused, {summary['refused_before_llm']}/{n} of them "
          f"before the LLM (the relevance floor).")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "commit": commit, "list": str(LIST.relative_to(REPO)),
                                    "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                                "load": os.getloadavg()},
                                    "rows": rows}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"Wrote {args.out}")
    return 0 if summary["refused"] == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
