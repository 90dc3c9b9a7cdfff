"""`chatbot eval`: run gold questions (and multi-turn conversations) through the same ChatService stream the
chat uses, optionally the plain llama-index baseline too, score both with the same independent checks, write
eval/reports/<timestamp>/, compare with the previous run, gate, and record the figures under eval/results/."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from chatbot.config import REPO_ROOT, Settings
from chatbot.errors import ChatbotError
from chatbot.evaluation.claims import Glossary, cited_numbers
from chatbot.evaluation.gold import GoldError, load_gold, read_subset, select_split
from chatbot.evaluation.metrics import Passage, Reference, Reply, aggregate, latency, score_answer
from chatbot.evaluation.models import (
    GoldItem,
    HistoryTurn,
    QuestionRecord,
    Report,
    RunInfo,
    Span,
    SystemResult,
    SystemSummary,
)
from chatbot.evaluation.refusal import is_refusal
from chatbot.evaluation.report import (
    compare_reports,
    load_report,
    render_comparison,
    summary_lines,
    write_record,
    write_reports,
)
from chatbot.evaluation.thresholds import check_gate, load_thresholds
from chatbot.schemas import Answer, AnswerEvent, ErrorEvent, SourcesEvent, Turn

STAGES = ("rewrite", "retrieve", "first_token", "total")
ENTITIES = REPO_ROOT / "eval" / "entities.toml"


def chatbot_reply(service, question: str, *, id: str | None = None,  # noqa: ANN001 - a ChatService
                  history: list[Turn] | None = None) -> tuple[Reply, Answer | None]:
    """One question through `ask_stream`, as the chat consumes it: the sources event gives what the model was
    shown and the ranked chunks, the answer event the verified answer."""
    sources: SourcesEvent | None = None
    answer: Answer | None = None
    error = None
    try:
        for event in service.ask_stream(question, id=id, history=history):
            if isinstance(event, SourcesEvent):
                sources = event
            elif isinstance(event, AnswerEvent):
                answer = event.answer
            elif isinstance(event, ErrorEvent):
                error = f"{event.code}: {event.message}"
    except ChatbotError as exc:
        error = f"{exc.code}: {exc}"
    prompt = [Span(doc_id=s.doc_id, start=s.start, end=s.end) for s in sources.sources] if sources else []
    ranked = [Span(doc_id=c.doc_id, start=c.start, end=c.end) for c in sources.chunks] if sources else []
    if answer is None:
        return Reply(answer="", refused=False, cited=[], prompt=prompt, ranked=ranked,
                     error=error or "no answer event"), None
    return Reply(
        answer=answer.answer, refused=answer.refused,
        cited=[Passage(c.n, c.doc_id, c.start, c.end, c.text) for c in answer.citations],
        prompt=prompt, ranked=ranked, unsupported=answer.unsupported, timings_ms=answer.timings_ms,
        standalone_question=answer.standalone_question, refusal_reason=answer.refusal_reason,
        removed_why=[f"{r.text} — {r.reason}" for r in answer.removed],
    ), answer


def baseline_reply(baseline, question: str) -> Reply:  # noqa: ANN001 - a LlamaIndexBaseline
    got = baseline.ask(question)
    cited = [Passage(s.n, s.doc_id, s.start, s.end, s.text) for s in got.sources if s.n in got.cited]
    spans = [Span(doc_id=s.doc_id, start=s.start, end=s.end) for s in got.sources]
    return Reply(answer=got.answer, refused=is_refusal(got.answer), cited=cited, prompt=spans, ranked=spans,
                 timings_ms=got.timings_ms)


def _record(item: GoldItem, history: list[HistoryTurn] | None = None) -> QuestionRecord:
    return QuestionRecord(id=item.id, split=item.split, question=item.question, language=item.language,
                          kind=item.kind, expected=item.answers, gold_evidence=item.evidence, premise=item.premise,
                          history=history or [])


def _rows(items: list[GoldItem], records: list[QuestionRecord], system: str) -> list[tuple[GoldItem, SystemResult]]:
    return [(i, r.results[system]) for i, r in zip(items, records) if system in r.results]


def summarise(items: list[GoldItem], records: list[QuestionRecord], conversations: list[GoldItem],
              conv_records: list[QuestionRecord], system: str) -> SystemSummary:
    rows = _rows(items, records, system)
    summary = SystemSummary(metrics=aggregate(rows))
    for field, key in (("by_kind", lambda i: i.kind), ("by_language", lambda i: i.language),
                       ("by_split", lambda i: i.split)):
        groups: dict[str, list] = {}
        for item, result in rows:
            groups.setdefault(key(item), []).append((item, result))
        setattr(summary, field, {g: aggregate(v) for g, v in sorted(groups.items())})
    conv_rows = _rows(conversations, conv_records, system)
    if conv_rows:
        summary.followup = aggregate(conv_rows)
        by_lang: dict[str, list] = {}
        for item, result in conv_rows:
            by_lang.setdefault(item.language, []).append((item, result))
        summary.followup_by_language = {g: aggregate(v) for g, v in sorted(by_lang.items())}
    results = [r for _, r in rows] + [r for _, r in conv_rows]
    summary.latency_ms = {stage: latency([r.timings_ms[stage] for r in results if stage in r.timings_ms])
                          for stage in STAGES}
    return summary


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _machine() -> dict[str, object]:
    info: dict[str, object] = {"platform": platform.platform(), "machine": platform.machine(),
                               "python": platform.python_version(), "cpus": os.cpu_count(),
                               # the machine may be shared: latencies depend on what else ran
                               "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()]}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    try:
        import llama_cpp

        info["llama_cpp_python"] = llama_cpp.__version__
    except ImportError:
        pass
    return info


def run_info(args: argparse.Namespace, settings: Settings, gold_path: Path, conv_path: Path | None,
             n: int, n_conv: int, llm: str) -> RunInfo:
    dumped = settings.model_dump(mode="json")
    dumped.pop("hosted_api_key", None)
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    commit = _git("rev-parse", "HEAD")
    return RunInfo(
        timestamp=dt.datetime.now().isoformat(timespec="seconds"), command="chatbot eval " + " ".join(sys.argv[2:]),
        gold_set=str(gold_path), conversations_file=str(conv_path) if conv_path else None, split=args.split,
        subset=args.subset, n=n, n_conversations=n_conv, llm=llm, git_commit=commit, scored_at_commit=commit,
        git_dirty=dirty, settings=dumped, machine=_machine(),
    )


def stored_reply(system: str, r: SystemResult, ref: Reference) -> Reply:
    """A saved answer as a Reply again, for --rescore. The baseline's citations are read from its answer's
    markers over the passages it was shown; the chatbot's are its answer contract's."""
    if system == "baseline" and r.shown:
        shown = [Passage(n, s.doc_id, s.start, s.end, ref.documents.get(s.doc_id, "")[s.start : s.end])
                 for n, s in enumerate(r.shown, 1)]
        wanted = set(cited_numbers(r.answer))
        cited = [p for p in shown if p.n in wanted]
    else:
        cited = [Passage(c.n, c.doc_id, c.start, c.end, c.text) for c in r.citations]
    return Reply(answer=r.answer, refused=r.refused if system != "baseline" else is_refusal(r.answer),
                 cited=cited, prompt=r.shown, ranked=r.ranked, unsupported=r.unsupported,
                 removed_why=r.removed_why, refusal_reason=r.refusal_reason,
                 timings_ms=r.timings_ms, standalone_question=r.standalone_question, error=r.error)


def _rescored(item: GoldItem, old: QuestionRecord, ref: Reference) -> QuestionRecord:
    record = _record(item, old.history)
    for system, r in old.results.items():
        new = score_answer(item, stored_reply(system, r, ref), ref)
        if r.ranked is None and r.retrieved:  # a report from before spans were saved: keep its retrieval figures
            new.retrieved, new.hit_rank, new.evidence_in_prompt = True, r.hit_rank, r.evidence_in_prompt
        record.results[system] = new
    return record


def rescore(path: Path, settings: Settings, args: argparse.Namespace, ref: Reference) -> tuple[
        Report, list[GoldItem], list[GoldItem]]:
    """The saved report's answers scored again with the current scorer, gold set and conversations."""
    old = load_report(path)
    gold_path = Path(args.gold) if args.gold else REPO_ROOT / "eval" / "gold.jsonl"
    conv_path = Path(old.run.conversations_file) if old.run.conversations_file else None
    gold = {i.id: i for i in load_gold(gold_path, settings.corpus_dir)}
    convs = {i.id: i for i in load_gold(conv_path, settings.corpus_dir, conversations=True)} if conv_path else {}
    missing = [q.id for q in old.questions if q.id not in gold] + [q.id for q in old.conversations if q.id not in convs]
    if missing:
        raise GoldError(f"{path}: ids no longer in the gold set: {', '.join(missing)}")
    items = [gold[q.id] for q in old.questions]
    conversations = [convs[q.id] for q in old.conversations]
    report = old.model_copy(deep=True)
    report.run.timestamp = dt.datetime.now().isoformat(timespec="seconds")
    report.run.command = "chatbot eval " + " ".join(sys.argv[2:])
    report.run.answers_from = str(path)
    report.run.scored_at_commit = _git("rev-parse", "HEAD")
    report.questions = [_rescored(i, q, ref) for i, q in zip(items, old.questions)]
    report.conversations = [_rescored(i, q, ref) for i, q in zip(conversations, old.conversations)]
    report.comparison, report.gate = None, None
    return report, items, conversations


