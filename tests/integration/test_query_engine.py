"""chatbot.as_query_engine() and as_retriever() on the real index, with the real embedders and model."""

import pytest
from llama_index.core.base.base_query_engine import BaseQueryEngine

import chatbot

pytestmark = pytest.mark.integration


def test_as_query_engine_answers_with_cited_spans(real_service, doc_text):
    engine = chatbot.as_query_engine(service=real_service)
    assert isinstance(engine, BaseQueryEngine)
    response = engine.query("How many municipal state-owned enterprises launched the initiative?")
    assert "11" in str(response) and "[1]" in str(response)
    node = response.source_nodes[0].node
    assert doc_text[node.start_char_idx : node.end_char_idx] == node.get_content()
    assert "11 municipal state-owned enterprises" in node.get_content()
    assert response.metadata["answer"]["citations"][0]["doc_id"] == "shanghai-soe-ai-plus-initiative"


def test_as_retriever_loads_only_the_index_and_embedders(real_settings, doc_text):
    retriever = chatbot.as_retriever(real_settings)
    hits = retriever.retrieve("中国太平构建了多少条高质量保险数据指令？")
    assert hits and all(doc_text[h.node.start_char_idx : h.node.end_char_idx] == h.node.get_content() for h in hits)
    assert any("China Taiping" in h.node.get_content() for h in hits[:2])
    spans = chatbot.as_retriever(real_settings, evidence=True).retrieve("Who is He Qing?")
    assert spans and any("He Qing" in s.node.get_content() for s in spans)
