import numpy as np

from chatbot.citations import (
    Passage,
    answers_question_type,
    check_facts,
    is_refusal,
    parse_answer,
    premise_gaps,
    verify_citations,
)
from tests.fakes import FakeEmbedder

P1 = Passage(1, "d", 0, 80, "China Taiping Insurance is building 1.05 million high-quality insurance data instructions.")
P2 = Passage(2, "d", 81, 160, "Shanghai Electric is establishing a high-quality computing power supply.")
P3 = Passage(3, "d", 161, 260, "Representatives from 11 municipal state-owned enterprises jointly launched the initiative.")


class FakeSimilarity:
    def __init__(self) -> None:
        self.e = FakeEmbedder("use")

    def __call__(self, claims, passages):
        return self.e.embed_documents(claims) @ self.e.embed_documents(passages).T


def verify(answer, question="q", passages=(P1, P2, P3)):
    return verify_citations(answer, list(passages), question, FakeSimilarity())


def test_markers_are_parsed_per_sentence():
    parsed = parse_answer("Eleven enterprises launched it [3]. Taiping built 1.05 million instructions [1][2].")
    assert [c.markers for c in parsed] == [[3], [1, 2]]
    assert parsed[0].text == "Eleven enterprises launched it."
    assert parse_answer("它由11家企业发起[3]。")[0].markers == [3]
    assert parse_answer("Both [1, 2].")[0].markers == [1, 2]


def test_supported_sentence_keeps_its_citation_and_markers_are_renumbered():
    v = verify("Representatives from 11 municipal enterprises jointly launched the initiative [3].")
    assert not v.refused and v.unsupported == []
    assert v.answer == "Representatives from 11 municipal enterprises jointly launched the initiative [1]."
    assert [(p.n, p.start) for p in v.passages] == [(1, 161)]


def test_sentence_cited_to_the_wrong_passage_is_reattributed():
    v = verify("China Taiping Insurance is building 1.05 million insurance data instructions [2].")
    assert v.sentences[0].reattributed and v.sentences[0].cited == [1]
    assert v.passages[0].text == P1.text and v.answer.endswith("[1].")


def test_unsupported_sentence_is_removed_and_listed():
    v = verify("China Taiping is building 1.05 million instructions [1]. The budget is 3 billion yuan [1].")
    assert v.unsupported == ["The budget is 3 billion yuan."]
    assert "3 billion" not in v.answer and v.answer.startswith("China Taiping")


def test_nothing_supported_means_refusal():
    v = verify("Paris is the capital of France [1].")
    assert v.refused and v.answer == "" and v.unsupported == ["Paris is the capital of France."]


def test_number_and_name_mismatches_are_detected():
    assert "number" in check_facts("Taiping built 1.5 million instructions.", [P1.text], "q")
    assert check_facts("Taiping built 1,050,000 instructions.", [P1.text], "q") == ""
    assert check_facts("太平构建了105万条指令。", [P1.text], "q") == ""
    assert "name" in check_facts("Ping An Insurance built 1.05 million instructions.", [P1.text], "q")


def test_a_false_premise_number_may_be_named_when_negated():
    q = "Why did 20 municipal SOEs launch the initiative?"
    assert premise_gaps(q, [P3.text]) == ["20"]
    v = verify("It was 11 municipal state-owned enterprises, not 20, that jointly launched the initiative [3].", q)
    assert not v.refused
    v = verify("20 municipal state-owned enterprises jointly launched the initiative [3].", q)
    assert v.refused


def test_refusals_and_answer_types_are_recognised():
    assert is_refusal("The documents do not say.") and is_refusal("文件中没有相关信息。")
    assert not is_refusal("Eleven enterprises launched it [1].")
    assert not answers_question_type("How much did it cost?", "Shanghai Electric builds computing power [1].")
    assert answers_question_type("多少家企业参与？", "共有11家企业参与[1]。")
    assert answers_question_type("Who launched it?", "He Qing launched it [1].")


def test_similarity_matrix_shape_is_claims_by_passages():
    sims = FakeSimilarity()(["a b", "c"], ["a", "b", "c"])
    assert isinstance(sims, np.ndarray) and sims.shape == (2, 3)


def test_a_sentence_that_only_restates_the_question_is_not_an_answer():
    q = "What did Cheng Peng say at the AI+ forum?"
    p = Passage(1, "d", 0, 90, "Cheng Peng, Secretary of the Party Committee, attended the AI+ forum and spoke.")
    v = verify_citations("Cheng Peng said at the AI+ forum [1].", [p], q, FakeSimilarity())
    assert v.refused and "restates" in v.sentences[0].reason


def test_a_bare_fact_answer_is_supported_by_the_passage_that_states_it():
    v = verify("11 [3].", "How many enterprises launched it?")
    assert not v.refused and v.answer == "11 [1]."


def test_translated_names_must_spell_the_english_name():
    from chatbot.citations import names_preserved

    common = frozenset({"china", "insurance", "securities", "he", "qing", "cheng", "peng", "shanghai", "electric"})
    en = "Guotai Junan Securities promotes the All in AI strategy [1]."
    assert names_preserved(en, "国泰君安证券推进All in AI战略[1]。", common)
    assert not names_preserved(en, "国投中粮证券推进All in AI战略[1]。", common)
    assert names_preserved("He Qing launched it [1].", "贺青发布了该倡议[1]。", common)
    assert not names_preserved("He Qing launched it [1].", "他青发布了该倡议[1]。", common)
    assert names_preserved("China Taiping Insurance built it [1].", "中国太平保险构建了它[1]。", common)
    assert names_preserved("Shanghai Electric builds it [1].", "上海电气正在建设[1]。", common)


def test_translation_placeholders_protect_names_numbers_and_quotes():
    from chatbot.citations import protect_for_translation, restore_translation

    common = frozenset({"china", "insurance", "securities", "strategy", "the", "has", "built"})
    text, slots = protect_for_translation("Guotai Junan Securities promotes the “All in AI” strategy [1].", common)
    assert "Guotai" not in text and "All in AI" not in text and "[1]" in text
    assert set(slots.values()) == {"Guotai Junan Securities", "All in AI"}
    text, slots = protect_for_translation("China Taiping Insurance has built 1.05 million instructions [1].", common)
    assert "105万" in slots.values()
    keys = sorted(slots)
    restored = restore_translation(f"{keys[0]}构建了{keys[1]}条指令[1]。", slots)
    assert restored is not None and "105万" in restored
    assert restore_translation(f"{keys[0]}构建了指令[1]。", slots) is None  # a lost placeholder


def test_which_company_questions_need_a_name_the_question_did_not_give():
    q = "Which chip supplier provides the hardware for Shanghai Electric's computing power bases?"
    assert not answers_question_type(q, "Shanghai Electric is establishing a computing power supply [1].")
    assert answers_question_type(q, "Shanghai Electric buys its chips from Huawei [1].")
