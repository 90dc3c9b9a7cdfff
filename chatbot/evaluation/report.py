"""Eval reports: report.json (the typed Report), report.md and report.html rendered from Jinja2 templates
(autoescaped HTML), comparison of two runs, the terminal summary, and the committed figures in eval/results/."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from chatbot.errors import ChatbotError
from chatbot.evaluation.models import Change, Comparison, Metrics, QuestionRecord, Report, SystemResult, metric_info

DASH = "–"
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0891b2")
BREAKDOWN = ("answer_accuracy", "answered_in_language", "citation_precision", "citation_recall", "faithfulness",
             "unanswerable_accuracy")
HEADLINE = ("answer_accuracy", "answered_in_language", "unanswerable_accuracy", "false_premise_accuracy",
            "citation_precision", "faithfulness", "evidence_in_prompt", "mean_answer_chars")
STAGES = (("rewrite", "follow-up rewrite"), ("retrieve", "retrieve"), ("first_token", "first token"),
          ("total", "total"))
JUDGED_LABEL = "judged by the LLM (a rough second opinion, not a measurement; never used by the gate)"


class ReportError(ChatbotError):
    code = "bad_report"


# ---------------------------------------------------------------- formatting


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def pct(v: Any) -> str:
    return f"{v * 100:.1f}%" if _num(v) else DASH


def ms(v: Any) -> str:
    if not _num(v):
        return DASH
    return f"{v:.0f} ms" if v < 1000 else f"{v / 1000:.2f} s"


def fmt_metric(v: Any, unit: str) -> str:
    if unit == "count":
        return str(int(v)) if _num(v) else DASH
    if unit == "chars":
        return f"{v:.0f}" if _num(v) else DASH
    return pct(v)


def md_cell(v: Any) -> str:
    """One line of text safe inside a Markdown table cell."""
    text = " ".join(str(v if v is not None else "").split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|") or DASH


def _env() -> Environment:
    env = Environment(loader=PackageLoader("chatbot.evaluation", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, ms=ms, metric=fmt_metric, cell=md_cell)
    return env


# ---------------------------------------------------------------- views shared by the templates


def _metric_rows(report: Report, systems: list[str], getter: Any) -> list[dict[str, Any]]:
    rows = []
    for name, label, unit, lower in metric_info():
        values = [getter(report.systems[s], name) for s in systems]
        if all(v is None for v in values) and name != "n":
            continue
        rows.append({"name": name, "label": label + (" (lower is better)" if lower else ""),
                     "values": [fmt_metric(v, unit) for v in values]})
    return rows


def _breakdown(report: Report, systems: list[str], field: str) -> dict[str, Any]:
    groups: list[str] = []
    for s in systems:
        groups += [g for g in getattr(report.systems[s], field) if g not in groups]
    labels = {name: label for name, label, _, _ in metric_info()}
    header = [f"{s}: {labels[m].split(' (')[0]}" for s in systems for m in BREAKDOWN]
    rows = []
    for g in groups:
        cells = []
        n = None
        for s in systems:
            m: Metrics | None = getattr(report.systems[s], field).get(g)
            n = n if n is not None else (m.n if m else None)
            cells += [pct(getattr(m, k)) if m else DASH for k in BREAKDOWN]
        rows.append({"group": g, "n": n, "cells": cells})
    chart = _bar_chart(groups, [(s, PALETTE[i % len(PALETTE)],
                                 [getattr(getattr(report.systems[s], field).get(g), "answer_accuracy", None)
                                  for g in groups]) for i, s in enumerate(systems)])
    return {"header": header, "rows": rows, "chart": chart}


def _followup(report: Report, systems: list[str]) -> list[dict[str, Any]]:
    rows = []
    for s in systems:
        summary = report.systems[s]
        if summary.followup is None:
            continue
        for lang in ["all", *summary.followup_by_language]:
            single = summary.metrics if lang == "all" else summary.by_language.get(lang)
            follow = summary.followup if lang == "all" else summary.followup_by_language[lang]
            rows.append({"system": s, "language": lang, "single_n": single.n if single else 0,
                         "single": pct(single.answer_accuracy if single else None),
                         "follow_n": follow.n if follow else 0, "follow": pct(follow.answer_accuracy if follow else None),
                         "follow_any": pct(follow.accuracy_any_language if follow else None),
                         "follow_lang": pct(follow.answered_in_language if follow else None)})
    return rows


def _bar_chart(groups: list[str], series: list[tuple[str, str, list[float | None]]]) -> dict[str, Any]:
    """Geometry of a grouped bar chart of shares, drawn by the HTML template."""
    bar_w, gap, left, top, plot_h = 30.0, 24.0, 48.0, 34.0, 170.0
    group_w = bar_w * max(1, len(series)) + gap
    width = max(left + group_w * len(groups) + 12, left + 130 * len(series) + 12)
    bars, labels = [], []
    for gi, g in enumerate(groups):
        x0 = left + gi * group_w + gap / 2
        for si, (name, color, values) in enumerate(series):
            v = values[gi]
            h = max(0.0, min(1.0, float(v))) * plot_h if v is not None and _num(v) else 0.0
            bars.append({"x": x0 + si * bar_w + 2, "y": top + plot_h - h, "w": bar_w - 4, "h": h, "color": color,
                         "label": pct(v), "tip": f"{name} · {g}: {pct(v)}"})
        labels.append({"x": x0 + bar_w * len(series) / 2, "text": g})
    ticks = [{"y": top + plot_h - t / 100 * plot_h, "text": f"{t}%"} for t in (0, 25, 50, 75, 100)]
    legend = [{"x": left + i * 130, "name": n, "color": c} for i, (n, c, _) in enumerate(series)]
    return {"width": width, "height": top + plot_h + 30, "left": left, "base": top + plot_h, "bars": bars,
            "labels": labels, "ticks": ticks, "legend": legend}


def _latency(report: Report, systems: list[str]) -> dict[str, Any]:
    rows = [{"stage": label, "cells": [ms(getattr(report.systems[s].latency_ms.get(k), p, None))
                                       for s in systems for p in ("p50", "p95")]}
            for k, label in STAGES if any(report.systems[s].latency_ms.get(k) and
                                          report.systems[s].latency_ms[k].p50 is not None for s in systems)]
    return {"header": [f"{s} {p}" for s in systems for p in ("p50", "p95")], "rows": rows}


def _verdict(r: SystemResult | None) -> str | None:
    return None if r is None else ("correct" if r.correct else "wrong")


def _changes(report: Report) -> dict[str, str]:
    if report.comparison is None:
        return {}
    out = {c.id: "regressed" for c in report.comparison.regressions}
    out.update({c.id: "improved" for c in report.comparison.improvements})
    return out


def _row_tags(q: QuestionRecord, systems: list[str], changes: dict[str, str]) -> str:
    main = q.results.get(systems[0]) if systems else None
    tags = [f"lang-{q.language}", f"kind-{q.kind}", f"split-{q.split}", _verdict(main) or "unscored"]
    if main is not None and main.refused:
        tags.append("refused")
    if q.history:
        tags.append("conversation")
    if len({_verdict(q.results.get(s)) for s in systems}) > 1:
        tags.append("differs")
    if q.id in changes:
        tags.append(changes[q.id])
    return " ".join(tags)


def _view(report: Report) -> dict[str, Any]:
    systems = [s for s in ("chatbot", "baseline") if s in report.systems]
    systems += [s for s in report.systems if s not in systems]
    run = report.run
    run_rows = [("timestamp", run.timestamp), ("command", run.command), ("gold set", run.gold_set),
                ("split", run.split), ("subset", run.subset or DASH), ("questions", str(run.n)),
                ("conversations", f"{run.n_conversations} ({run.conversations_file})" if run.n_conversations
                 else DASH),
                ("LLM", run.llm), ("git commit", run.git_commit + (" (uncommitted changes)" if run.git_dirty else "")),
                ("scored at commit", run.scored_at_commit or run.git_commit),
                ("answers from", run.answers_from or "this run"),
                ("machine", ", ".join(f"{k} {v}" for k, v in run.machine.items()))]
    splits = sorted({k for s in systems for k in report.systems[s].by_split})
    cards = []
    for i, s in enumerate(systems):
        m = report.systems[s].metrics
        follow = report.systems[s].followup
        cards.append({"system": s, "color": PALETTE[i % len(PALETTE)], "n": m.n,
                      "accuracy": pct(m.answer_accuracy),
                      "lines": [(label.split(" (")[0], fmt_metric(getattr(m, name), unit))
                                for name, label, unit, _ in metric_info() if name in HEADLINE[1:]],
                      "followup": pct(follow.answer_accuracy) if follow else None})
    return {
        "report": report, "systems": systems, "run_rows": run_rows, "cards": cards,
        "overall": _metric_rows(report, systems, lambda summary, name: getattr(summary.metrics, name)),
        "splits": {sp: _metric_rows(report, systems,
                                    lambda summary, name, sp=sp: getattr(summary.by_split.get(sp), name, None))
                   for sp in splits} if len(splits) > 1 else {},
        "followup": _followup(report, systems),
        "followup_metrics": _metric_rows(
            report, [s for s in systems if report.systems[s].followup],
            lambda summary, name: getattr(summary.followup, name)) if any(
                report.systems[s].followup for s in systems) else [],
        "by_kind": _breakdown(report, systems, "by_kind"),
        "by_language": _breakdown(report, systems, "by_language"),
        "latency": _latency(report, systems),
        "judged": [(s, report.systems[s].judged) for s in systems if report.systems[s].judged],
        "judged_label": JUDGED_LABEL,
        "changes": _changes(report),
        "row_tags": lambda q: _row_tags(q, systems, _changes(report)),
        "wrong": {s: [q for q in report.questions + report.conversations if _verdict(q.results.get(s)) == "wrong"]
                  for s in systems},
        "verdict": _verdict,
    }


# ---------------------------------------------------------------- public API


def render_markdown(report: Report) -> str:
    return _env().get_template("report.md").render(**_view(report))


def render_html(report: Report) -> str:
    return _env().get_template("report.html").render(**_view(report))


def write_reports(report: Report, out_dir: Path) -> None:
    """Write report.json, report.md and report.html into out_dir (created when missing)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(report.model_dump_json(indent=1), encoding="utf-8")
    (out_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report), encoding="utf-8")