def _select(args: argparse.Namespace, items: list[GoldItem]) -> list[GoldItem]:
    if args.only_conversations:
        return []
    chosen = select_split(items, args.split)
    if args.subset:
        subset = read_subset(Path(args.subset), items)
        outside = [i.id for i in subset if args.split != "all" and i.split != args.split]
        if outside:
            raise GoldError(f"{args.subset}: not in the {args.split} split: {', '.join(outside)}")
        chosen = subset
    if args.kinds:
        chosen = [i for i in chosen if i.kind in set(args.kinds)]
    return chosen[: args.limit] if args.limit else chosen


def _progress(items: list, desc: str, args: argparse.Namespace):  # noqa: ANN202
    return tqdm(items, desc=desc, unit="q", disable=args.no_progress)


def main(args: argparse.Namespace, settings: Settings) -> int:
    if args.compare:
        comparison = compare_reports(load_report(Path(args.compare[0])), load_report(Path(args.compare[1])))
        print(render_comparison(comparison))
        return 0
    if args.rescore:
        return _rescore_main(args, settings)
    gold_path = Path(args.gold) if args.gold else REPO_ROOT / "eval" / "gold.jsonl"
    items = _select(args, load_gold(gold_path, settings.corpus_dir))
    conv_path = None
    conversations: list[GoldItem] = []
    if args.conversations:
        conv_path = Path(args.conversations)
        if not conv_path.is_absolute() and not conv_path.exists():
            conv_path = REPO_ROOT / conv_path
        conversations = select_split(load_gold(conv_path, settings.corpus_dir, conversations=True), args.split)
        if args.kinds:
            conversations = [c for c in conversations if c.kind in set(args.kinds)]
        conversations = conversations[: args.limit] if args.limit else conversations
    if not items and not conversations:
        hint = " (--only-conversations runs the conversations of --conversations FILE)" \
            if args.only_conversations and not args.conversations else ""
        print(f"No questions selected{hint}.", file=sys.stderr)
        return 2
    if args.gate:
        load_thresholds(Path(args.gate))  # a bad thresholds file fails before the models load
    reference = _reference(settings)

    from chatbot.service import ChatService

    service = ChatService.from_settings(settings)
    service.warmup()
    baseline = None
    if args.baseline:
        from chatbot.evaluation.baseline import LlamaIndexBaseline

        baseline = LlamaIndexBaseline(settings)

    records: list[QuestionRecord] = []
    for item in _progress(items, "Questions", args):
        record = _record(item)
        reply, _ = chatbot_reply(service, item.question, id=item.id)
        record.results["chatbot"] = score_answer(item, reply, reference)
        if baseline is not None:
            record.results["baseline"] = score_answer(item, baseline_reply(baseline, item.question), reference)
        records.append(record)

    conv_records = [run_conversation(service, c, reference) for c in _progress(conversations, "Conversations", args)]

    systems = ["chatbot"] + (["baseline"] if baseline is not None else [])
    info = run_info(args, settings, gold_path, conv_path, len(items), len(conversations),
                    service.model_name)
    report = Report(run=info, questions=records, conversations=conv_records,
                    baseline_setup=baseline.setup() if baseline is not None else [],
                    systems={s: summarise(items, records, conversations, conv_records, s) for s in systems})
    if args.judge:
        from chatbot.evaluation.judge import judge_run

        for name in systems:
            report.systems[name].judged = judge_run(service.llm, records, name)
    if baseline is not None:
        ours, theirs = report.systems["chatbot"].latency_ms["total"], report.systems["baseline"].latency_ms["total"]
        report.latency_ratio = {f"total_{k}": round(getattr(theirs, k) / getattr(ours, k), 2)
                                for k in ("p50", "p95") if getattr(ours, k) and getattr(theirs, k)}
    return finish(report, args)


