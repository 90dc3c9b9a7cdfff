"""Eval reports: write report.json/.md/.html, load and compare reports, summarise them for the terminal."""

from __future__ import annotations

import json
import math
import pathlib
from html import escape
from typing import Any

Report = dict[str, Any]

DASH = "–"
METRICS: tuple[tuple[str, str], ...] = (
    ("n", "questions"),
    ("answer_accuracy", "answer accuracy"),
    ("answerable_accuracy", "answerable accuracy"),
    ("unanswerable_accuracy", "unanswerable accuracy (refusal)"),
    ("refusal_precision", "refusal precision"),
    ("refusal_recall", "refusal recall"),
    ("wrong_refusal_rate", "wrong-refusal rate (lower is better)"),
    ("citation_precision", "citation precision"),
    ("citation_recall", "citation recall"),
    ("faithfulness", "faithfulness"),
    ("hit_at_1", "retrieval hit@1"),
    ("hit_at_3", "retrieval hit@3"),
    ("mrr", "retrieval MRR"),
    ("mean_cited_chars", "mean length of a cited span"),
)
BREAKDOWN: tuple[tuple[str, str], ...] = (
    ("answer_accuracy", "accuracy"),
    ("citation_precision", "cit. precision"),
    ("citation_recall", "cit. recall"),
    ("unanswerable_accuracy", "refusal"),
)
STAGES: tuple[tuple[str, str], ...] = (
    ("retrieve", "retrieve"),
    ("first_token", "first token"),
    ("total", "total"),
)
CHANGES: tuple[tuple[str, str], ...] = (
    ("Regressions (correct → wrong)", "regressions"),
    ("Improvements (wrong → correct)", "improvements"),
)
RUN_LABELS: dict[str, str] = {
    "timestamp": "timestamp",
    "gold_set": "gold set",
    "n": "questions",
    "llm": "LLM",
    "git": "git",
    "subset": "subset",
}
PALETTE: tuple[str, ...] = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0891b2")
JUDGED_LABEL = "judged by the LLM (not used by the gate)"


# ---------------------------------------------------------------- formatting helpers


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _pct(v: Any) -> str:
    return f"{v * 100:.1f}%" if _is_num(v) else DASH


def _ms(v: Any) -> str:
    if not _is_num(v):
        return DASH
    return f"{v:.0f} ms" if v < 1000 else f"{v / 1000:.2f} s"


def _ratio(v: Any) -> str:
    return f"{v:.2f}×" if _is_num(v) else DASH


def _metric(key: str, v: Any) -> str:
    if key == "n":
        return str(int(v)) if _is_num(v) else DASH
    if key == "mean_cited_chars":
        return f"{v:.0f} characters" if _is_num(v) else DASH
    return _pct(v)


