"""`chatbot eval`: run gold questions through the same ChatService the chat uses (and optionally the
llama-index baseline), score them, write eval/reports/<timestamp>/, compare with the previous run, gate."""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from tqdm import tqdm

from chatbot.citations import Passage, verify_citations
from chatbot.config import REPO_ROOT, Settings
from chatbot.evaluation.gold import GoldItem, load_gold
from chatbot.evaluation.metrics import Span, aggregate, percentiles, score_answer
from chatbot.evaluation.report import compare_reports, load_report, render_comparison, summary_lines, write_reports
from chatbot.schemas import AnswerEvent, ErrorEvent, SourcesEvent
from chatbot.service import AnswerFailed, ChatService

GROUP_KEYS = ("kind", "language")
METRIC_NAMES = (
    "answer_accuracy", "answerable_accuracy", "unanswerable_accuracy", "refusal_precision", "refusal_recall",
    "wrong_refusal_rate", "citation_precision", "citation_recall", "faithfulness", "hit_at_1", "hit_at_3",
    "hit_at_k", "mrr",
)


def select(items: list[GoldItem], args: argparse.Namespace) -> list[GoldItem]:
    if getattr(args, "subset", None):
        wanted = [line.split("#")[0].strip() for line in Path(args.subset).read_text(encoding="utf-8").splitlines()]
        wanted = [w for w in wanted if w]
        by_id = {i.id: i for i in items}
        unknown = [w for w in wanted if w not in by_id]
        if unknown:
            raise ValueError(f"{args.subset}: unknown ids {', '.join(unknown)}")
        items = [by_id[w] for w in wanted]
    if getattr(args, "kinds", None):
        items = [i for i in items if i.raw["kind"] in set(args.kinds)]
    if getattr(args, "limit", None):
        items = items[: args.limit]
    return items


def run_chatbot(service: ChatService, item: GoldItem) -> tuple[dict, dict]:
    sources = None
    answer = None
    for event in service.ask_stream(item.raw["question"], id=item.id):
        if isinstance(event, SourcesEvent):
            sources = event
        elif isinstance(event, AnswerEvent):
            answer = event.answer
        elif isinstance(event, ErrorEvent):
            raise AnswerFailed(event)
    assert answer is not None
    cited = [Span(c.doc_id, c.start, c.end) for c in answer.citations]
    ranked = [Span(c.doc_id, c.start, c.end) for c in sources.chunks] if sources else []
    verdict = score_answer(item.raw, answer.answer, answer.refused, cited, answer.unsupported, item.spans, ranked)
    row = {
        "answer": answer.answer, "refused": answer.refused, "correct": verdict.correct, "why": verdict.why,
        "missing_facts": verdict.missing_facts,
        "citations": [{"n": c.n, "start": c.start, "end": c.end, "text": c.text, "precise": p}
                      for c, p in zip(answer.citations, verdict.precise)],
        "unsupported": answer.unsupported, "citation_precision": verdict.citation_precision,
        "citation_recall": verdict.citation_recall, "faithfulness": verdict.faithfulness,
        "hit_rank": verdict.hit_rank, "timings_ms": answer.timings_ms,
    }
    return row, {"precise": verdict.precise}


def run_baseline(baseline, service: ChatService, item: GoldItem) -> tuple[dict, dict]:  # noqa: ANN001
    got = baseline.ask(item.raw["question"])
    cited_sources = [s for s in got.sources if s.n in got.cited]
    cited = [Span(s.doc_id, s.start, s.end) for s in cited_sources]
    ranked = [Span(s.doc_id, s.start, s.end) for s in got.sources]
    # Measured with our verifier, without changing the baseline's answer.
    check = verify_citations(got.answer, [Passage(s.n, s.doc_id, s.start, s.end, s.text) for s in got.sources],
                             item.raw["question"], service.similarity,
                             min_lexical=service.settings.min_lexical_support,
                             min_similarity=service.settings.min_semantic_support)
    verdict = score_answer(item.raw, got.answer, got.refused, cited, check.unsupported if not got.refused else [],
                           item.spans, ranked)
    if not got.refused:
        kept = sum(1 for v in check.sentences if v.supported)
        total = len(check.sentences)
        verdict.faithfulness = kept / total if total else None
    row = {
        "answer": got.answer, "refused": got.refused, "correct": verdict.correct, "why": verdict.why,
        "missing_facts": verdict.missing_facts,
        "citations": [{"n": s.n, "start": s.start, "end": s.end, "text": s.text, "precise": p}
                      for s, p in zip(cited_sources, verdict.precise)],
        "unsupported": [], "citation_precision": verdict.citation_precision,
        "citation_recall": verdict.citation_recall, "faithfulness": verdict.faithfulness,
        "hit_rank": verdict.hit_rank, "timings_ms": got.timings_ms,
    }
    return row, {"precise": verdict.precise}