def _rescore_main(args: argparse.Namespace, settings: Settings) -> int:
    report, items, conversations = rescore(Path(args.rescore), settings, args, _reference(settings))
    for system in report.systems:
        judged = report.systems[system].judged
        report.systems[system] = summarise(items, report.questions, conversations, report.conversations, system)
        report.systems[system].judged = judged
    return finish(report, args)


def _reference(settings: Settings) -> Reference:
    from chatbot.corpus import load_corpus

    return Reference({d.doc_id: d.text for d in load_corpus(settings.corpus_dir).documents}, Glossary.load(ENTITIES))


def finish(report: Report, args: argparse.Namespace) -> int:
    """Compare with the previous run, gate, write the report, print the summary, record."""
    thresholds = load_thresholds(Path(args.gate)) if args.gate else None
    out_root = Path(args.out) if args.out else REPO_ROOT / "eval" / "reports"
    out_root.mkdir(parents=True, exist_ok=True)
    out_dir = out_root / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    previous = _previous_report(out_root, out_dir)
    if previous is not None:
        try:
            report.comparison = compare_reports(load_report(previous), report)
            report.comparison.previous = str(previous)
        except ChatbotError:
            report.comparison = None  # an older report format: nothing to compare with
    if thresholds is not None:
        report.gate = check_gate(report.systems["chatbot"], thresholds)
    write_reports(report, out_dir)
    for line in summary_lines(report):
        print(line)
    print(f"Report: {out_dir / 'report.html'}")
    if args.record:
        print(f"Recorded: {write_record(report, REPO_ROOT / 'eval' / 'results')}")
    if report.gate is not None and not report.gate.passed:
        print("Eval gate FAILED: " + "; ".join(report.gate.failures), file=sys.stderr)
        return 1
    return 0


def run_conversation(service, conv: GoldItem, reference: Reference,  # noqa: ANN001 - a ChatService
                     ask: Callable[..., tuple[Reply, Answer | None]] = chatbot_reply) -> QuestionRecord:
    """Ask the earlier questions in order, each with the conversation so far (the assistant turns are the
    chatbot's own answers from this run), then score the last question's answer."""
    turns: list[Turn] = []
    for i, question in enumerate(conv.history, 1):
        reply, _ = ask(service, question, id=f"{conv.id}-turn{i}", history=list(turns))
        turns += [Turn(role="user", content=question), Turn(role="assistant", content=reply.answer)]
    reply, _ = ask(service, conv.question, id=conv.id, history=list(turns))
    record = _record(conv, [HistoryTurn(role=t.role, content=t.content) for t in turns])
    record.results["chatbot"] = score_answer(conv, reply, reference)
    return record


def _previous_report(out_root: Path, current: Path) -> Path | None:
    runs = sorted(p for p in out_root.iterdir() if p.is_dir() and (p / "report.json").is_file() and p != current)
    return runs[-1] if runs else None
