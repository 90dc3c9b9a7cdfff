"""Strict scoring: an answer is correct for what it claims, not for containing the right words somewhere."""

import pytest

from chatbot.evaluation.claims import Glossary, language_of, sentences
from chatbot.evaluation.metrics import Passage, Reference, Reply, aggregate, form_present, percentiles, score_answer
from chatbot.evaluation.models import GoldItem, Span
from chatbot.numbers import extract_quantities

DOC = (
    "On July 6th, representatives from 11 municipal state-owned enterprises jointly launched the initiative. "
    "China Taiping Insurance is building 1.05 million high-quality insurance data instructions, constructing "
    "11 Taiping digital labor positions, increasing overall labor productivity by more than 30%. "
    "Shanghai Electric is establishing a high-quality computing power supply. "
    "SAIC Group uses enterprises such as Zhiji and Lingbu as the core."
)
GLOSSARY = Glossary.from_forms([["Shanghai Electric", "上海电气"], ["SAIC", "上汽"], ["China Taiping", "Taiping", "中国太平"],
                                ["Zhiji", "智己"], ["Lingbu", "零束"]])
REF = Reference({"d": DOC}, GLOSSARY)


def gold(kind="number", answers=None, evidence=None, language="en", question="How many?", premise=None):
    item = GoldItem(id="x", question=question, language=language, kind=kind, split="dev",
                    answers=answers if answers is not None else [], evidence=evidence or [], premise=premise or [])
    for quote in item.evidence:
        start = DOC.index(quote)
        item.spans.append(Span(doc_id="d", start=start, end=start + len(quote)))
    return item


def passage(n, quote):
    start = DOC.index(quote)
    return Passage(n, "d", start, start + len(quote), quote)


POSITIONS = "constructing 11 Taiping digital labor positions"
LAUNCH = "representatives from 11 municipal state-owned enterprises jointly launched the initiative"
ELECTRIC = "Shanghai Electric is establishing a high-quality computing power supply"


def reply(answer, cited=(), refused=False, **kw):
    return Reply(answer=answer, refused=refused, cited=list(cited), **kw)


def test_citation_markers_do_not_satisfy_a_number():
    item = gold(answers=[["3", "three"]], evidence=[ELECTRIC], question="How many lines does it cover?")
    r = score_answer(item, reply("It covers operation [1], safety [2] and service [3].", [passage(1, ELECTRIC)]), REF)
    assert not r.correct and r.missing_facts == [["3", "three"]]


def test_the_right_number_beside_a_wrong_one_is_wrong():
    item = gold(answers=[["11", "eleven"]], evidence=[LAUNCH], question="How many SOEs launched it?")
    right = score_answer(item, reply("Representatives from 11 SOEs launched it [1].", [passage(1, LAUNCH)]), REF)
    assert right.correct, right.why
    mixed = score_answer(item, reply("11 SOEs launched it, with 20 more joining [1].", [passage(1, LAUNCH)]), REF)
    assert not mixed.correct and "'20'" in mixed.why


def test_quoting_a_whole_sentence_with_other_figures_is_not_the_answer():
    item = gold(answers=[["11", "eleven"]], evidence=[POSITIONS], question="How many digital labor positions?")
    whole = DOC[DOC.index("China Taiping") : DOC.index("30%.") + 3]
    r = score_answer(item, reply(whole + " [1]", [passage(1, whole)]), REF)
    assert not r.correct and any("1.05 million" in c for c in r.contradictions)


def test_a_name_the_evidence_does_not_support_is_wrong():
    item = gold(kind="fact", answers=[["Shanghai Electric"]], evidence=[ELECTRIC], question="Who supplies compute?")
    r = score_answer(item, reply("Shanghai Electric and SAIC supply it [1].", [passage(1, ELECTRIC)]), REF)
    assert not r.correct and any("SAIC" in c for c in r.contradictions)
    invented = score_answer(item, reply("Shanghai Electric, with chips from Nvidia, supplies it [1].",
                                        [passage(1, ELECTRIC)]), REF)
    assert not invented.correct and any("Nvidia" in c for c in invented.contradictions)


def test_a_false_premise_must_be_rejected_not_restated():
    item = gold(kind="false_premise", answers=[["11", "eleven"]], evidence=[LAUNCH], premise=["20"],
                question="Why did 20 SOEs launch the initiative?")
    restated = score_answer(item, reply("The 20 SOEs launched it to use AI; 11 were municipal [1].",
                                        [passage(1, LAUNCH)]), REF)
    assert not restated.correct and any("20" in c for c in restated.contradictions)
    rejected = score_answer(item, reply("It was 11 SOEs, not 20 [1].", [passage(1, LAUNCH)]), REF)
    assert rejected.correct, rejected.why
    assert not score_answer(item, reply("", refused=True), REF).correct