def summarise(questions: list[dict], system: str, extras: dict[str, dict]) -> dict:
    rows = []
    for q in questions:
        r = q[system]
        rows.append({**r, "kind": q["kind"], "language": q["language"], "has_gold": bool(q["gold_evidence"]),
                     "precise": extras[q["id"]]["precise"]})
    out: dict[str, Any] = {"metrics": aggregate(rows), "by_kind": {}, "by_language": {}, "judged": None}
    for key, field in (("by_kind", "kind"), ("by_language", "language")):
        for value in sorted({r[field] for r in rows}):
            out[key][value] = aggregate([r for r in rows if r[field] == value])
    cited_chars = [c["end"] - c["start"] for q in questions for c in q[system]["citations"]]
    out["metrics"]["mean_cited_chars"] = round(sum(cited_chars) / len(cited_chars), 1) if cited_chars else None
    out["latency_ms"] = {
        stage: percentiles([r["timings_ms"][stage] for r in rows if stage in r["timings_ms"]])
        for stage in ("retrieve", "first_token", "total")
    }
    return out


def check_gate(metrics: dict, by_language: dict, thresholds_path: Path) -> dict:
    with thresholds_path.open("rb") as f:
        config = tomllib.load(f)
    thresholds = config.get("thresholds", config)
    failures = []
    for name, minimum in thresholds.items():
        if name == "max_language_gap":
            continue
        value = metrics.get(name)
        if value is None or value < minimum:
            failures.append(f"{name} {'missing' if value is None else f'{value:.3f}'} < {minimum:.3f}")
    gap = thresholds.get("max_language_gap")
    if gap is not None and {"en", "zh"} <= set(by_language):
        en, zh = by_language["en"]["answer_accuracy"], by_language["zh"]["answer_accuracy"]
        if en is not None and zh is not None and en - zh > gap:
            failures.append(f"max_language_gap {en - zh:.3f} > {gap:.3f} (en {en:.3f}, zh {zh:.3f})")
    return {"thresholds": thresholds, "failures": failures, "passed": not failures}


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _previous_report(out_root: Path, current: Path) -> Path | None:
    runs = sorted(p for p in out_root.iterdir() if p.is_dir() and (p / "report.json").is_file() and p != current)
    return runs[-1] if runs else None


def main(args: argparse.Namespace, settings: Settings) -> int:
    if args.compare:
        comparison = compare_reports(load_report(Path(args.compare[0])), load_report(Path(args.compare[1])))
        print(render_comparison(comparison))
        return 0
    gold_path = Path(args.gold) if args.gold else REPO_ROOT / "eval" / "gold.jsonl"
    items = select(load_gold(gold_path, settings.corpus_dir), args)
    if not items:
        print("No questions selected.", file=sys.stderr)
        return 2
    service = ChatService.from_settings(settings)
    service.warmup()
    baseline = None
    if args.baseline:
        from chatbot.evaluation.baseline import LlamaIndexBaseline

        baseline = LlamaIndexBaseline(settings)

    questions: list[dict] = []
    extras: dict[str, dict] = {}
    extras_baseline: dict[str, dict] = {}
    for item in tqdm(items, desc="Evaluating", unit="q", disable=args.no_progress):
        row, extra = run_chatbot(service, item)
        q = {"id": item.id, "question": item.raw["question"], "language": item.raw["language"],
             "kind": item.raw["kind"], "expected": item.raw["answers"], "gold_evidence": item.raw["evidence"],
             "chatbot": row}
        extras[item.id] = extra
        if baseline is not None:
            q["baseline"], extras_baseline[item.id] = run_baseline(baseline, service, item)
        questions.append(q)

    systems = {"chatbot": summarise(questions, "chatbot", extras)}
    if baseline is not None:
        systems["baseline"] = summarise(questions, "baseline", extras_baseline)
    if args.judge:
        from chatbot.evaluation.judge import judge_run

        for name in systems:
            systems[name]["judged"] = judge_run(service.llm, questions, name)
    ratio = None
    if baseline is not None:
        ours, theirs = systems["chatbot"]["latency_ms"]["total"], systems["baseline"]["latency_ms"]["total"]
        ratio = {k: round(theirs[k] / ours[k], 2) for k in ("p50", "p95") if ours[k] and theirs[k]}
        ratio = {f"total_{k}": v for k, v in ratio.items()}

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_root = Path(args.out) if args.out else REPO_ROOT / "eval" / "reports"
    out_root.mkdir(parents=True, exist_ok=True)
    out_dir = out_root / stamp
    report: dict[str, Any] = {
        "run": {"timestamp": dt.datetime.now().isoformat(timespec="seconds"), "gold_set": str(gold_path),
                "n": len(questions), "llm": getattr(service.llm, "name", ""), "git": _git_rev(),
                "subset": args.subset},
        "systems": systems, "latency_ratio": ratio, "questions": questions, "comparison": None, "gate": None,
    }
    previous = _previous_report(out_root, out_dir)
    if previous is not None:
        comparison = compare_reports(load_report(previous), report)
        report["comparison"] = {"previous": str(previous), **comparison}
    if args.gate:
        report["gate"] = check_gate(systems["chatbot"]["metrics"], systems["chatbot"]["by_language"], Path(args.gate))
    write_reports(report, out_dir)
    for line in summary_lines(report):
        print(line)
    print(f"Report: {out_dir / 'report.html'}")
    if report["gate"] is not None and not report["gate"]["passed"]:
        print("Eval gate FAILED: " + "; ".join(report["gate"]["failures"]), file=sys.stderr)
        return 1
    return 0
