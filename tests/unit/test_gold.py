import json
from collections import Counter
from pathlib import Path

import pytest

from chatbot.evaluation.claims import Glossary, GlossaryError
from chatbot.evaluation.gold import GoldError, load_gold, read_items, read_subset, validate
from chatbot.evaluation.models import KINDS

REPO = Path(__file__).resolve().parents[2]
GOLD = REPO / "eval" / "gold.jsonl"
CONVERSATIONS = REPO / "eval" / "conversations.jsonl"


def test_the_gold_set_is_valid_split_and_covers_every_kind_and_language():
    items = read_items(GOLD)
    assert validate(items, REPO / "corpus") == []
    gold = load_gold(GOLD, REPO / "corpus")
    text = (REPO / "corpus" / "shanghai-soe-ai-plus-initiative.txt").read_text(encoding="utf-8")
    for g in gold:
        assert len(g.spans) == len(g.evidence)
        for span, quote in zip(g.spans, g.evidence):
            assert text[span.start : span.end] == quote
    test = [g for g in gold if g.split == "test"]
    assert len(test) >= 60 and len(gold) - len(test) >= 80
    assert {g.kind for g in test} == set(KINDS)
    per_language = Counter(g.language for g in test)
    assert per_language["zh"] >= 25 and per_language["en"] >= 25
    for kind in ("multihop", "paraphrase", "unanswerable", "false_premise"):
        assert sum(g.kind == kind for g in test) >= 6, kind
    # questions whose premise contains a number
    assert sum(g.kind == "false_premise" and any(c.isdigit() or c in "十五" for p in g.premise for c in p)
               for g in test) >= 6


def test_conversations_need_their_earlier_turns():
    convs = load_gold(CONVERSATIONS, REPO / "corpus", conversations=True)
    assert len(convs) >= 20
    assert {c.language for c in convs} == {"en", "zh"} and sum(c.language == "zh" for c in convs) >= 8
    assert all(1 <= len(c.history) <= 2 for c in convs) and any(len(c.history) == 2 for c in convs)
    assert {"unanswerable", "false_premise"} <= {c.kind for c in convs}
    gold_ids = {g.id for g in load_gold(GOLD, REPO / "corpus")}
    assert not gold_ids & {c.id for c in convs}


def test_the_gate_subset_is_small_and_drawn_from_the_held_out_split_only():
    gold = load_gold(GOLD, REPO / "corpus")
    subset = read_subset(REPO / "eval" / "gate_subset.txt", gold)
    assert 12 <= len(subset) <= 30
    assert {g.split for g in subset} == {"test"}
    assert {g.language for g in subset} == {"en", "zh"} and {"unanswerable", "false_premise"} <= {g.kind for g in subset}


def test_validator_reports_bad_items(tmp_path):
    bad = [
        {"id": "a", "question": "q", "language": "fr", "kind": "fact", "split": "dev", "answers": [["x"]],
         "evidence": ["nope"]},
        {"id": "b", "question": "q", "language": "en", "kind": "riddle", "split": "dev", "answers": [], "evidence": []},
        {"id": "b", "question": "q", "language": "en", "kind": "fact", "split": "train", "answers": [["x"]],
         "evidence": ["On July 6th"]},
        {"id": "c", "question": "q", "language": "en", "kind": "false_premise", "split": "test", "answers": [["11"]],
         "evidence": ["On July 6th"]},
        {"id": "d", "question": "q", "language": "en", "kind": "fact", "split": "test", "answers": [["x"]],
         "evidence": ["On July 6th"], "colour": "red"},
        {"id": "e", "question": "q", "language": "en", "kind": "fact", "split": "test", "answers": [["x"]],
         "evidence": ["On July 6th"]},
        {"id": "e", "question": "q", "language": "en", "kind": "unanswerable", "split": "test", "answers": [["x"]],
         "evidence": []},
    ]
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(json.dumps(b) for b in bad), encoding="utf-8")
    problems = "\n".join(validate(read_items(path), REPO / "corpus"))
    assert "item 1 (a): language" in problems and "evidence not found" in problems
    assert "item 2 (b): kind" in problems and "item 3 (b): split" in problems
    assert "false_premise items name the false value(s) in 'premise'" in problems
    assert "item 5 (d): colour: Extra inputs are not permitted" in problems
    assert "duplicate id" in problems and "unanswerable items have no answers or evidence" in problems
    with pytest.raises(GoldError, match="has problems"):
        load_gold(path, REPO / "corpus")


def test_unreadable_files_are_clear_errors(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "a"}\nnot json\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(GoldError, match=r"g.jsonl:2: not valid JSON[\s\S]*g.jsonl:3: each line must be a JSON object"):
        read_items(path)
    with pytest.raises(GoldError, match="Cannot read"):
        read_items(tmp_path / "missing.jsonl")
    subset = tmp_path / "s.txt"
    subset.write_text("# comment\nen-fact-01\nno-such-id\n", encoding="utf-8")
    with pytest.raises(GoldError, match="ids not in the gold set: no-such-id"):
        read_subset(subset, load_gold(GOLD, REPO / "corpus"))
    glossary = tmp_path / "e.toml"
    glossary.write_text("[[entity]]\nforms = []\n", encoding="utf-8")
    with pytest.raises(GlossaryError, match="entity 1 needs a non-empty list"):
        Glossary.load(glossary)


def test_the_entity_list_loads():
    glossary = Glossary.load(REPO / "eval" / "entities.toml")
    names = {e.name for e in glossary.mentioned("上海电气和国泰君安 with SAIC")}
    assert names == {"Shanghai Electric", "Guotai Junan", "SAIC"}