def test_a_chinese_question_answered_in_english_is_not_a_correct_chinese_answer():
    item = gold(answers=[["11", "十一"]], evidence=[LAUNCH], language="zh", question="有多少家国企发布了倡议？")
    english = score_answer(item, reply("Representatives from 11 SOEs launched it [1].", [passage(1, LAUNCH)]), REF)
    assert english.correct_any_language and not english.correct and not english.in_language
    chinese = score_answer(item, reply("共有11家市属国企的代表共同发布了倡议[1]。", [passage(1, LAUNCH)]), REF)
    assert chinese.correct and chinese.in_language
    m = aggregate([(item, english), (item, chinese)])
    assert m.answer_accuracy == 0.5 and m.accuracy_any_language == 1.0
    assert m.answered_in_language == 0.5 and m.english_fallback == 0.5


def test_faithfulness_checks_numbers_and_names_against_the_cited_text():
    item = gold(kind="fact", answers=[["Shanghai Electric"]], evidence=[ELECTRIC], question="Who supplies compute?")
    ok = score_answer(item, reply("Shanghai Electric supplies computing power [1].", [passage(1, ELECTRIC)]), REF)
    assert ok.faithfulness == 1.0
    wrong_passage = score_answer(item, reply("Shanghai Electric supplies computing power [1].",
                                             [passage(1, LAUNCH)]), REF)
    assert wrong_passage.faithfulness == 0.0 and "Shanghai Electric" in wrong_passage.unfaithful[0]
    half = score_answer(item, reply("Shanghai Electric supplies computing power [1]. It has 49 bases.",
                                    [passage(1, ELECTRIC)]), REF)
    assert half.faithfulness == 0.5 and "without a citation" in half.unfaithful[0]
    chinese = score_answer(gold(kind="fact", answers=[["上海电气"]], evidence=[ELECTRIC], language="zh"),
                           reply("上海电气正在建设高质量算力供给[1]。", [passage(1, ELECTRIC)]), REF)
    assert chinese.faithfulness == 1.0


def test_citation_precision_recall_and_evidence_in_prompt():
    item = gold(answers=[["11"]], evidence=[LAUNCH])
    r = score_answer(item, reply("11 SOEs launched it [1][2].", [passage(1, LAUNCH), passage(2, ELECTRIC)],
                                 prompt=[passage(1, LAUNCH).span], ranked=[passage(2, ELECTRIC).span,
                                                                            passage(1, LAUNCH).span]), REF)
    assert r.citation_precision == 0.5 and r.citation_recall == 1.0 and r.hit_rank == 2
    assert r.evidence_in_prompt == 1.0 and r.cited_gold_chars == len(LAUNCH)
    missed = score_answer(item, reply("11 SOEs [1].", [passage(1, LAUNCH)], prompt=[passage(1, ELECTRIC).span]), REF)
    assert missed.evidence_in_prompt == 0.0


def test_unanswerable_items_are_correct_only_when_refused():
    item = gold(kind="unanswerable")
    assert score_answer(item, reply("The documents don't contain the answer.", refused=True), REF).correct
    assert not score_answer(item, reply("It employs 500 people [1].", [passage(1, ELECTRIC)]), REF).correct


def test_aggregate_reports_refusals_length_and_language():
    unans, fact = gold(kind="unanswerable"), gold(kind="fact", answers=[["11"]], evidence=[LAUNCH])
    rows = [
        (unans, score_answer(unans, reply("The documents don't say.", refused=True), REF)),
        (fact, score_answer(fact, reply("The documents don't say.", refused=True), REF)),
        (fact, score_answer(fact, reply("11 SOEs launched it [1].", [passage(1, LAUNCH)]), REF)),
    ]
    m = aggregate(rows)
    assert m.refusal_precision == 0.5 and m.refusal_recall == 1.0 and m.wrong_refusal_rate == 0.5
    assert m.answer_accuracy == pytest.approx(0.6667) and m.mean_answer_chars == len("11 SOEs launched it .")
    assert m.citation_precision == 1.0 and m.hit_at_1 is None  # no ranking reported


