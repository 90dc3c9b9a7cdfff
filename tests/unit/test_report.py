"""Eval reports: JSON round trip, Markdown and HTML from templates (escaped), follow-up figures beside
single-turn ones, comparison, gate, the committed record, and clear errors for foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.evaluation.claims import Glossary
from chatbot.evaluation.metrics import Passage, Reference, Reply, score_answer
from chatbot.evaluation.models import GoldItem, HistoryTurn, QuestionRecord, Report, RunInfo, Span
from chatbot.evaluation.report import (
    ReportError,
    compare_reports,
    load_report,
    render_comparison,
    render_html,
    render_markdown,
    summary_lines,
    write_record,
    write_reports,
)
from chatbot.evaluation.runner import summarise
from chatbot.evaluation.thresholds import ThresholdsError, check_gate, load_thresholds

DOC = "Representatives from 11 municipal SOEs launched the initiative. Shanghai Electric supplies computing power."
REF = Reference({"d": DOC}, Glossary.from_forms([["Shanghai Electric", "上海电气"]]))
LAUNCH = "Representatives from 11 municipal SOEs launched the initiative."
TRICKY = "“人工智能+”行动由几家国企发起？<首批> & 其他 | pipe"


def item(id, question, language="en", kind="number", split="dev", history=()):
    g = GoldItem(id=id, question=question, language=language, kind=kind, split=split,
                 answers=[["11", "十一"]] if kind != "unanswerable" else [], evidence=[LAUNCH] if kind != "unanswerable"
                 else [], history=list(history))
    if g.evidence:
        g.spans.append(Span(doc_id="d", start=0, end=len(LAUNCH)))
    return g


def scored(g, answer, refused=False, total=4200.0):
    cited = [Passage(1, "d", 0, len(LAUNCH), LAUNCH)] if "[1]" in answer else []
    return score_answer(g, Reply(answer=answer, refused=refused, cited=cited, timings_ms={"total": total},
                                 prompt=[Span(doc_id="d", start=0, end=len(LAUNCH))]), REF)


def record(g, **results):
    return QuestionRecord(id=g.id, split=g.split, question=g.question, language=g.language, kind=g.kind,
                          expected=g.answers, gold_evidence=g.evidence,
                          history=[HistoryTurn(role="user", content=h) for h in g.history], results=results)


def make_report(second_correct=True) -> Report:
    items = [item("en-1", "How many SOEs launched it?"), item("zh-1", TRICKY, language="zh", split="test"),
             item("un-1", "What is the budget?", kind="unanswerable", split="test")]
    answers = [
        {"chatbot": scored(items[0], "11 SOEs launched it [1]."),
         "baseline": scored(items[0], "The 11 SOEs and 20 others [1].", total=9000)},
        {"chatbot": scored(items[1], "共有11家国企[1]。" if second_correct else "Eleven SOEs [1].", total=5000),
         "baseline": scored(items[1], "Eleven SOEs [1].", total=12000)},
        {"chatbot": scored(items[2], "The documents don't say.", refused=True, total=900),
         "baseline": scored(items[2], "It is 5 billion <yuan> [1].", total=8000)},
    ]
    records = [record(g, **a) for g, a in zip(items, answers)]
    convs = [item("c-1", "And how many of them?", history=["Who launched it?"], split="test")]
    conv_records = [record(convs[0], chatbot=scored(convs[0], "11 SOEs [1]."))]
    run = RunInfo(timestamp="2026-11-30T10:00:00", split="all", n=3, n_conversations=1, llm="qwen.gguf",
                  git_commit="abc1234def", machine={"cpus": 2})
    systems = {s: summarise(items, records, convs if s == "chatbot" else [], conv_records if s == "chatbot" else [], s)
               for s in ("chatbot", "baseline")}
    return Report(run=run, systems=systems, questions=records, conversations=conv_records,
                  baseline_setup=["Chunks: llama-index defaults <1024 tokens>"])


def test_report_round_trips_and_renders_every_section(tmp_path: Path):
    report = make_report()
    write_reports(report, tmp_path)
    again = load_report(tmp_path)
    assert again.systems["chatbot"].metrics == report.systems["chatbot"].metrics
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for text in (md, html):
        assert "Follow-up questions" in text and "Split: test" in text and "By language" in text
        assert "answered in the question&#39;s language" in text or "answered in the question's language" in text
        assert "what differs from the chatbot" in text
    # escaped, never raw: the question's <首批> and the baseline's <yuan>
    assert "<首批>" not in html and "&lt;首批&gt; &amp; 其他" in html and "&lt;yuan&gt;" in html
    assert "\\| pipe" in md and "<yuan>" not in md


def test_follow_up_accuracy_is_reported_beside_single_turn():
    report = make_report()
    chatbot = report.systems["chatbot"]
    assert chatbot.followup is not None and chatbot.followup.answer_accuracy == 1.0
    assert chatbot.metrics.answer_accuracy == 1.0 and report.systems["baseline"].followup is None
    line = next(x for x in summary_lines(report) if "follow-up accuracy" in x)
    assert "follow-up accuracy 100.0% [n=1 conversations] beside single-turn 100.0% [n=3]" in line
    html = render_html(report)
    assert "follow-up accuracy 100.0%" in html


def test_baseline_wrong_answers_are_listed_with_why():
    report = make_report()
    md = render_markdown(report)
    assert "### baseline: 3 wrong" in md and "answered a question the documents cannot answer" in md
    assert "'20'" in md  # the contradicting number is named
    assert "### chatbot: 0 wrong" in md


def test_comparison_names_regressions_and_metric_changes():
    before, after = make_report(), make_report(second_correct=False)
    comp = compare_reports(before, after)
    assert [c.id for c in comp.regressions] == ["zh-1"] and comp.improvements == []
    assert comp.metric_deltas["answer_accuracy"] < 0
    text = render_comparison(comp)
    assert "Regressions (1, correct -> wrong)" in text and "zh-1" in text


def test_gate_checks_per_language_and_gap(tmp_path: Path):
    report = make_report(second_correct=False)
    path = tmp_path / "t.toml"
    path.write_text("[all]\nanswer_accuracy = 0.5\n[zh]\nanswer_accuracy = 0.9\nanswered_in_language = 0.9\n"
                    "[gap]\nmax_language_gap = 0.2\n", encoding="utf-8")
    gate = check_gate(report.systems["chatbot"], load_thresholds(path))
    assert not gate.passed
    failed = {(c.scope, c.metric) for c in gate.checks if not c.passed}
    assert failed == {("zh", "answer_accuracy"), ("zh", "answered_in_language"), ("gap", "max_language_gap")}
    report.gate = gate
    assert "Gate: FAILED" in render_markdown(report)


def test_bad_thresholds_and_reports_are_clear_errors(tmp_path: Path):
    bad = tmp_path / "t.toml"
    bad.write_text("[fr]\nanswer_accuracy = 'high'\n[zh]\nnot_a_metric = 1\n", encoding="utf-8")
    with pytest.raises(ThresholdsError, match=r"unknown table \[fr\][\s\S]*not_a_metric: not a metric"):
        load_thresholds(bad)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(json.dumps({"systems": {}}), encoding="utf-8")
    with pytest.raises(ReportError, match="not an eval report"):
        load_report(tmp_path / "old")
    with pytest.raises(ReportError, match="Cannot read"):
        load_report(tmp_path / "missing")


def test_record_keeps_figures_and_verdicts_not_bulk(tmp_path: Path):
    report = make_report()
    path = write_record(report, tmp_path)
    assert path.name == "2026-11-30-abc1234d-all-baseline.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["run"]["git_commit"] == "abc1234def"
    assert data["systems"]["chatbot"]["metrics"]["answer_accuracy"] == 1.0
    assert "values" not in data["systems"]["chatbot"]["latency_ms"]["total"]
    assert data["questions"][0]["results"]["chatbot"]["correct"] is True
    assert "citations" not in data["questions"][0]["results"]["chatbot"]
    assert data["conversations"][0]["id"] == "c-1"


def test_a_record_of_another_corpus_gold_set_is_named_after_it(tmp_path: Path):
    report = make_report()
    report.run.gold_set = "/repo/eval/corpora/other/gold.jsonl"
    assert write_record(report, tmp_path).name == "2026-11-30-abc1234d-other-all-baseline.json"
    report.run.gold_set = "/repo/eval/gold.jsonl"
    assert write_record(report, tmp_path).name == "2026-11-30-abc1234d-all-baseline.json"
    report.run.gold_set = "/elsewhere/my-questions.jsonl"
    assert write_record(report, tmp_path).name == "2026-11-30-abc1234d-my-questions-all-baseline.json"
