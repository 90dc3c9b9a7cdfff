"""The CI gate: per-language thresholds (eval/thresholds.toml) checked against a run's metrics."""

from __future__ import annotations

from pathlib import Path

from chatbot.evaluation.tomlfile import load_toml
from chatbot.errors import ChatbotError
from chatbot.evaluation.models import GateCheck, GateResult, Metrics, SystemSummary

SCOPES = ("all", "en", "zh")


class ThresholdsError(ChatbotError):
    code = "bad_thresholds"


def load_thresholds(path: Path) -> dict[str, dict[str, float]]:
    """{"all"|"en"|"zh": {metric: minimum (or maximum for lower-is-better metrics)}, "gap": {...}}."""
    data = load_toml(path, ThresholdsError, "thresholds file")
    problems = []
    out: dict[str, dict[str, float]] = {}
    for scope, table in data.items():
        if scope not in (*SCOPES, "gap") or not isinstance(table, dict):
            problems.append(f"unknown table [{scope}] (use [all], [en], [zh] and [gap])")
            continue
        for name, value in table.items():
            known = name in Metrics.model_fields if scope != "gap" else name == "max_language_gap"
            if not known:
                problems.append(f"[{scope}] {name}: not a metric")
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                problems.append(f"[{scope}] {name}: the threshold must be a number")
            else:
                out.setdefault(scope, {})[name] = float(value)
    if problems:
        raise ThresholdsError(f"{path} has problems:\n" + "\n".join(problems))
    return out


def _lower_is_better(name: str) -> bool:
    extra = Metrics.model_fields[name].json_schema_extra
    return bool(isinstance(extra, dict) and extra.get("lower_is_better"))


def check_gate(summary: SystemSummary, thresholds: dict[str, dict[str, float]]) -> GateResult:
    checks: list[GateCheck] = []
    for scope in SCOPES:
        metrics = summary.metrics if scope == "all" else summary.by_language.get(scope)
        for name, limit in thresholds.get(scope, {}).items():
            value = getattr(metrics, name) if metrics is not None else None
            if _lower_is_better(name):
                ok = value is not None and value <= limit
                checks.append(GateCheck(scope=scope, metric=name, threshold=limit, value=value, passed=ok, bound="max"))
            else:
                ok = value is not None and value >= limit
                checks.append(GateCheck(scope=scope, metric=name, threshold=limit, value=value, passed=ok))
    gap_limit = thresholds.get("gap", {}).get("max_language_gap")
    if gap_limit is not None:
        en, zh = summary.by_language.get("en"), summary.by_language.get("zh")
        gap = None
        if en and zh and en.answer_accuracy is not None and zh.answer_accuracy is not None:
            gap = round(en.answer_accuracy - zh.answer_accuracy, 4)
        checks.append(GateCheck(scope="gap", metric="max_language_gap", threshold=gap_limit, value=gap,
                                passed=gap is not None and gap <= gap_limit, bound="max"))
    failures = [
        f"{c.scope} {c.metric} {'missing' if c.value is None else f'{c.value:.3f}'} "
        f"{'>' if c.bound == 'max' else '<'} {c.threshold:.3f}"
        for c in checks if not c.passed
    ]
    return GateResult(checks=checks, failures=failures, passed=not failures)
