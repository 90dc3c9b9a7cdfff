"""What a user sees from the real pipeline: correct cited answers, Chinese answers, honest refusals."""

import pytest

from chatbot.evaluation.metrics import form_present

pytestmark = pytest.mark.integration


def assert_exact_spans(answer, doc_text):
    for c in answer.citations:
        assert doc_text[c.start : c.end] == c.text
        assert c.source == "corpus/shanghai-soe-ai-plus-initiative.txt" or c.source.endswith(
            "corpus/shanghai-soe-ai-plus-initiative.txt")


def test_a_correct_answer_cites_the_sentence_it_comes_from(real_service, doc_text):
    a = real_service.ask("How many municipal state-owned enterprises jointly launched the initiative?")
    assert not a.refused, a
    assert form_present("11", a.answer), a.answer
    assert "[1]" in a.answer
    assert_exact_spans(a, doc_text)
    assert any("11 municipal state-owned enterprises" in c.text for c in a.citations)
    assert all(len(c.text) < 800 for c in a.citations)


def test_a_chinese_question_gets_a_cited_chinese_answer(real_service, doc_text):
    a = real_service.ask("中国太平构建了多少条高质量保险数据指令？")
    assert a.language == "zh" and not a.refused, a
    assert any("\u4e00" <= ch <= "\u9fff" for ch in a.answer), a.answer
    assert form_present("1.05 million", a.answer), a.answer
    assert_exact_spans(a, doc_text)
    assert any("1.05 million" in c.text for c in a.citations)


@pytest.mark.parametrize("question", ["Who won the 2022 FIFA World Cup?", "法国的首都是哪里？"])
def test_a_question_the_documents_cannot_answer_is_refused(real_service, question):
    a = real_service.ask(question)
    assert a.refused and a.citations == [], a
    assert ("don't contain" in a.answer) if a.language == "en" else a.answer.startswith("文件中没有")


def test_a_plausible_but_unanswerable_question_is_refused(real_service):
    a = real_service.ask("What is the budget of Shanghai Electric's intelligent computing power bases?")
    assert a.refused, a


def test_a_false_premise_is_corrected_never_repeated(real_service, doc_text):
    a = real_service.ask("Why did 20 municipal state-owned enterprises launch the initiative?")
    assert not a.refused, a
    assert form_present("11", a.answer), a.answer  # the documents' fact
    if form_present("20", a.answer):  # 20 may only appear as what the documents do not say
        assert "not" in a.answer.lower() or "没有" in a.answer, a.answer
    assert_exact_spans(a, doc_text)