def _plain(v: Any) -> str:
    if v is None or v == "":
        return DASH
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _threshold(v: Any) -> str:
    return _pct(v) if _is_num(v) and 0 <= v <= 1 else _plain(v)


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _short(text: Any, limit: int = 70) -> str:
    s = _one_line(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _md_text(v: Any) -> str:
    return _one_line(v).replace("<", "&lt;")


def _md_cell(v: Any) -> str:
    return _md_text(v).replace("|", "\\|")


def _expected_text(expected: list[list[str]] | None) -> str:
    if not expected:
        return "(unanswerable: should refuse)"
    return "; ".join(" / ".join(str(a) for a in fact) for fact in expected)


def _verdict(result: dict[str, Any] | None) -> str | None:
    if not result or result.get("correct") is None:
        return None
    return "correct" if result["correct"] else "wrong"


# ---------------------------------------------------------------- report accessors


def _systems(report: Report) -> list[str]:
    names = list((report.get("systems") or {}).keys())
    preferred = [s for s in ("chatbot", "baseline") if s in names]
    return preferred + [s for s in names if s not in preferred]


def _sys(report: Report, system: str) -> dict[str, Any]:
    return (report.get("systems") or {}).get(system) or {}


def _metric_keys(report: Report, systems: list[str]) -> list[tuple[str, str]]:
    known = dict(METRICS)
    extra: list[str] = []
    for s in systems:
        extra += [k for k in (_sys(report, s).get("metrics") or {}) if k not in known and k not in extra]
    return list(METRICS) + [(k, k.replace("_", " ")) for k in extra]


def _groups(report: Report, systems: list[str], field: str) -> list[str]:
    names: list[str] = []
    for s in systems:
        names += [g for g in (_sys(report, s).get(field) or {}) if g not in names]
    return names


def _group_metrics(report: Report, system: str, field: str, group: str) -> dict[str, Any]:
    return ((_sys(report, system).get(field) or {}).get(group)) or {}


def _group_n(report: Report, systems: list[str], field: str, group: str) -> Any:
    for s in systems:
        n = _group_metrics(report, s, field, group).get("n")
        if n is not None:
            return n
    return None


def _latency(report: Report, system: str, stage: str) -> dict[str, Any]:
    return ((_sys(report, system).get("latency_ms") or {}).get(stage)) or {}


def _judged_systems(report: Report, systems: list[str]) -> list[str]:
    return [s for s in systems if _sys(report, s).get("judged")]


def _judged_keys(report: Report, systems: list[str]) -> list[str]:
    keys: list[str] = []
    for s in systems:
        judged = _sys(report, s)["judged"]
        keys += [k for k, v in judged.items() if k != "note" and k not in keys and _is_num(v)]
    return keys


def _wrong(report: Report, system: str) -> list[dict[str, Any]]:
    return [q for q in report.get("questions") or [] if _verdict(q.get(system)) == "wrong"]


# ---------------------------------------------------------------- public API


def write_reports(report: Report, out_dir: pathlib.Path) -> None:
    """Write report.json, report.md and report.html into out_dir (created when missing)."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    (out_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report), encoding="utf-8")


def load_report(path: pathlib.Path) -> Report:
    """Load a report from a report folder or a report.json path."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "report.json"
    return json.loads(path.read_text(encoding="utf-8"))


def compare_reports(before: Report, after: Report, system: str = "chatbot") -> dict[str, Any]:
    """Per-question regressions/improvements (ids present in both) and overall metric deltas."""
    old = {q.get("id"): q for q in before.get("questions") or []}
    regressions: list[dict[str, Any]] = []
    improvements: list[dict[str, Any]] = []
    for q in after.get("questions") or []:
        prev = old.get(q.get("id"))
        if prev is None:
            continue
        was, now = _verdict(prev.get(system)), _verdict(q.get(system))
        entry = {"id": q.get("id"), "question": q.get("question", ""), "before": was, "after": now}
        if (was, now) == ("correct", "wrong"):
            regressions.append(entry)
        elif (was, now) == ("wrong", "correct"):
            improvements.append(entry)
    deltas = _deltas(before, after, system)
    return {"regressions": regressions, "improvements": improvements, "metric_deltas": deltas}


def _deltas(before: Report, after: Report, system: str) -> dict[str, float]:
    a = _sys(before, system).get("metrics") or {}
    b = _sys(after, system).get("metrics") or {}
    return {k: b[k] - a[k] for k in b if k != "n" and k in a and _is_num(a[k]) and _is_num(b[k])}


def render_comparison(comp: dict[str, Any]) -> str:
    """Plain-text rendering of a comparison for the terminal."""
    lines: list[str] = []
    if comp.get("previous"):
        lines.append(f"Compared with {comp['previous']}")
    if "metric_deltas" in comp:
        lines += _delta_lines(comp["metric_deltas"] or {})
    lines += _change_lines("Regressions", "correct -> wrong", comp.get("regressions") or [])
    lines += _change_lines("Improvements", "wrong -> correct", comp.get("improvements") or [])
    return "\n".join(lines)


def _delta_lines(deltas: dict[str, float]) -> list[str]:
    changed = {k: v for k, v in deltas.items() if abs(v) >= 0.0005}
    if not changed:
        return ["Metric changes: none"]
    labels = dict(METRICS)
    width = max(len(labels.get(k, k)) for k in changed)
    return ["Metric changes (after - before):"] + [
        f"  {labels.get(k, k):<{width}}  {v * 100:+.1f} pp" for k, v in changed.items()
    ]


def _change_lines(title: str, arrow: str, entries: list[dict[str, Any]]) -> list[str]:
    if not entries:
        return [f"{title}: none"]
    width = max(len(str(e.get("id"))) for e in entries)
    return [f"{title} ({len(entries)}, {arrow}):"] + [
        f"  {str(e.get('id')):<{width}}  {_short(e.get('question'))}" for e in entries
    ]


def summary_lines(report: Report) -> list[str]:
    """A short terminal summary: run, overall metrics and latency per system, judged, gate, comparison."""
    run = report.get("run") or {}
    lines = [f"Eval {_plain(run.get('timestamp'))} · {_plain(run.get('n'))} questions · "
             f"LLM {_plain(run.get('llm'))} · git {_plain(run.get('git'))}"]
    for s in _systems(report):
        lines += [_summary_metrics(report, s), _summary_latency(report, s)]
        judged = _sys(report, s).get("judged")
        if judged:
            vals = ", ".join(f"{k} {_pct(v)}" for k, v in judged.items() if _is_num(v))
            lines.append(f"{s}, {JUDGED_LABEL}: {vals}")
    ratio = report.get("latency_ratio")
    if ratio:
        parts = ", ".join(f"{k.replace('_', ' ')} {_ratio(v)}" for k, v in ratio.items())
        lines.append(f"latency baseline/chatbot: {parts}")
    lines += _summary_gate(report) + _summary_comparison(report)
    return lines


def _summary_metrics(report: Report, system: str) -> str:
    m = _sys(report, system).get("metrics") or {}
    return (f"{system}: accuracy {_pct(m.get('answer_accuracy'))} "
            f"(answerable {_pct(m.get('answerable_accuracy'))}, "
            f"unanswerable {_pct(m.get('unanswerable_accuracy'))})"
            f" · citations P {_pct(m.get('citation_precision'))} R {_pct(m.get('citation_recall'))}"
            f" · faithfulness {_pct(m.get('faithfulness'))}"
            f" · hit@1 {_pct(m.get('hit_at_1'))} hit@3 {_pct(m.get('hit_at_3'))} MRR {_pct(m.get('mrr'))}")


def _summary_latency(report: Report, system: str) -> str:
    parts = [f"{label} p50 {_ms(_latency(report, system, k).get('p50'))} "
             f"p95 {_ms(_latency(report, system, k).get('p95'))}" for k, label in STAGES]
    return f"{system} latency: " + " · ".join(parts)


def _summary_gate(report: Report) -> list[str]:
    gate = report.get("gate")
    if not gate:
        return []
    if gate.get("passed"):
        return ["gate: PASSED"]
    return ["gate: FAILED: " + "; ".join(str(f) for f in gate.get("failures") or [])]


def _summary_comparison(report: Report) -> list[str]:
    comp = report.get("comparison")
    if not comp:
        return []
    regressions = _count(len(comp.get("regressions") or []), "regression")
    improvements = _count(len(comp.get("improvements") or []), "improvement")
    return [f"vs {_plain(comp.get('previous'))}: {regressions}, {improvements}"]


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# ---------------------------------------------------------------- markdown


def render_markdown(report: Report) -> str:
    """The report as Markdown."""
    systems = _systems(report)
    sections = [
        f"# Eval report: {_plain((report.get('run') or {}).get('timestamp'))}",
        _md_run(report),
        "## Overall metrics\n\n" + _md_overall(report, systems),
        _md_breakdown(report, systems, "by_kind", "kind"),
        _md_breakdown(report, systems, "by_language", "language"),
        _md_latency(report, systems),
        _md_judged(report, systems),
        _md_comparison(report),
        _md_gate(report),
        _md_wrong(report, systems),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _run_items(report: Report) -> list[tuple[str, str]]:
    run = report.get("run") or {}
    keys = list(RUN_LABELS) + [k for k in run if k not in RUN_LABELS]
    return [(RUN_LABELS.get(k) or k, _plain(run.get(k))) for k in keys]


def _md_run(report: Report) -> str:
    return "## Run\n\n" + "\n".join(f"- **{label}**: {value}" for label, value in _run_items(report))


def _md_overall(report: Report, systems: list[str]) -> str:
    rows = [[label] + [_metric(k, (_sys(report, s).get("metrics") or {}).get(k)) for s in systems]
            for k, label in _metric_keys(report, systems)]
    return _md_table(["metric"] + systems, rows)


def _md_breakdown(report: Report, systems: list[str], field: str, title: str) -> str:
    groups = _groups(report, systems, field)
    if not groups:
        return ""
    header = [title, "n"] + [f"{s} {label}" for s in systems for _, label in BREAKDOWN]
    rows = [[g, _metric("n", _group_n(report, systems, field, g))]
            + [_pct(_group_metrics(report, s, field, g).get(k)) for s in systems for k, _ in BREAKDOWN]
            for g in groups]
    return f"## By {title}\n\n" + _md_table(header, rows)


def _md_latency(report: Report, systems: list[str]) -> str:
    header = ["stage"] + [f"{s} {p}" for s in systems for p in ("p50", "p95")]
    rows = [[label] + [_ms(_latency(report, s, k).get(p)) for s in systems for p in ("p50", "p95")]
            for k, label in STAGES]
    text = "## Latency\n\n" + _md_table(header, rows)
    ratio = report.get("latency_ratio")
    if ratio:
        parts = ", ".join(f"{k.replace('_', ' ')} {_ratio(v)}" for k, v in ratio.items())
        text += f"\n\nbaseline / chatbot: {parts}"
    return text


def _md_judged(report: Report, systems: list[str]) -> str:
    judged = _judged_systems(report, systems)
    if not judged:
        return ""
    rows = [[k.replace("_", " ")] + [_pct(_sys(report, s)["judged"].get(k)) for s in judged]
            for k in _judged_keys(report, judged)]
    notes = "\n".join(f"- {s}: {_sys(report, s)['judged']['note']}" for s in judged
                      if _sys(report, s)["judged"].get("note"))
    parts = [f"## Judged metrics: {JUDGED_LABEL}", _md_table(["metric"] + judged, rows), notes]
    return "\n\n".join(p for p in parts if p)


def _md_comparison(report: Report) -> str:
    comp = report.get("comparison")
    if not comp:
        return ""
    parts = [f"## Comparison with {_plain(comp.get('previous'))}"]
    for title, key in CHANGES:
        entries = comp.get(key) or []
        body = "\n".join(f"- **{e.get('id')}**: {_md_text(e.get('question'))}" for e in entries) or "- none"
        parts.append(f"### {title}: {len(entries)}\n\n{body}")
    return "\n\n".join(parts)


def _md_gate(report: Report) -> str:
    gate = report.get("gate")
    if not gate:
        return ""
    metrics = _sys(report, "chatbot").get("metrics") or {}
    rows = [[k, _threshold(t), _threshold(metrics.get(k))] for k, t in (gate.get("thresholds") or {}).items()]
    failures = "\n".join(f"- {f}" for f in gate.get("failures") or []) or "- none"
    verdict = "PASSED" if gate.get("passed") else "FAILED"
    table = _md_table(["metric", "threshold", "chatbot"], rows)
    return f"## Gate: {verdict}\n\n{table}\n\nFailures:\n\n{failures}"


def _md_wrong(report: Report, systems: list[str]) -> str:
    parts = ["## Wrong answers"]
    total = len(report.get("questions") or [])
    for s in systems:
        wrong = _wrong(report, s)
        items = "\n".join(_md_wrong_item(q, s) for q in wrong) or "None: every scored answer was correct."
        parts.append(f"### {s}: {len(wrong)} of {total} wrong\n\n{items}")
    return "\n\n".join(parts)


def _md_wrong_item(q: dict[str, Any], system: str) -> str:
    r = q.get(system) or {}
    answer = ("(refused) " if r.get("refused") else "") + _md_text(r.get("answer"))
    return "\n".join([
        f"- **{q.get('id')}** ({q.get('language', DASH)}, {q.get('kind', DASH)}): "
        f"{_md_text(q.get('question'))}",
        f"  - expected: {_md_text(_expected_text(q.get('expected')))}",
        f"  - answer: {answer or DASH}",
        f"  - why: {_md_text(r.get('why')) or DASH}",
    ])


# ---------------------------------------------------------------- SVG charts


def _f(x: float) -> str:
    return f"{x:.1f}"


def _svg_open(width: float, height: float, title: str) -> list[str]:
    w, h = _f(width), _f(height)
    return [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]


def _svg_text(x: float, y: float, text: str, anchor: str = "middle", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{c}>{escape(text)}</text>'


def _svg_legend(series: list[tuple[str, str]], x: float, y: float) -> list[str]:
    out: list[str] = []
    for i, (name, color) in enumerate(series):
        lx = x + i * 120
        out.append(f'<rect x="{_f(lx)}" y="{_f(y - 9)}" width="10" height="10" fill="{color}"/>')
        out.append(_svg_text(lx + 14, y, name, "start"))
    return out


def _svg_y_grid(left: float, top: float, plot_h: float, right: float) -> list[str]:
    out: list[str] = []
    for tick in (0, 25, 50, 75, 100):
        y = top + plot_h - tick / 100 * plot_h
        out.append(f'<line x1="{_f(left)}" y1="{_f(y)}" x2="{_f(right)}" y2="{_f(y)}" class="grid"/>')
        out.append(_svg_text(left - 6, y + 4, f"{tick}%", "end", "axis"))
    return out


def _svg_bar(x: float, w: float, top: float, plot_h: float, value: Any, color: str, tip: str) -> list[str]:
    base = top + plot_h
    if not _is_num(value):
        return [_svg_text(x + w / 2, base - 4, DASH, cls="val")]
    h = max(0.0, min(1.0, float(value))) * plot_h
    return [f'<rect x="{_f(x)}" y="{_f(base - h)}" width="{_f(w)}" height="{_f(h)}" fill="{color}">'
            f"<title>{escape(tip)}: {_pct(value)}</title></rect>",
            _svg_text(x + w / 2, base - h - 3, _pct(value), cls="val")]


def svg_grouped_bars(
    title: str, groups: list[tuple[str, str]], series: list[tuple[str, str, list[Any]]]
) -> str:
    """Grouped bar chart of shares: a group per (label, sublabel), a bar per (name, colour, values)."""
    bar_w, gap, left, top, plot_h = 34.0, 26.0, 48.0, 40.0, 180.0
    group_w = bar_w * max(1, len(series)) + gap
    width = max(left + group_w * len(groups) + 12, left + 130 * len(series) + 12)
    out = _svg_open(width, top + plot_h + 44, title)
    out += _svg_y_grid(left, top, plot_h, width - 8)
    out += _svg_legend([(n, c) for n, c, _ in series], left, 16)
    for gi, (label, sub) in enumerate(groups):
        x0 = left + gi * group_w + gap / 2
        for si, (name, color, values) in enumerate(series):
            tip = f"{name} · {label}"
            out += _svg_bar(x0 + si * bar_w + 2, bar_w - 4, top, plot_h, values[gi], color, tip)
        mid = x0 + bar_w * len(series) / 2
        out += [_svg_text(mid, top + plot_h + 16, label), _svg_text(mid, top + plot_h + 30, sub, cls="axis")]
    return "\n".join(out + ["</svg>"])


def _nice_step(span: float, target: int = 5) -> float:
    if span <= 0:
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if raw <= m * mag)


def _tick_ms(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:g} ms" if v < 1000 else f"{v / 1000:g} s"


def _latency_rows(report: Report, systems: list[str]) -> list[tuple[str, str, list[float], Any, Any]]:
    rows = []
    for i, s in enumerate(systems):
        lat = _latency(report, s, "total")
        values = [float(v) for v in lat.get("values") or [] if _is_num(v)]
        rows.append((s, PALETTE[i % len(PALETTE)], values, lat.get("p50"), lat.get("p95")))
    return rows


def _svg_marker(x: float, y0: float, y1: float, label: str, dashed: bool, anchor: str) -> list[str]:
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    cls = "p95" if dashed else "p50"
    tx = x - 4 if anchor == "end" else x + 4
    return [f'<line x1="{_f(x)}" y1="{_f(y0)}" x2="{_f(x)}" y2="{_f(y1)}" class="{cls}"{dash}/>',
            _svg_text(tx, y0 + 9, label, anchor, cls)]


def _svg_strip(row: tuple[str, str, list[float], Any, Any], y0: float, row_h: float, scale: Any) -> list[str]:
    name, color, values, p50, p95 = row
    cy = y0 + row_h / 2
    out = [_svg_text(scale(0) - 8, cy + 4, name, "end")]
    for i, v in enumerate(values):
        jitter = ((i * 7919) % 21 - 10) * row_h * 0.02
        out.append(f'<circle cx="{_f(scale(v))}" cy="{_f(cy + jitter)}" r="3.2" fill="{color}" '
                   f'fill-opacity="0.5"><title>{escape(_ms(v))}</title></circle>')
    if _is_num(p50):
        out += _svg_marker(scale(p50), y0 + 4, y0 + row_h - 4, f"p50 {_ms(p50)}", False, "end")
    if _is_num(p95):
        out += _svg_marker(scale(p95), y0 + 4, y0 + row_h - 4, f"p95 {_ms(p95)}", True, "start")
    return out


def svg_latency(report: Report, systems: list[str]) -> str:
    """A strip plot of total latency per system (one dot per question) with p50 (solid) and p95 (dashed)."""
    rows = _latency_rows(report, systems)
    peak = max([v for r in rows for v in r[2]] + [p for r in rows for p in r[3:] if _is_num(p)], default=0.0)
    if peak <= 0:
        return '<p class="muted">No latency values recorded.</p>'
    step = _nice_step(peak)
    xmax = step * math.ceil(peak / step)
    left, plot_w, top, row_h = 96.0, 640.0, 10.0, 76.0
    height = top + row_h * len(rows) + 28

    def scale(v: float) -> float:
        return left + v / xmax * plot_w

    out = _svg_open(left + plot_w + 24, height, "Total latency per question")
    for k in range(int(round(xmax / step)) + 1):
        x = scale(k * step)
        out.append(f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(height - 24)}" class="grid"/>')
        out.append(_svg_text(x, height - 8, _tick_ms(k * step), cls="axis"))
    for i, row in enumerate(rows):
        out += _svg_strip(row, top + i * row_h, row_h, scale)
    return "\n".join(out + ["</svg>"])


# ---------------------------------------------------------------- HTML

CSS = """
:root{--ok:#15803d;--ok-bg:#dcfce7;--bad:#b91c1c;--bad-bg:#fee2e2;--muted:#6b7280;--line:#e5e7eb}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1500px;padding:24px;color:#111827;background:#fff;line-height:1.45;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",
"Hiragino Sans GB",sans-serif}
h1{margin:0 0 8px}h2{margin-top:36px;border-bottom:1px solid var(--line);padding-bottom:4px}
.muted{color:var(--muted)}
dl.run{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.run dt{color:var(--muted)}dl.run dd{margin:0;font-family:ui-monospace,monospace}
.cards{display:flex;flex-wrap:wrap;gap:16px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:10px;padding:12px 16px;min-width:240px;border-top:4px solid}
.card .big{font-size:2em;font-weight:700}.card .small{color:var(--muted);font-size:.9em}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid var(--line);padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f9fafb}
table.num td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
table.questions{width:100%;font-size:.92em}
table.questions thead th{position:sticky;top:0;z-index:1}
.answer{white-space:pre-wrap;min-width:260px}
.q{min-width:200px}
.verdict{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600}
.verdict.correct{color:var(--ok);background:var(--ok-bg)}
.verdict.wrong{color:var(--bad);background:var(--bad-bg)}
.verdict.none{color:var(--muted);background:#f3f4f6}
.badge{display:inline-block;padding:0 6px;border-radius:6px;font-size:.8em;background:#fef3c7;color:#92400e}
.badge.regressed{background:var(--bad-bg);color:var(--bad)}
.badge.improved{background:var(--ok-bg);color:var(--ok)}
.why{margin-top:4px}.stats{color:var(--muted);font-size:.85em;margin-top:4px}
details{margin-top:4px}summary{cursor:pointer;color:#1d4ed8}
blockquote{margin:4px 0 8px;padding:4px 8px;border-left:3px solid var(--line);white-space:pre-wrap;
background:#f9fafb}
ol.cites,ul.facts{margin:4px 0;padding-left:20px}
.banner{padding:10px 14px;border-radius:8px;font-weight:700;margin:12px 0}
.banner.pass{background:var(--ok-bg);color:var(--ok)}.banner.fail{background:var(--bad-bg);color:var(--bad)}
svg.chart{max-width:100%;height:auto;font-size:12px;display:block;margin:8px 0}
svg .grid{stroke:#e5e7eb}svg .axis{fill:var(--muted);font-size:11px}svg .val{font-size:10px;fill:#374151}
svg .p50{stroke:#111827;stroke-width:2;fill:#111827;font-size:11px}
svg .p95{stroke:#b91c1c;stroke-width:2;fill:#b91c1c;font-size:11px}
svg text.p50,svg text.p95{stroke:#fff;stroke-width:3px;paint-order:stroke}
.filters{display:flex;gap:8px;flex-wrap:wrap;align-items:center;margin:8px 0}
.filters input{min-width:260px;padding:4px}
"""

JS = """
(function(){
 var box=document.getElementById('filters');box.hidden=false;
 var rows=Array.prototype.slice.call(document.querySelectorAll('table.questions tbody tr'));
 var q=document.getElementById('search'),count=document.getElementById('count');
 var sels=Array.prototype.slice.call(box.querySelectorAll('select'));
 function apply(){
  var t=q.value.toLowerCase(),need=sels.map(function(s){return s.value}).filter(Boolean),shown=0;
  rows.forEach(function(r){
   var tags=r.getAttribute('data-tags').split(' ');
   var ok=need.every(function(n){return tags.indexOf(n)>=0})&&(!t||r.textContent.toLowerCase().indexOf(t)>=0);
   r.hidden=!ok;if(ok)shown++;
  });
  count.textContent=shown+' of '+rows.length+' questions';
 }
 q.addEventListener('input',apply);sels.forEach(function(s){s.addEventListener('change',apply)});apply();
})();
"""


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, a little optional JS for filtering)."""
    systems = _systems(report)
    title = f"Eval report: {_plain((report.get('run') or {}).get('timestamp'))}"
    body = [
        f"<h1>{escape(title)}</h1>",
        _html_run(report),
        _html_gate(report),
        _html_overall(report, systems),
        _html_breakdown(report, systems, "by_kind", "kind"),
        _html_breakdown(report, systems, "by_language", "language"),
        _html_latency(report, systems),
        _html_judged(report, systems),
        _html_comparison(report),
        _html_questions(report, systems),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(b for b in body if b)
            + f"\n<script>{JS}</script>\n</body>\n</html>\n")


def _html_table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table from already-escaped header and cell HTML."""
    c = f' class="{cls}"' if cls else ""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_run(report: Report) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in _run_items(report))
    return f'<dl class="run">{items}</dl>'


