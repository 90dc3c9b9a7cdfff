"""Unit tests for the eval report writer, loader and comparison."""

from __future__ import annotations

import copy
import html
import pathlib
from typing import Any

import pytest

from chatbot.evaluation.report import (
    compare_reports,
    load_report,
    render_comparison,
    summary_lines,
    write_reports,
)

ZH_QUESTION = "“人工智能+”行动由几家国企发起？<首批> & 其他"
METRIC_KEYS = (
    "answer_accuracy", "answerable_accuracy", "unanswerable_accuracy", "refusal_precision",
    "refusal_recall", "wrong_refusal_rate", "citation_precision", "citation_recall", "faithfulness",
    "hit_at_1", "hit_at_3", "mrr",
)


def _metrics(n: int, value: float | None, **overrides: float | None) -> dict[str, Any]:
    m: dict[str, Any] = {"n": n, **{k: value for k in METRIC_KEYS}}
    m.update(overrides)
    return m


def _latency(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    stage = {"p50": ordered[len(ordered) // 2], "p95": ordered[-1], "values": values}
    retrieve = {"p50": 25.0, "p95": 31.0, "values": [24.0, 25.0, 31.0]}
    return {"retrieve": retrieve, "first_token": stage, "total": stage}


def _result(answer: str, correct: bool, why: str, refused: bool = False) -> dict[str, Any]:
    return {
        "answer": answer, "refused": refused, "correct": correct, "why": why,
        "missing_facts": [] if correct else [["closing ceremony"]],
        "citations": [
            {"n": 1, "start": 36, "end": 120, "text": "at the closing ceremony of WAIC", "precise": True}
        ],
        "unsupported": [], "citation_precision": 1.0, "citation_recall": 1.0, "faithfulness": 1.0,
        "hit_rank": 1, "timings_ms": {"retrieve": 24.1, "first_token": 3100.0, "total": 4200.0},
    }


def _system(accuracy: float, latency: list[float]) -> dict[str, Any]:
    return {
        "metrics": _metrics(3, accuracy, refusal_precision=None),
        "by_kind": {"fact": _metrics(2, accuracy, unanswerable_accuracy=None),
                    "unanswerable": _metrics(1, 1.0, hit_at_1=None, hit_at_3=None, mrr=None)},
        "by_language": {"en": _metrics(2, accuracy), "zh": _metrics(1, None)},
        "latency_ms": _latency(latency),
        "judged": None,
    }


@pytest.fixture()
def report() -> dict[str, Any]:
    return {
        "run": {"timestamp": "2026-11-28T08:10:00", "gold_set": "eval/gold.jsonl", "n": 3,
                "llm": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "git": "d2c9fb7", "subset": None},
        "systems": {"chatbot": _system(0.667, [3000.0, 4200.0, 5100.0]),
                    "baseline": _system(0.333, [9000.0, 12000.0, 15000.0])},
        "latency_ratio": {"total_p50": 2.86, "total_p95": 2.94},
        "questions": [
            {"id": "en-fact-01", "question": "At which event was the initiative launched?", "language": "en",
             "kind": "fact",
             "expected": [["World Artificial Intelligence Conference", "WAIC"], ["closing ceremony"]],
             "gold_evidence": ["at the closing ceremony of the 2024 WAIC"],
             "chatbot": _result("At the closing ceremony of WAIC [1].", True, "all 2 required facts present"),
             "baseline": _result("At WAIC.", False, "missing: closing ceremony")},
            {"id": "zh-fact-01", "question": ZH_QUESTION, "language": "zh", "kind": "fact",
             "expected": [["11", "十一"]], "gold_evidence": ["11家市属国企"],
             "chatbot": _result("共有十家国企。", False, "missing: 11 / 十一"),
             "baseline": _result("11家国企 [1]。", True, "all 1 required facts present")},
            {"id": "en-unans-01", "question": "What is the CEO's salary?", "language": "en",
             "kind": "unanswerable",
             "expected": [], "gold_evidence": [],
             "chatbot": _result("The documents do not say.", True, "refused as expected", refused=True),
             "baseline": _result("The documents do not say.", True, "refused as expected", refused=True)},
        ],
        "comparison": None,
        "gate": {"thresholds": {"answer_accuracy": 0.8},
                 "failures": ["answer_accuracy 0.67 < 0.80"], "passed": False},
    }


@pytest.fixture()
def written(report: dict[str, Any], tmp_path: pathlib.Path) -> pathlib.Path:
    out = tmp_path / "reports" / "20261128-081000"
    write_reports(report, out)
    return out


def test_writes_three_files(written: pathlib.Path) -> None:
    for name in ("report.json", "report.md", "report.html"):
        assert (written / name).is_file()
        assert (written / name).stat().st_size > 0


def test_json_round_trips_from_folder_and_file(report: dict[str, Any], written: pathlib.Path) -> None:
    assert load_report(written) == report
    assert load_report(written / "report.json") == report
    assert ZH_QUESTION in (written / "report.json").read_text(encoding="utf-8")


def test_html_is_self_contained_and_readable(written: pathlib.Path) -> None:
    page = (written / "report.html").read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page
    assert html.escape(ZH_QUESTION) in page
    assert "<首批>" not in page
    assert "<svg" in page
    for qid in ("en-fact-01", "zh-fact-01", "en-unans-01"):
        assert qid in page
    assert ">correct<" in page and ">wrong<" in page
    assert "refused" in page
    assert "http://" not in page and "https://" not in page
    assert "chars 36–120" in page and "at the closing ceremony of WAIC" in page
    assert "baseline answer" in page
    assert "Gate FAILED" in page


def test_html_renders_null_metrics_as_dash(written: pathlib.Path) -> None:
    page = (written / "report.html").read_text(encoding="utf-8")
    assert "–" in page
    assert "None" not in page and "null" not in page


def test_markdown_lists_wrong_answers(written: pathlib.Path) -> None:
    md = (written / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# Eval report: 2026-11-28T08:10:00")
    wrong = md.split("## Wrong answers", 1)[1]
    assert "zh-fact-01" in wrong and ZH_QUESTION.replace("<", "&lt;") in wrong
    assert "共有十家国企。" in wrong and "missing: 11 / 十一" in wrong
    assert "expected: 11 / 十一" in wrong
    assert "66.7%" in md and "| refusal precision | – | – |" in md
    assert "## Gate: FAILED" in md
    assert "judged by the LLM" not in md


def test_judged_section_only_when_present(report: dict[str, Any], tmp_path: pathlib.Path) -> None:
    judged = {"faithfulness": 0.9, "correctness": 0.85, "note": "scored by the LLM"}
    report["systems"]["chatbot"]["judged"] = judged
    write_reports(report, tmp_path)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    label = "judged by the LLM (not used by the gate)"
    assert label in md and "85.0%" in md
    assert label in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_compare_reports(report: dict[str, Any]) -> None:
    before = copy.deepcopy(report)
    after = copy.deepcopy(report)
    after["questions"][0]["chatbot"]["correct"] = False
    after["questions"][1]["chatbot"]["correct"] = True
    after["questions"].append({**copy.deepcopy(report["questions"][2]), "id": "only-after"})
    after["questions"][-1]["chatbot"]["correct"] = False
    before["questions"].append({**copy.deepcopy(report["questions"][2]), "id": "only-before"})
    after["systems"]["chatbot"]["metrics"]["answer_accuracy"] = 0.767

    comp = compare_reports(before, after)

    assert [e["id"] for e in comp["regressions"]] == ["en-fact-01"]
    assert comp["regressions"][0] == {"id": "en-fact-01", "question": report["questions"][0]["question"],
                                      "before": "correct", "after": "wrong"}
    improvements = [(e["id"], e["before"], e["after"]) for e in comp["improvements"]]
    assert improvements == [("zh-fact-01", "wrong", "correct")]
    assert comp["metric_deltas"]["answer_accuracy"] == pytest.approx(0.1)
    assert "refusal_precision" not in comp["metric_deltas"]
    text = render_comparison(comp)
    assert "en-fact-01" in text and "zh-fact-01" in text and "+10.0 pp" in text
    assert "only-after" not in text and "only-before" not in text


def test_comparison_section_in_reports(report: dict[str, Any], tmp_path: pathlib.Path) -> None:
    report["comparison"] = {"previous": "eval/reports/20261128-080000",
                            "regressions": [{"id": "zh-fact-01", "question": ZH_QUESTION,
                                             "before": "correct", "after": "wrong"}],
                            "improvements": []}
    write_reports(report, tmp_path)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Comparison with eval/reports/20261128-080000" in md
    assert "Regressions (correct → wrong): 1" in md
    assert 'class="badge regressed"' in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_summary_lines(report: dict[str, Any]) -> None:
    lines = summary_lines(report)
    text = "\n".join(lines)
    assert any(line.startswith("chatbot: accuracy 66.7%") for line in lines)
    assert any(line.startswith("baseline: accuracy 33.3%") for line in lines)
    assert "total p50 4.20 s p95 5.10 s" in text
    assert "gate: FAILED" in text
    assert "report.html" not in text