def test_required_fact_matching_keeps_qualifiers_and_ignores_markers():
    assert form_present("1.05 million", "It built 1,050,000 instructions [1].")
    assert form_present("more than 30%", "productivity rose by over 30% [1]")
    assert not form_present("more than 30%", "productivity rose by 30% [1]")
    assert form_present("智己", "上汽以智己和零束为核心[1]。")
    assert not form_present("AI", "AIR")
    assert not form_present("1", "Zhiji [1].")
    assert {extract_quantities(f)[0].value for f in ["1.05 million", "1,050,000", "105万"]} == {1_050_000}


def test_answer_sentences_keep_their_markers_and_language():
    parts = sentences("Eleven SOEs launched it. [1] It covers 1.05 million items [2][3]. 上海电气建设算力[1]。")
    assert [(p.text, p.markers) for p in parts] == [
        ("Eleven SOEs launched it.", [1]), ("It covers 1.05 million items .", [2, 3]), ("上海电气建设算力。", [1])]
    assert language_of("国泰君安推行“All in AI”战略[1]。") == "zh"
    assert language_of("Guotai Junan (国泰君安) promotes the All in AI strategy [1].") == "en"


def test_percentiles():
    p = percentiles([1, 2, 3, 4, 100])
    assert p["p50"] == 3 and p["p95"] > 50 and p["values"] == [1, 2, 3, 4, 100]


def test_source_markers_in_llama_index_style_are_citations_not_numbers():
    item = gold(kind="fact", answers=[["Shanghai Electric"]], evidence=[ELECTRIC], question="Who supplies compute?")
    r = score_answer(item, reply("Shanghai Electric supplies it [Source 2].", [passage(2, ELECTRIC)]), REF)
    assert r.correct and r.faithfulness == 1.0, r.why
    assert sentences("It is 11 [Source 1, Source 3].")[0].markers == [1, 3]


PRODUCTIVITY = "increasing overall labor productivity by more than 30%"


def test_names_may_come_from_the_evidence_sentence_but_numbers_only_from_the_evidence():
    item = gold(answers=[["more than 30%"]], evidence=[PRODUCTIVITY], question="By how much did productivity rise?")
    named = score_answer(item, reply("China Taiping raised labor productivity by more than 30% [1].",
                                     [passage(1, PRODUCTIVITY)]), REF)
    assert named.correct, named.why  # the clause's subject, from the same sentence of the document
    borrowed = score_answer(item, reply("With 1.05 million instructions, productivity rose by more than 30% [1].",
                                        [passage(1, PRODUCTIVITY)]), REF)
    assert not borrowed.correct and "'1.05 million'" in borrowed.why


def test_only_the_premise_is_restricted_in_a_false_premise_question():
    item = gold(kind="false_premise", answers=[["more than 30%"]], evidence=[PRODUCTIVITY], premise=["80%"],
                question="How did China Taiping raise productivity by 80%?")
    corrected = score_answer(item, reply("China Taiping raised it by more than 30%, not 80% [1].",
                                         [passage(1, PRODUCTIVITY)]), REF)
    assert corrected.correct, corrected.why
    repeated = score_answer(item, reply("China Taiping raised it by 80%, more than 30% of staff agree [1].",
                                        [passage(1, PRODUCTIVITY)]), REF)
    assert not repeated.correct and "restates the false premise '80%'" in repeated.why


def test_english_forms_match_their_inflections():
    assert form_present("mechanism model", "It integrates mechanism models with algorithms [1].")
    assert form_present("launch", "Cheng Peng launched the initiative [1].")
    assert not form_present("launch", "Cheng Peng spoke at the launcher [1].")


def test_unbracketed_source_references_are_citations():
    item = gold(answers=[["11"]], evidence=[LAUNCH], question="How many SOEs launched it?")
    r = score_answer(item, reply("According to Source 1, 11 SOEs launched it.", [passage(1, LAUNCH)]), REF)
    assert r.correct and r.faithfulness == 1.0, r.why


def test_a_clause_citation_that_leaves_out_the_subject_is_strictly_unfaithful_but_sentence_faithful():
    item = gold(answers=[["more than 30%"]], evidence=[PRODUCTIVITY], question="By how much did productivity rise?")
    r = score_answer(item, reply("China Taiping raised labor productivity by more than 30% [1].",
                                 [passage(1, PRODUCTIVITY)]), REF)
    assert r.faithfulness == 0.0 and "'China Taiping' is not in the cited passage" in r.unfaithful[0]
    assert r.faithfulness_sentence == 1.0
    invented = score_answer(item, reply("SAIC raised labor productivity by more than 30% [1].",
                                        [passage(1, PRODUCTIVITY)]), REF)
    assert invented.faithfulness == 0.0 and invented.faithfulness_sentence == 0.0