def _html_gate(report: Report) -> str:
    gate = report.get("gate")
    if not gate:
        return ""
    passed = bool(gate.get("passed"))
    metrics = _sys(report, "chatbot").get("metrics") or {}
    thresholds = (gate.get("thresholds") or {}).items()
    rows = [[escape(k), escape(_threshold(t)), escape(_threshold(metrics.get(k)))] for k, t in thresholds]
    failures = "".join(f"<li>{escape(str(f))}</li>" for f in gate.get("failures") or [])
    cls, word = ("pass", "PASSED") if passed else ("fail", "FAILED")
    banner = f'<div class="banner {cls}">Gate {word}</div>'
    return ("<h2>Gate</h2>" + banner + _html_table(["metric", "threshold", "chatbot"], rows, "num")
            + (f"<ul>{failures}</ul>" if failures else ""))


def _html_card(report: Report, system: str, color: str) -> str:
    m = _sys(report, system).get("metrics") or {}
    return (f'<div class="card" style="border-top-color:{color}"><div><b>{escape(system)}</b> '
            f'<span class="muted">n={escape(_metric("n", m.get("n")))}</span></div>'
            f'<div class="big">{_pct(m.get("answer_accuracy"))}</div><div class="small">answer accuracy</div>'
            f'<div class="small">citations P {_pct(m.get("citation_precision"))}'
            f' · R {_pct(m.get("citation_recall"))}'
            f' · faithfulness {_pct(m.get("faithfulness"))}</div>'
            f'<div class="small">hit@1 {_pct(m.get("hit_at_1"))} · hit@3 {_pct(m.get("hit_at_3"))}'
            f' · MRR {_pct(m.get("mrr"))}</div></div>')


