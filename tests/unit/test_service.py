from pathlib import Path

import pytest

from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.errors import EmptyQuestion, IndexMissing, QuestionTooLong
from chatbot.ingest import build_index
from chatbot.retrieval import HybridRetriever
from chatbot.service import ChatService
from tests.fakes import FakeEmbedder, ScriptedLLM


@pytest.fixture
def service_factory(tmp_path: Path, corpus_dir: Path):
    embedders = Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", collection_prefix="t",
                        relevance_floor=0.2)
    build_index(settings, embedders=embedders, progress=False)
    retriever = HybridRetriever(settings, embedders)
    doc_text = (corpus_dir / "shanghai-soe-ai-plus-initiative.txt").read_text(encoding="utf-8")

    def make(*replies: str) -> tuple[ChatService, ScriptedLLM, str]:
        llm = ScriptedLLM(*replies)
        return ChatService(settings, embedders=embedders, retriever=retriever, llm=llm), llm, doc_text

    return make


def test_cited_answer_points_at_the_exact_document_span(service_factory):
    service, llm, doc = service_factory()
    question = "How many municipal state-owned enterprises jointly launched the initiative?"
    first = service.retriever.retrieve(question).evidence
    n = next(i for i, e in enumerate(first, 1) if "11 municipal" in e.text)
    llm.replies.append(f"Representatives from 11 municipal state-owned enterprises jointly launched it [{n}].")
    answer = service.ask(question, id="q1")
    assert answer.id == "q1" and not answer.refused and answer.language == "en"
    assert answer.answer.endswith("[1].")
    c = answer.citations[0]
    assert doc[c.start : c.end] == c.text and "11 municipal state-owned enterprises" in c.text
    assert c.source == str(Path(c.source)) and c.title.startswith("Shanghai")
    assert len(c.text) < 600  # the supporting sentence, not the whole chunk
    assert {"retrieve", "generate", "total"} <= set(answer.timings_ms)
    prompt = llm.prompts[0]
    assert prompt[0]["role"] == "system" and question in prompt[-1]["content"]


def test_irrelevant_question_is_refused_without_calling_the_llm(service_factory):
    service, llm, _ = service_factory("Paris [1].")
    answer = service.ask("What is the capital of France?")
    assert answer.refused and "don't contain" in answer.answer and answer.citations == []
    assert llm.prompts == []


def test_unsupported_generation_becomes_a_refusal_listing_what_was_removed(service_factory):
    service, _, _ = service_factory("China Taiping spent 7 billion yuan on the model [1].")
    answer = service.ask("How much did China Taiping spend on its insurance large model?")
    assert answer.refused and answer.citations == []
    assert answer.unsupported == ["China Taiping spent 7 billion yuan on the model."]


def test_chinese_question_gets_a_chinese_refusal(service_factory):
    service, _, _ = service_factory("文件中没有相关信息。")
    answer = service.ask("中国太平保险的大模型花了多少钱？")
    assert answer.language == "zh" and answer.refused and answer.answer.startswith("文件中")


def test_bad_questions_get_clear_errors(service_factory):
    service, _, _ = service_factory()
    with pytest.raises(EmptyQuestion):
        service.ask("   ")
    with pytest.raises(QuestionTooLong, match="limit is 1000"):
        service.ask("why " * 400)


def test_missing_index_is_a_clear_error_before_models_load(tmp_path):
    with pytest.raises(IndexMissing, match="chatbot ingest"):
        ChatService.from_settings(Settings(index_dir=tmp_path / "nowhere"))
