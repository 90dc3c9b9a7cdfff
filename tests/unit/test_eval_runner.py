"""The eval runner consumes the service's stream like the chat does, and runs conversations turn by turn
with the chatbot's own earlier answers as history."""

from pathlib import Path

import pytest

from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.evaluation.claims import Glossary
from chatbot.evaluation.gold import load_gold
from chatbot.evaluation.metrics import Reference, Reply
from chatbot.evaluation.models import GoldItem
from chatbot.evaluation.runner import chatbot_reply, run_conversation
from chatbot.ingest import build_index
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.service import ChatService
from tests.fakes import FakeEmbedder, ScriptedLLM

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(tmp_path: Path, corpus_dir: Path) -> ChatService:
    embedders = Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", collection_prefix="t",
                        relevance_floor=0.2)
    build_index(settings, embedders=embedders, progress=False)
    return ChatService(settings, embedders=embedders, retriever=HybridRetriever(settings, embedders),
                       llm=ScriptedLLM())


def test_a_reply_carries_the_citations_the_prompt_and_the_ranking(service):
    question = "How many municipal state-owned enterprises jointly launched the initiative?"
    evidence = service.retriever.retrieve(analyse_question(question)).evidence
    n = next(i for i, e in enumerate(evidence, 1) if "11 municipal" in e.text)
    service.llm.engine.replies.append(f"Representatives from 11 municipal state-owned enterprises launched it [{n}].")
    reply, answer = chatbot_reply(service, question, id="q")
    assert answer is not None and reply.answer == answer.answer and not reply.refused
    assert [p.text for p in reply.cited] == [c.text for c in answer.citations]
    assert "11 municipal" in reply.cited[0].text
    assert len(reply.prompt) == len(evidence) and reply.ranked
    assert reply.error is None and "total" in reply.timings_ms


def test_bad_input_and_failures_become_error_replies_not_crashes(service):
    reply, answer = chatbot_reply(service, "   ")
    assert answer is None and reply.error is not None and reply.error.startswith("empty_question")

    class Broken(ScriptedLLM):
        def stream(self, messages, *, max_tokens):
            raise RuntimeError("model crashed")

    service.llm = Broken()
    reply, _ = chatbot_reply(service, "How many municipal state-owned enterprises launched the initiative?")
    assert reply.error is not None and reply.error.startswith("internal")


def test_conversations_pass_the_chatbots_own_earlier_answers_as_history():
    conv = GoldItem(id="c", question="And the second?", language="en", kind="fact", split="test",
                    history=["First question?", "Then this?"], answers=[["Shanghai Electric"]],
                    evidence=["Shanghai Electric"])
    seen: list[tuple[str, list]] = []

    def ask(service, question, *, id=None, history=None):
        seen.append((question, [(t.role, t.content) for t in history]))
        return Reply(answer=f"answer to {question}", refused=False, cited=[]), None

    record = run_conversation(None, conv, Reference({"d": "Shanghai Electric builds."}, Glossary([])), ask=ask)
    assert seen == [
        ("First question?", []),
        ("Then this?", [("user", "First question?"), ("assistant", "answer to First question?")]),
        ("And the second?", [("user", "First question?"), ("assistant", "answer to First question?"),
                             ("user", "Then this?"), ("assistant", "answer to Then this?")]),
    ]
    assert [t.content for t in record.history][-1] == "answer to Then this?"
    result = record.results["chatbot"]
    assert result.answer == "answer to And the second?" and not result.correct


def test_every_conversation_in_the_suite_loads():
    for path, corpus, split in ((REPO / "eval" / "conversations.jsonl", REPO / "corpus", "test"),
                                (REPO / "eval" / "conversations-dev.jsonl", REPO / "corpus", "dev"),
                                (REPO / "eval" / "corpora" / "other" / "conversations.jsonl",
                                 REPO / "eval" / "corpora" / "other" / "corpus", "dev")):
        convs = load_gold(path, corpus, conversations=True)
        assert convs and all(c.history and c.question and c.split == split for c in convs)


def test_only_conversations_selects_no_single_question():
    import argparse

    from chatbot.evaluation.options import add_eval_arguments
    from chatbot.evaluation.runner import _select

    parser = argparse.ArgumentParser()
    add_eval_arguments(parser)
    items = load_gold(REPO / "eval" / "gold.jsonl", REPO / "corpus")
    assert len(_select(parser.parse_args(["--split", "dev"]), items)) == 109
    assert _select(parser.parse_args(["--split", "dev", "--only-conversations"]), items) == []


def test_a_saved_baseline_answer_is_scored_again_from_the_passages_it_was_shown():
    from chatbot.evaluation.models import Span, SystemResult
    from chatbot.evaluation.runner import stored_reply

    doc = "Shanghai Electric builds computing power bases. Eleven SOEs launched the initiative."
    ref = Reference({"d": doc}, Glossary([]))
    saved = SystemResult(answer="According to Source 2, eleven SOEs launched it.", refused=False,
                         answer_language="en", in_language=True, correct=False, correct_any_language=False, why="",
                         shown=[Span(doc_id="d", start=0, end=47), Span(doc_id="d", start=48, end=len(doc))])
    reply = stored_reply("baseline", saved, ref)
    assert [p.n for p in reply.cited] == [2] and reply.cited[0].text == doc[48:]
    assert not reply.refused
    refusal = saved.model_copy(update={"answer": "The context does not provide this information."})
    assert stored_reply("baseline", refusal, ref).refused