def _html_overall(report: Report, systems: list[str]) -> str:
    cards = "".join(_html_card(report, s, PALETTE[i % len(PALETTE)]) for i, s in enumerate(systems))
    rows = [[escape(label)] + [_metric(k, (_sys(report, s).get("metrics") or {}).get(k)) for s in systems]
            for k, label in _metric_keys(report, systems)]
    table = _html_table(["metric"] + [escape(s) for s in systems], rows, "num")
    return f'<h2>Overall metrics</h2><div class="cards">{cards}</div>{table}'


def _html_breakdown(report: Report, systems: list[str], field: str, title: str) -> str:
    groups = _groups(report, systems, field)
    if not groups:
        return ""
    labels = [(g, f"n={_metric('n', _group_n(report, systems, field, g))}") for g in groups]
    series = [(s, PALETTE[i % len(PALETTE)], [_group_metrics(report, s, field, g).get("answer_accuracy")
                                               for g in groups])
              for i, s in enumerate(systems)]
    chart = svg_grouped_bars(f"Answer accuracy by {title}", labels, series)
    header = [escape(title), "n"] + [f"{escape(s)} {label}" for s in systems for _, label in BREAKDOWN]
    rows = [[escape(g), escape(_metric("n", _group_n(report, systems, field, g)))]
            + [_pct(_group_metrics(report, s, field, g).get(k)) for s in systems for k, _ in BREAKDOWN]
            for g in groups]
    return f"<h2>Answer accuracy by {escape(title)}</h2>{chart}{_html_table(header, rows, 'num')}"


