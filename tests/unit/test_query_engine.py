"""The chatbot as llama-index objects: a query engine whose source nodes are the cited spans, and retrievers."""


import pytest
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.retrievers import BaseRetriever

from chatbot.query import analyse_question
from chatbot.query_engine import as_query_engine, as_retriever
from chatbot.retrieval import HybridRetriever
from chatbot.service import ChatService
from tests.fakes import ScriptedLLM
from tests.unit.api_app import FakeIndex, build_fake_index

QUESTION = "How many municipal state-owned enterprises jointly launched the initiative?"


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> FakeIndex:
    return build_fake_index(tmp_path_factory.mktemp("engine"))


@pytest.fixture
def service(index: FakeIndex) -> ChatService:
    return ChatService(index.settings, embedders=index.embedders,
                       retriever=HybridRetriever(index.settings, index.embedders), llm=ScriptedLLM())


def test_query_engine_answers_with_the_cited_spans_as_source_nodes(service: ChatService, index: FakeIndex):
    doc = index.text
    evidence = service.retriever.retrieve(analyse_question(QUESTION)).evidence
    n = next(i for i, e in enumerate(evidence, 1) if "11 municipal" in e.text)
    service.llm.engine.replies.append(f"11 municipal state-owned enterprises jointly launched it [{n}].")
    engine = as_query_engine(service=service)
    assert isinstance(engine, BaseQueryEngine)
    response = engine.query(QUESTION)
    assert response.response == "11 municipal state-owned enterprises jointly launched it [1]."
    [node] = response.source_nodes
    start, end = node.node.start_char_idx, node.node.end_char_idx
    assert doc[start:end] == node.node.get_content() and "11 municipal" in node.node.get_content()
    assert node.node.metadata["n"] == 1 and node.node.metadata["title"].startswith("Shanghai")
    assert response.metadata["refused"] is False and response.metadata["answer"]["citations"][0]["start"] == start


def test_query_engine_refusal_has_no_source_nodes(service: ChatService):
    response = as_query_engine(service=service).query("What is the capital of France?")
    assert response.metadata["refused"] is True and response.source_nodes == []
    assert "don't contain" in str(response)


def test_retrievers_return_nodes_with_offsets(service: ChatService, index: FakeIndex):
    doc = index.text
    chunks = as_retriever(service=service)
    spans = as_retriever(service=service, evidence=True)
    assert isinstance(chunks, BaseRetriever) and isinstance(spans, BaseRetriever)
    for nodes in (chunks.retrieve(QUESTION), spans.retrieve(QUESTION)):
        assert nodes and all(doc[n.node.start_char_idx : n.node.end_char_idx] == n.node.get_content()
                             for n in nodes)
        assert nodes[0].node.metadata["doc_id"] == "shanghai-soe-ai-plus-initiative"
    assert any("11 municipal" in n.node.get_content() for n in spans.retrieve(QUESTION))
    assert max(len(n.node.get_content()) for n in spans.retrieve(QUESTION)) < max(
        len(n.node.get_content()) for n in chunks.retrieve(QUESTION))  # sentences, not chunks
    assert spans.retrieve("What is the capital of France?") == []
