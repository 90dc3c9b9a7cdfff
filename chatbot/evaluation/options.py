"""Command-line options of `chatbot eval` (kept apart so the CLI can list them without heavy imports)."""

from __future__ import annotations

import argparse


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="gold", default=None, help="gold set JSONL (default: eval/gold.jsonl)")
    p.add_argument("--limit", type=int, help="only the first N questions (after --kinds/--subset)")
    p.add_argument("--kinds", nargs="+", help="only these kinds (fact number list person multihop ...)")
    p.add_argument("--subset", help="a file of question ids to run (e.g. eval/gate_subset.txt)")
    p.add_argument("--baseline", action="store_true", help="also run the plain llama-index pipeline")
    p.add_argument("--judge", action="store_true", help="add LLM-judged metrics (labelled judged)")
    p.add_argument("--gate", metavar="THRESHOLDS", help="fail (exit 1) when a metric is below its threshold")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two report folders and exit")
    p.add_argument("--out", default=None, help="reports folder (default: eval/reports)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