def _html_latency(report: Report, systems: list[str]) -> str:
    header = ["stage"] + [f"{escape(s)} {p}" for s in systems for p in ("p50", "p95")]
    rows = [[escape(label)] + [_ms(_latency(report, s, k).get(p)) for s in systems for p in ("p50", "p95")]
            for k, label in STAGES]
    ratio = report.get("latency_ratio")
    ratio_html = ""
    if ratio:
        parts = ", ".join(f"{escape(k.replace('_', ' '))} {_ratio(v)}" for k, v in ratio.items())
        ratio_html = f"<p>baseline / chatbot: <b>{parts}</b></p>"
    note = ('<p class="muted">Each dot is one question\'s total latency; '
            "solid line = p50, dashed red line = p95.</p>")
    table = _html_table(header, rows, "num")
    return f"<h2>Latency</h2>{svg_latency(report, systems)}{note}{table}{ratio_html}"


def _html_judged(report: Report, systems: list[str]) -> str:
    judged = _judged_systems(report, systems)
    if not judged:
        return ""
    rows = [[escape(k.replace("_", " "))] + [_pct(_sys(report, s)["judged"].get(k)) for s in judged]
            for k in _judged_keys(report, judged)]
    notes = "".join(f'<p class="muted">{escape(s)}: {escape(str(_sys(report, s)["judged"]["note"]))}</p>'
                    for s in judged if _sys(report, s)["judged"].get("note"))
    return (f"<h2>Judged metrics: {escape(JUDGED_LABEL)}</h2>"
            + _html_table(["metric"] + [escape(s) for s in judged], rows, "num") + notes)


