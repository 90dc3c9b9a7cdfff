from chatbot.evaluation.metrics import Span, aggregate, form_present, percentiles, score_answer
from chatbot.numbers import extract_quantities


def test_numbers_are_normalised_across_forms_and_languages():
    same = ["1.05 million", "1,050,000", "105万"]
    values = {extract_quantities(f)[0].value for f in same}
    assert values == {1_050_000}
    assert extract_quantities("三成以上")[0].qualifier == "gt"
    assert extract_quantities("千亿")[0].value == 1e11


def test_required_fact_matching_keeps_qualifiers():
    assert form_present("1.05 million", "It built 1,050,000 instructions [1].")
    assert form_present("more than 30%", "productivity rose by over 30% [1]")
    assert not form_present("more than 30%", "productivity rose by 30% [1]")
    assert form_present("智己", "上汽以智己和零束为核心[1]。")
    assert not form_present("AI", "AIR")


def test_score_answer_counts_facts_citations_and_retrieval_rank():
    item = {"kind": "number", "answers": [["11", "eleven"]]}
    gold = [Span("d", 100, 200)]
    v = score_answer(item, "Eleven enterprises [1].", False, [Span("d", 90, 210), Span("d", 500, 600)], [], gold,
                     [Span("d", 0, 50), Span("d", 80, 300)])
    assert v.correct and v.citation_precision == 0.5 and v.citation_recall == 1.0 and v.hit_rank == 2
    assert v.faithfulness == 1.0
    refused = score_answer({"kind": "unanswerable", "answers": []}, "The documents don't...", True, [], [], [])
    assert refused.correct


def test_aggregate_reports_refusal_precision_and_recall():
    rows = [
        {"kind": "unanswerable", "language": "en", "correct": True, "refused": True, "precise": [], "has_gold": False},
        {"kind": "fact", "language": "en", "correct": False, "refused": True, "precise": [], "has_gold": True,
         "hit_rank": None},
        {"kind": "fact", "language": "zh", "correct": True, "refused": False, "precise": [True, False],
         "has_gold": True, "hit_rank": 1, "citation_recall": 1.0, "faithfulness": 1.0},
    ]
    m = aggregate(rows)
    assert m["refusal_precision"] == 0.5 and m["refusal_recall"] == 1.0 and m["wrong_refusal_rate"] == 0.5
    assert m["citation_precision"] == 0.5 and m["hit_at_1"] == 0.5 and m["mrr"] == 0.5


def test_percentiles():
    p = percentiles([1, 2, 3, 4, 100])
    assert p["p50"] == 3 and p["p95"] > 50
