"""Sources that disagree are shown, both values cited with their source's title and date, never one picked."""

from pathlib import Path

import numpy as np

from chatbot.composer import Citer
from chatbot.config import Settings
from chatbot.conflicts import ConflictFinder, state_disagreements
from chatbot.embeddings import Embedders
from chatbot.ingest import build_index
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.schemas import Answer, AnswerEvent, DocInfo
from chatbot.service import ChatService
from chatbot.ui.conversation import ChatTurn, Conversation, apply_event
from chatbot.ui.render import render_conversation
from chatbot.verification import Passage
from tests.fakes import FakeEmbedder, ScriptedLLM

REPO = Path(__file__).resolve().parents[2]
INITIATIVE = (REPO / "corpus" / "shanghai-soe-ai-plus-initiative.txt").read_text(encoding="utf-8")
DOCS = {"init": DocInfo(doc_id="init", title="The initiative", source="a.txt", date="2024-07-06"),
        "recap": DocInfo(doc_id="recap", title="A recap", source="b.txt", date="2024-07-20")}


def passage(n: int, doc_id: str, text: str, sentence: str) -> Passage:
    start = text.index(sentence)
    return Passage(n, doc_id, start, start + len(sentence), sentence, 1.0, start, start + len(sentence), sentence)


def line_with(text: str, words: str) -> str:
    return next(line for line in text.splitlines() if words in line)


LAUNCH = passage(1, "init", INITIATIVE, line_with(INITIATIVE, "On July 6th"))
RECAP = ("The Shanghai State-owned Assets and State-owned Enterprises AI+ Action Initiative was jointly launched by "
         "representatives from 15 municipal state-owned enterprises.")


def find(question: str, answer: str, cited: list[Passage], shown: list[Passage]):
    return ConflictFinder().find(analyse_question(question), answer, cited, shown)


def test_two_counts_of_the_same_thing_in_two_documents_disagree():
    other = passage(2, "recap", RECAP, RECAP)
    found = find("How many municipal state-owned enterprises launched the initiative?",
                 "Representatives from 11 municipal state-owned enterprises launched it [1].", [LAUNCH], [LAUNCH, other])
    assert [(d.sides[0].value, d.sides[0].passage.doc_id, d.sides[1].value, d.sides[1].passage.doc_id)
            for d in found] == [("11", "init", "15", "recap")]


def test_different_numbers_about_different_things_do_not_disagree():
    other_text = "The recap was read by 15 municipal journalists at the press office."
    other = passage(2, "recap", other_text, other_text)
    assert find("How many municipal state-owned enterprises launched the initiative?",
                "Representatives from 11 municipal state-owned enterprises launched it [1].",
                [LAUNCH], [LAUNCH, other]) == []


def test_values_in_the_same_document_or_not_in_the_answer_are_not_a_disagreement():
    other = passage(2, "recap", RECAP, RECAP)
    same_doc = Passage(2, "init", other.start, other.end, other.text, 1.0)
    assert find("How many enterprises?", "11 enterprises launched it [1].", [LAUNCH], [LAUNCH, same_doc]) == []
    assert find("Who launched it?", "He Qing and Cheng Peng launched it [1].", [LAUNCH], [LAUNCH, other]) == []


def test_dates_of_the_same_event_disagree():
    diary = ("On July 9th, at the closing ceremony of the 2024 World Artificial Intelligence Conference, the "
             "Shanghai State-owned Assets and State-owned Enterprises AI+ Action Initiative was launched.")
    found = find("On what date was the initiative launched?", "It was launched on July 6th [1].", [LAUNCH],
                 [LAUNCH, passage(2, "diary", diary, diary)])
    assert [(d.about, d.sides[0].value, d.sides[1].value) for d in found] == [("date", "July 6th", "July 9th")]