def _html_comparison(report: Report) -> str:
    comp = report.get("comparison")
    if not comp:
        return ""
    parts = [f"<h2>Comparison with {escape(_plain(comp.get('previous')))}</h2>"]
    for title, key in CHANGES:
        entries = comp.get(key) or []
        rows = [[escape(str(e.get("id"))), escape(str(e.get("question", ""))),
                 f"{escape(str(e.get('before')))} → {escape(str(e.get('after')))}"] for e in entries]
        table = _html_table(["id", "question", "change"], rows) if rows else '<p class="muted">none</p>'
        parts.append(f"<h3>{escape(title)}: {len(entries)}</h3>{table}")
    return "".join(parts)


# ---------------------------------------------------------------- HTML per-question table


def _html_expected(q: dict[str, Any]) -> str:
    expected = q.get("expected") or []
    if expected:
        facts = "".join(f"<li>{escape(' / '.join(str(a) for a in fact))}</li>" for fact in expected)
        html = f'<ul class="facts">{facts}</ul>'
    else:
        html = "<em>unanswerable: should refuse</em>"
    evidence = "".join(f"<blockquote>{escape(str(e))}</blockquote>" for e in q.get("gold_evidence") or [])
    return html + (f"<details><summary>gold evidence</summary>{evidence}</details>" if evidence else "")


