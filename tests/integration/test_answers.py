"""What a user sees from the real pipeline: correct answers citing the clause they come from, Chinese answers,
honest refusals, corrected false premises, repeated questions answered at once, and a second corpus."""

import shutil
import time
from pathlib import Path

import pytest

from chatbot.config import Settings
from chatbot.evaluation.metrics import form_present
from chatbot.ingest import build_index
from chatbot.retrieval import HybridRetriever
from chatbot.service import ChatService
from chatbot.text import CJK

pytestmark = pytest.mark.integration
OTHER = Path(__file__).resolve().parents[2] / "eval" / "corpora" / "other" / "corpus"


def assert_exact_spans(answer, doc_text):
    for c in answer.citations:
        assert doc_text[c.start : c.end] == c.text
        assert c.source == "corpus/shanghai-soe-ai-plus-initiative.txt" or c.source.endswith(
            "corpus/shanghai-soe-ai-plus-initiative.txt")
        assert c.context_start is not None and c.context_start <= c.start < c.end <= c.context_end


def test_a_correct_answer_cites_the_clause_it_comes_from(real_service, doc_text):
    a = real_service.ask("How many municipal state-owned enterprises jointly launched the initiative?")
    assert not a.refused, a
    assert form_present("11", a.answer), a.answer
    assert "[1]" in a.answer
    assert_exact_spans(a, doc_text)
    assert any("11 municipal state-owned enterprises" in c.text for c in a.citations)
    # The clause, not the 490-character sentence it belongs to; the sentence is the citation's context.
    assert all(len(c.text) <= 300 for c in a.citations), [c.text for c in a.citations]
    assert any(c.context_end - c.context_start > 400 for c in a.citations)


def test_a_chinese_question_gets_a_cited_chinese_answer(real_service, doc_text):
    a = real_service.ask("中国太平构建了多少条高质量保险数据指令？")
    assert a.language == "zh" and not a.refused, a
    assert CJK.search(a.answer), a.answer
    assert form_present("1.05 million", a.answer), a.answer
    assert a.answer.endswith("。"), a.answer  # Chinese punctuation, after the marker
    assert_exact_spans(a, doc_text)
    assert any("1.05 million" in c.text for c in a.citations)


KNOWN_GAP = pytest.mark.xfail(reason="known gap (issue 9): the packaged 1.5B fails it (greedy, deterministic)", strict=True)


@pytest.mark.parametrize("question, fact", [
    pytest.param("What does Shanghai Electric focus on for end-side AI products?", "AI for engineering", marks=KNOWN_GAP),
    pytest.param("Who spoke about the future at the SOE forum?", "He Qing", marks=KNOWN_GAP),
    # Passing since Chinese questions are searched in English again (5ed3104).
    pytest.param("国泰君安推进什么战略？", "All in AI"),
])
def test_paraphrased_and_chinese_questions_are_answered(real_service, doc_text, question, fact):
    a = real_service.ask(question)
    assert not a.refused and form_present(fact, a.answer), a
    assert_exact_spans(a, doc_text)


@pytest.mark.parametrize("question", ["Who won the 2022 FIFA World Cup?", "法国的首都是哪里？"])
def test_a_question_the_documents_cannot_answer_is_refused(real_service, question):
    a = real_service.ask(question)
    assert a.refused and a.citations == [], a
    assert ("don't contain" in a.answer) if a.language == "en" else a.answer.startswith("文件中没有")


@pytest.mark.parametrize("question", [
    pytest.param("What is the budget of Shanghai Electric's intelligent computing power bases?", marks=KNOWN_GAP),
    "What was Shanghai Electric's profit in 2023?",  # a year the documents do not discuss: no "correction"
    # a number in the text counts something else
    pytest.param("How many people does China Taiping employ?", marks=KNOWN_GAP),
])
def test_a_plausible_but_unanswerable_question_is_refused(real_service, question):
    a = real_service.ask(question)
    assert a.refused and a.citations == [], a


def test_a_false_premise_is_corrected_never_repeated(real_service, doc_text):
    a = real_service.ask("Why did 20 municipal state-owned enterprises launch the initiative?")
    assert not a.refused, a
    assert form_present("11", a.answer), a.answer  # the documents' fact
    if form_present("20", a.answer):  # 20 may only appear as what the documents do not say
        assert "not" in a.answer.lower() or "没有" in a.answer or "而不是" in a.answer, a.answer
    assert_exact_spans(a, doc_text)


def test_a_repeated_question_is_answered_at_once_with_the_same_verified_answer(real_service):
    question = "Which three business lines does the Airport Group's intelligent hub cover?"
    first = real_service.ask(question)
    t = time.perf_counter()
    again = real_service.ask(question + "  ")
    took = time.perf_counter() - t
    assert again.answer == first.answer and again.citations == first.citations
    assert took < 0.2 and "cache" in again.timings_ms


@pytest.fixture(scope="module")
def other_service(real_service, tmp_path_factory):
    """Three articles of the second corpus (two English, one Chinese), answered by the same models."""
    root = tmp_path_factory.mktemp("other")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in ("harlow-bridge.txt", "maplewood-rowing.txt", "yunling-tea.txt"):
        shutil.copy(OTHER / name, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", llm_model=real_service.settings.llm_model)
    build_index(settings, embedders=real_service.embedders, progress=False)
    return ChatService(settings, embedders=real_service.embedders,
                       retriever=HybridRetriever(settings, real_service.embedders), llm=real_service.llm,
                       translator=real_service.translator, rewriter=real_service.rewriter, gate=real_service.gate)


@pytest.mark.parametrize("question, fact", [
    ("Who designed the Harlow Bridge?", "Tomas Berg"),
    ("云岭茶业公司有多少名员工？", "450"),
    ("Is the Harlow Bridge longer than 600 metres?", "640"),
])
def test_another_corpus_in_either_language_is_answered_with_the_same_settings(other_service, question, fact):
    a = other_service.ask(question)
    assert not a.refused and form_present(fact, a.answer), a


def test_another_corpus_refuses_what_it_does_not_say(other_service):
    a = other_service.ask("How much did the renovation of the Harlow Bridge cost?")
    assert a.refused, a