def test_two_people_in_the_same_role_disagree():
    profile = ("Wang Lin is the Secretary of the Party Committee and Director of the Municipal State-owned Assets "
               "Supervision and Administration Commission.")
    found = find("Who is the Director of the Municipal State-owned Assets Supervision and Administration Commission?",
                 "He Qing is the Director of the commission [1].", [LAUNCH],
                 [LAUNCH, passage(2, "profile", profile, profile)])
    assert [(d.about, d.sides[0].value, d.sides[1].value) for d in found] == [("person", "He Qing", "Wang Lin")]


def test_a_chinese_source_disagrees_with_an_english_one_through_the_multilingual_cosine():
    funds = passage(1, "init", INITIATIVE, line_with(INITIATIVE, "mother funds"))
    zh = "上海市国资委设立了三大先导产业母基金，总规模为2000亿元。"
    found = ConflictFinder(lambda a, b: np.ones((len(a), len(b)))).find(
        analyse_question("What is the total scale of the mother funds?"),
        "The three funds have a total scale of 100 billion yuan [1].", [funds], [funds, passage(2, "zh", zh, zh)])
    assert [(d.sides[0].value, d.sides[1].value) for d in found] == [("100 billion", "2000亿")]
    unrelated = ConflictFinder(lambda a, b: np.zeros((len(a), len(b)))).find(
        analyse_question("What is the total scale of the mother funds?"),
        "The three funds have a total scale of 100 billion yuan [1].", [funds], [funds, passage(2, "zh", zh, zh)])
    assert unrelated == []


def test_the_answer_states_both_values_with_citations_titles_and_dates():
    other = passage(2, "recap", RECAP, RECAP)
    answer = "Representatives from 11 municipal state-owned enterprises launched it [1]."
    found = find("How many municipal state-owned enterprises launched the initiative?", answer, [LAUNCH],
                 [LAUNCH, other])
    text, cited, values = state_disagreements("en", answer, [LAUNCH], found, DOCS)
    assert text == (answer + " The sources disagree: “The initiative” (2024-07-06) says 11 [1]; “A recap” "
                    "(2024-07-20) says 15 [2].")
    assert [(p.n, p.doc_id) for p in cited] == [(1, "init"), (2, "recap")]
    assert [(v.value, v.citation, v.source, v.date, v.doc_id) for v in values] == [
        ("11", 1, "The initiative", "2024-07-06", "init"), ("15", 2, "A recap", "2024-07-20", "recap")]
    zh, _, _ = state_disagreements("zh", "由11家市属国有企业发起[1]。", [LAUNCH], found, DOCS)
    assert zh.endswith("来源说法不一：《The initiative》（2024-07-06）称11[1]；《A recap》（2024-07-20）称15[2]。")


def test_the_contract_carries_conflicts_and_old_answers_still_parse():
    assert Answer.model_validate({"question": "q", "answer": "a", "refused": False, "language": "en"}).conflicts == []
    answer = Answer(question="q", answer="a", refused=False, language="en",
                    conflicts=[{"value": "11", "citation": 1, "source": "The initiative", "date": "2024-07-06"}])
    data = answer.model_dump()
    assert data["conflicts"] == [{"value": "11", "citation": 1, "source": "The initiative", "doc_id": "",
                                  "date": "2024-07-06", "about": ""}]


class _Library:
    def documents(self):
        return list(DOCS.values())

    def document_text(self, doc_id: str) -> str:
        return INITIATIVE if doc_id == "init" else RECAP


def test_the_chat_shows_a_sources_disagree_notice():
    other = passage(2, "recap", RECAP, RECAP)
    answer = "Representatives from 11 municipal state-owned enterprises launched it [1]."
    found = find("How many enterprises launched it?", answer, [LAUNCH], [LAUNCH, other])
    text, cited, values = state_disagreements("en", answer, [LAUNCH], found, DOCS)
    result = Answer(question="How many?", answer=text, refused=False, language="en",
                    citations=[Citer(DOCS).citation(p) for p in cited], conflicts=values)
    turn = ChatTurn(question="How many?")
    apply_event(turn, AnswerEvent(answer=result), _Library())
    html = render_conversation(Conversation(turns=[turn]), "en")
    assert "The sources disagree" in html and 'class="cb-disagree"' in html and "A recap" in html
    plain = render_conversation(Conversation(turns=[ChatTurn(question="q", phase="done", answer=Answer(
        question="q", answer="a [1].", refused=False, language="en"))]), "en")
    assert "cb-disagree" not in plain