def _html_citations(r: dict[str, Any]) -> str:
    cites = r.get("citations") or []
    if not cites:
        return ""
    items = "".join(
        f"<li><b>[{escape(str(c.get('n')))}]</b> "
        f"chars {escape(str(c.get('start')))}–{escape(str(c.get('end')))}"
        + (" · precise" if c.get("precise") else " · not precise" if c.get("precise") is False else "")
        + f"<blockquote>{escape(str(c.get('text', '')))}</blockquote></li>"
        for c in cites)
    return f'<details><summary>{len(cites)} citation(s)</summary><ol class="cites">{items}</ol></details>'


def _html_unsupported(r: dict[str, Any]) -> str:
    removed = r.get("unsupported") or []
    if not removed:
        return ""
    items = "".join(f"<li>{escape(str(s))}</li>" for s in removed)
    summary = f"{len(removed)} unsupported sentence(s) removed"
    return f"<details><summary>{summary}</summary><ul>{items}</ul></details>"


def _html_answer(r: dict[str, Any] | None) -> str:
    if not r:
        return '<span class="muted">–</span>'
    badge = '<span class="badge">refused</span> ' if r.get("refused") else ""
    answer = f'<div class="answer">{badge}{escape(str(r.get("answer") or ""))}</div>'
    return answer + _html_citations(r) + _html_unsupported(r)


