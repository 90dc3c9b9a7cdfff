"""Which answers changed between two recorded eval results (eval/results/*.json): every question and
conversation turn whose answer text or correctness differs, with both answers, then the counts.

    .venv/bin/python eval/diff_results.py eval/results/OLD.json eval/results/NEW.json [--system chatbot]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def answers(path: Path, system: str) -> dict[str, dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    items = [*data["questions"], *(data.get("conversations") or [])]  # a conversation: its last answer
    return {q["id"]: q["results"][system] for q in items if system in q.get("results", {})}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--system", default="chatbot")
    args = p.parse_args()
    old, new = answers(args.old, args.system), answers(args.new, args.system)
    same = better = worse = changed = 0
    for key in sorted(old.keys() & new.keys()):
        a, b = old[key], new[key]
        if a.get("answer") == b.get("answer") and a.get("correct") == b.get("correct"):
            same += 1
            continue
        changed += 1
        better += int(b.get("correct", False) and not a.get("correct", False))
        worse += int(a.get("correct", False) and not b.get("correct", False))
        print(f"{key}: correct {a.get('correct')} -> {b.get('correct')}")
        print(f"  old: {a.get('answer')}")
        print(f"  new: {b.get('answer')}")
    missing = sorted(old.keys() ^ new.keys())
    print(f"\n{same} the same, {changed} changed ({better} now right, {worse} now wrong)"
          + (f"; in one file only: {', '.join(missing)}" if missing else ""))


if __name__ == "__main__":
    main()
