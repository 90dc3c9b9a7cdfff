"""Command-line options of `chatbot eval` (kept apart so the CLI can list them without heavy imports)."""

from __future__ import annotations

import argparse


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="gold", default=None, help="gold set JSONL (default: eval/gold.jsonl)")
    p.add_argument("--split", choices=["dev", "test", "all"], default="all",
                   help="which gold split to run: dev (tuned on), test (held out) or all (default)")
    p.add_argument("--conversations", nargs="?", const="eval/conversations.jsonl", default=None, metavar="FILE",
                   help="also run the multi-turn conversations (default file: eval/conversations.jsonl) and "
                        "report follow-up accuracy")
    p.add_argument("--only-conversations", action="store_true",
                   help="run the conversations (--conversations) and no single questions")
    p.add_argument("--limit", type=int, help="only the first N questions (and N conversations)")
    p.add_argument("--kinds", nargs="+", help="only these kinds (fact number list person multihop ...)")
    p.add_argument("--subset", help="a file of question ids to run (e.g. eval/gate_subset.txt)")
    p.add_argument("--baseline", action="store_true", help="also run the plain llama-index pipeline")
    p.add_argument("--judge", action="store_true", help="add LLM-judged metrics (labelled as judged by the LLM)")
    p.add_argument("--gate", metavar="THRESHOLDS", help="fail (exit 1) when a metric is past its threshold")
    p.add_argument("--record", action="store_true",
                   help="also save the report's figures (no per-token data) to eval/results/<date>-<commit>-….json")
    p.add_argument("--rescore", metavar="REPORT",
                   help="score the answers of a saved report again with the current scorer and gold set (no model runs)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two report folders and exit")
    p.add_argument("--out", default=None, help="reports folder (default: eval/reports)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