def _html_stats(r: dict[str, Any]) -> str:
    timings = r.get("timings_ms") or {}
    hit = r.get("hit_rank")
    rank = escape(DASH if hit is None else str(hit))
    return (f'<div class="stats">cit. P {_pct(r.get("citation_precision"))}'
            f' · R {_pct(r.get("citation_recall"))} · faithful {_pct(r.get("faithfulness"))}'
            f' · hit rank {rank} · {_ms(timings.get("total"))}</div>')


def _html_verdict(r: dict[str, Any] | None) -> str:
    if not r:
        return '<span class="muted">–</span>'
    v = _verdict(r)
    chip = f'<span class="verdict {v or "none"}">{v or "not scored"}</span>'
    why = f'<div class="why">{escape(str(r.get("why") or ""))}</div>'
    missing = r.get("missing_facts") or []
    miss = ""
    if missing:
        texts = [" / ".join(str(a) for a in m) if isinstance(m, list) else str(m) for m in missing]
        miss = f'<div class="why">missing: {escape("; ".join(texts))}</div>'
    return chip + why + miss + _html_stats(r)


def _row_tags(q: dict[str, Any], systems: list[str], changes: dict[str, str]) -> str:
    main = q.get(systems[0]) if systems else None
    tags = [f"lang-{q.get('language')}", f"kind-{q.get('kind')}", _verdict(main) or "unscored"]
    if main and main.get("refused"):
        tags.append("refused")
    if len({_verdict(q.get(s)) for s in systems}) > 1:
        tags.append("differs")
    if q.get("id") in changes:
        tags.append(changes[q["id"]])
    return " ".join(t.replace(" ", "_") for t in tags)


def _changes(report: Report) -> dict[str, str]:
    comp = report.get("comparison") or {}
    out = {e.get("id"): "regressed" for e in comp.get("regressions") or []}
    out.update({e.get("id"): "improved" for e in comp.get("improvements") or []})
    return out


def _html_question_row(q: dict[str, Any], systems: list[str], changes: dict[str, str]) -> str:
    qid = str(q.get("id", ""))
    change = changes.get(qid)
    badge = f' <span class="badge {change}">{change}</span>' if change else ""
    cells = [f"<b>{escape(qid)}</b>{badge}",
             escape(str(q.get("language", DASH))),
             escape(str(q.get("kind", DASH))),
             f'<div class="q">{escape(str(q.get("question", "")))}</div>',
             _html_expected(q)]
    for s in systems:
        cells += [_html_answer(q.get(s)), _html_verdict(q.get(s))]
    tags = escape(_row_tags(q, systems, changes))
    return f'<tr id="q-{escape(qid)}" data-tags="{tags}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _html_select(label: str, options: list[tuple[str, str]]) -> str:
    opts = "".join(f'<option value="{escape(v)}">{escape(t)}</option>' for v, t in [("", label)] + options)
    return f"<select>{opts}</select>"


def _html_filters(report: Report, systems: list[str]) -> str:
    questions = report.get("questions") or []
    langs = sorted({str(q.get("language")) for q in questions})
    kinds = sorted({str(q.get("kind")) for q in questions})
    main = systems[0] if systems else "chatbot"
    verdicts = [("correct", f"{main} correct"), ("wrong", f"{main} wrong"), ("refused", f"{main} refused")]
    if len(systems) > 1:
        verdicts.append(("differs", "systems disagree"))
    if report.get("comparison"):
        verdicts += [("regressed", "regressed"), ("improved", "improved")]
    return ('<div class="filters" id="filters" hidden>'
            '<input id="search" type="search" placeholder="search text">'
            + _html_select("all verdicts", verdicts)
            + _html_select("all languages", [(f"lang-{x}", x) for x in langs])
            + _html_select("all kinds", [(f"kind-{x}", x) for x in kinds])
            + '<span id="count" class="muted"></span></div>')


def _html_questions(report: Report, systems: list[str]) -> str:
    questions = report.get("questions") or []
    changes = _changes(report)
    header = ["id", "language", "kind", "question", "expected facts"]
    for s in systems:
        header += [f"{escape(s)} answer", f"{escape(s)} verdict"]
    rows = "".join(_html_question_row(q, systems, changes) for q in questions)
    head = "".join(f"<th>{h}</th>" for h in header)
    return (f"<h2>Questions ({len(questions)})</h2>" + _html_filters(report, systems)
            + f'<table class="questions"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
