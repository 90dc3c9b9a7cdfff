import json
from pathlib import Path

from chatbot.evaluation.gold import load_gold, read_items, validate
from chatbot.evaluation.metrics import KINDS

REPO = Path(__file__).resolve().parents[2]


def test_the_gold_set_is_valid_and_covers_every_kind_and_language():
    items = read_items(REPO / "eval" / "gold.jsonl")
    assert validate(items, REPO / "corpus") == []
    assert len(items) >= 80
    assert {i["kind"] for i in items} == set(KINDS)
    assert sum(i["language"] == "zh" for i in items) >= 20
    assert sum(i["kind"] == "unanswerable" for i in items) >= 10
    assert sum(i["kind"] == "false_premise" for i in items) >= 5
    gold = load_gold(REPO / "eval" / "gold.jsonl", REPO / "corpus")
    text = (REPO / "corpus" / "shanghai-soe-ai-plus-initiative.txt").read_text(encoding="utf-8")
    for g in gold:
        for span, quote in zip(g.spans, g.raw["evidence"]):
            assert text[span.start : span.end] == quote


def test_validator_reports_bad_items(tmp_path):
    bad = [
        {"id": "a", "question": "q", "language": "fr", "kind": "fact", "answers": [["x"]], "evidence": ["nope"]},
        {"id": "a", "question": "q", "language": "en", "kind": "riddle", "answers": [], "evidence": []},
    ]
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(json.dumps(b) for b in bad), encoding="utf-8")
    problems = "\n".join(validate(read_items(path), REPO / "corpus"))
    assert "unknown language 'fr'" in problems and "evidence not found" in problems
    assert "duplicate id" in problems and "unknown kind 'riddle'" in problems