def load_report(path: Path) -> Report:
    """A report from its folder or its report.json; a missing or foreign file is a ReportError."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        return Report.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"Cannot read the report {path}: {exc.strerror or exc}.") from exc
    except ValidationError as exc:
        raise ReportError(f"{path} is not an eval report of this version ({exc.error_count()} problems).") from exc


def compare_reports(before: Report, after: Report, system: str = "chatbot") -> Comparison:
    """Per-question regressions/improvements (ids present in both) and the overall metric deltas."""
    old = {q.id: q for q in before.questions + before.conversations}
    comparison = Comparison()
    for q in after.questions + after.conversations:
        prev = old.get(q.id)
        if prev is None:
            continue
        was, now = _verdict(prev.results.get(system)), _verdict(q.results.get(system))
        change = Change(id=q.id, question=q.question, before=was, after=now)
        if (was, now) == ("correct", "wrong"):
            comparison.regressions.append(change)
        elif (was, now) == ("wrong", "correct"):
            comparison.improvements.append(change)
    a, b = before.systems.get(system), after.systems.get(system)
    if a and b:
        for name in Metrics.model_fields:
            x, y = getattr(a.metrics, name), getattr(b.metrics, name)
            if name != "n" and _num(x) and _num(y):
                comparison.metric_deltas[name] = round(y - x, 4)
    return comparison


def render_comparison(comp: Comparison) -> str:
    """Plain-text comparison for the terminal."""
    lines = [f"Compared with {comp.previous}"] if comp.previous else []
    changed = {k: v for k, v in comp.metric_deltas.items() if abs(v) >= 0.0005}
    labels = {name: label.split(" (")[0] for name, label, _, _ in metric_info()}
    if changed:
        width = max(len(labels[k]) for k in changed)
        lines.append("Metric changes (after - before):")
        lines += [f"  {labels[k]:<{width}}  {v * 100:+.1f} pp" if k not in ("mean_answer_chars", "mean_cited_chars")
                  else f"  {labels[k]:<{width}}  {v:+.0f} chars" for k, v in changed.items()]
    else:
        lines.append("Metric changes: none")
    for title, arrow, entries in (("Regressions", "correct -> wrong", comp.regressions),
                                  ("Improvements", "wrong -> correct", comp.improvements)):
        if not entries:
            lines.append(f"{title}: none")
            continue
        width = max(len(e.id) for e in entries)
        lines.append(f"{title} ({len(entries)}, {arrow}):")
        lines += [f"  {e.id:<{width}}  {' '.join(e.question.split())[:70]}" for e in entries]
    return "\n".join(lines)


def _line(name: str, m: Metrics) -> str:
    return (f"accuracy {pct(m.answer_accuracy)} (any language {pct(m.accuracy_any_language)}, "
            f"in the question's language {pct(m.answered_in_language)}) · refusal {pct(m.unanswerable_accuracy)}"
            f" · false premise {pct(m.false_premise_accuracy)} · citations P {pct(m.citation_precision)} "
            f"R {pct(m.citation_recall)} · faithfulness {pct(m.faithfulness)} (to the cited sentence "
            f"{pct(m.faithfulness_sentence)}) · evidence in prompt "
            f"{pct(m.evidence_in_prompt)} · answer length {fmt_metric(m.mean_answer_chars, 'chars')} chars"
            f" [n={m.n}]")


def summary_lines(report: Report) -> list[str]:
    """A short terminal summary: run, metrics per system (overall, per split, per language, follow-ups),
    latency, judged figures, gate, comparison."""
    run = report.run
    lines = [f"Eval {run.timestamp} · split {run.split} · {run.n} questions, {run.n_conversations} conversations · "
             f"LLM {run.llm or DASH} · git {run.git_commit[:10] or DASH}{' (dirty)' if run.git_dirty else ''}"]
    for name, summary in report.systems.items():
        lines.append(f"{name}: {_line(name, summary.metrics)}")
        for split, m in summary.by_split.items():
            lines.append(f"  {split} split: accuracy {pct(m.answer_accuracy)} [n={m.n}]")
        for lang, m in summary.by_language.items():
            lines.append(f"  {lang}: accuracy {pct(m.answer_accuracy)}, in {lang} {pct(m.answered_in_language)}"
                         + (f", English fallback {pct(m.english_fallback)}" if lang == "zh" else "")
                         + f", refusal {pct(m.unanswerable_accuracy)}, citation P {pct(m.citation_precision)}"
                         f" [n={m.n}]")
        if summary.followup is not None:
            f = summary.followup
            lines.append(f"  follow-up accuracy {pct(f.answer_accuracy)} [n={f.n} conversations] beside single-turn "
                         f"{pct(summary.metrics.answer_accuracy)} [n={summary.metrics.n}]; "
                         + ", ".join(f"{lang} {pct(m.answer_accuracy)} [n={m.n}]"
                                     for lang, m in summary.followup_by_language.items()))
        lat = summary.latency_ms
        lines.append("  latency: " + " · ".join(
            f"{label} p50 {ms(lat[k].p50)} p95 {ms(lat[k].p95)}" for k, label in STAGES
            if k in lat and lat[k].p50 is not None))
        if summary.judged is not None:
            lines.append(f"  {JUDGED_LABEL}: correctness {pct(summary.judged.correctness)}, "
                         f"faithfulness {pct(summary.judged.faithfulness)}")
    if report.latency_ratio:
        lines.append("latency baseline/chatbot: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f}×"
                                                              for k, v in report.latency_ratio.items()))
    if report.gate is not None:
        lines.append("gate: PASSED" if report.gate.passed else "gate: FAILED: " + "; ".join(report.gate.failures))
    if report.comparison is not None:
        c = report.comparison
        lines.append(f"vs {c.previous}: {len(c.regressions)} regressions, {len(c.improvements)} improvements")
    return lines


def write_record(report: Report, results_dir: Path) -> Path:
    """The run's figures for committing: every metric, the run's commit, settings and machine, and each
    question's verdict and answer, without citation texts or per-question latency lists."""
    data = json.loads(report.model_dump_json(exclude={"questions", "conversations"}))
    for summary in data["systems"].values():
        for stage in summary.get("latency_ms", {}).values():
            stage.pop("values", None)
    keep = ("correct", "correct_any_language", "refused", "in_language", "why", "answer", "faithfulness",
            "standalone_question", "error")
    for key in ("questions", "conversations"):
        data[key] = [{"id": q.id, "split": q.split, "language": q.language, "kind": q.kind,
                      "results": {s: {k: v for k, v in r.model_dump(include=set(keep)).items() if v is not None}
                                  for s, r in q.results.items()}}
                     for q in getattr(report, key)]
    run = report.run
    day = (run.timestamp[:10] or dt.date.today().isoformat())
    name = f"{day}-{(run.git_commit or 'nogit')[:8]}{'-dirty' if run.git_dirty else ''}"
    gold = Path(run.gold_set) if run.gold_set else None
    if gold is not None and gold.name == "gold.jsonl" and gold.parent.name not in ("eval", ""):
        name += f"-{gold.parent.name}"  # another corpus's gold set, e.g. eval/corpora/other/gold.jsonl -> -other
    elif gold is not None and gold.name not in ("gold.jsonl", ""):
        name += f"-{gold.stem}"
    name += f"-{run.split}"
    name += "-baseline" if "baseline" in report.systems else ""
    name += "-subset" if run.subset else ""
    if run.answers_from and run.scored_at_commit:
        name += f"-rescored-{run.scored_at_commit[:8]}"
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path