def test_the_workflow_shows_a_planted_conflict(tmp_path, corpus_dir):
    (corpus_dir / "recap.txt").write_text(RECAP + "\n", encoding="utf-8")
    embedders = Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", collection_prefix="t",
                        relevance_floor=0.2, instruction_similarity=1.01)
    build_index(settings, embedders=embedders, progress=False)
    retriever = HybridRetriever(settings, embedders)
    question = "How many municipal state-owned enterprises jointly launched the initiative?"
    evidence = retriever.retrieve(analyse_question(question)).evidence
    assert any(e.doc_id == "recap" for e in evidence)
    n = next(i for i, e in enumerate(evidence, 1) if "11 municipal" in e.text)
    service = ChatService(settings, embedders=embedders, retriever=retriever, llm=ScriptedLLM(
        f"Representatives from 11 municipal state-owned enterprises jointly launched it [{n}]."))
    answer = service.ask(question)
    assert not answer.refused and "The sources disagree" in answer.answer
    assert {(c.value, c.doc_id) for c in answer.conflicts} == {("11", "shanghai-soe-ai-plus-initiative"),
                                                              ("15", "recap")}
    cited = {c.n: c.doc_id for c in answer.citations}
    assert all(cited[c.citation] == c.doc_id for c in answer.conflicts)


def test_another_person_in_another_role_is_no_disagreement():
    profile = ("Wang Lin is the Secretary of the Party Committee and Director of the Municipal State-owned Assets "
               "Supervision and Administration Commission.")
    assert find("Who is the Secretary of the Party Committee for Economic and Information Technology Work?",
                "Cheng Peng is the Secretary of the Party Committee for Economic and Information Technology Work [1].",
                [LAUNCH], [LAUNCH, passage(2, "profile", profile, profile)]) == []


def test_another_thing_of_the_same_kind_is_no_disagreement():
    """Two libraries' counts of books: the question names one of them, the other passage does not."""
    riverton = "The Riverton Public Library now holds about 120,000 books."
    nanhu = "The Nanhu Library now holds about 80,000 books."
    a, b = passage(1, "riverton", riverton, riverton), passage(2, "nanhu", nanhu, nanhu)
    assert find("How many books does the Riverton Public Library hold?", "It holds about 120,000 books [1].",
                [a], [a, b]) == []
    assert ConflictFinder().disagree(riverton, nanhu)  # with no question, the same count of the same noun
    assert not ConflictFinder().disagree(riverton, nanhu, analyse_question("How many books does the Riverton "
                                                                           "Public Library hold?"))


def test_the_other_side_of_a_conflict_reaches_the_evidence_even_when_not_retrieved(tmp_path, corpus_dir):
    """Only one chunk retrieved (top_k 1): the sentence of the other document that gives another count of the same
    thing is found through the evidence sentence's nearest chunks, and added."""
    (corpus_dir / "recap.txt").write_text(RECAP + "\n", encoding="utf-8")
    embedders = Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", collection_prefix="t",
                        relevance_floor=0.2, instruction_similarity=1.01, top_k=1)
    build_index(settings, embedders=embedders, progress=False)
    question = analyse_question("How many municipal state-owned enterprises jointly launched the AI+ Action "
                                "Initiative?")
    with_probe = HybridRetriever(settings, embedders).retrieve(question)
    assert len({c.chunk.doc_id for c in with_probe.chunks}) == 1
    stated = {e.doc_id for e in with_probe.evidence if "municipal state-owned enterprises" in e.text}
    assert stated == {"recap", "shanghai-soe-ai-plus-initiative"}
    without = HybridRetriever(settings.model_copy(update={"conflict_evidence_extra": 0}), embedders).retrieve(question)
    assert len({e.doc_id for e in without.evidence}) == 1
