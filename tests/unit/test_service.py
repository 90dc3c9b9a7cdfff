import shutil
from pathlib import Path

import pytest

from chatbot.checks import Verdict
from chatbot.config import Settings
from chatbot.embeddings import Embedders
from chatbot.errors import (
    DocumentNotFound, EmptyQuestion, HistoryTooLong, IndexMissing, LLMUnavailable, QuestionTooLong,
)
from chatbot.ingest import build_index
from chatbot.query import analyse_question
from chatbot.retrieval import HybridRetriever
from chatbot.service import ChatService
from tests.conftest import CORPUS_FILE
from tests.fakes import FakeEmbedder, ScriptedLLM


@pytest.fixture(scope="module")
def built_index(tmp_path_factory) -> tuple[Settings, Embedders, str]:
    """The real corpus indexed once for the module with the fake embedders (the tests only read it)."""
    root = tmp_path_factory.mktemp("service")
    corpus_dir = root / "corpus"
    corpus_dir.mkdir()
    shutil.copy(CORPUS_FILE, corpus_dir)
    shutil.copy(CORPUS_FILE.parent / "manifest.toml", corpus_dir)
    embedders = Embedders(FakeEmbedder("minilm"), FakeEmbedder("use"))
    settings = Settings(corpus_dir=corpus_dir, index_dir=root / "index", collection_prefix="t",
                        relevance_floor=0.2)
    build_index(settings, embedders=embedders, progress=False)
    return settings, embedders, CORPUS_FILE.read_text(encoding="utf-8")


@pytest.fixture
def service_factory(built_index):
    settings, embedders, doc_text = built_index
    retriever = HybridRetriever(settings, embedders)  # each test's own: tests may replace its methods

    def make(*replies: str, **overrides) -> tuple[ChatService, ScriptedLLM, str]:  # noqa: ANN003
        """overrides: settings of the answer path (the index is the same; the retriever reads them too)."""
        llm = ScriptedLLM(*replies)
        s = settings.model_copy(update=overrides) if overrides else settings
        r = HybridRetriever(s, embedders) if overrides else retriever
        return ChatService(s, embedders=embedders, retriever=r, llm=llm), llm, doc_text

    return make


def test_cited_answer_points_at_the_exact_document_span(service_factory):
    service, llm, doc = service_factory()
    question = "How many municipal state-owned enterprises jointly launched the initiative?"
    first = service.retriever.retrieve(analyse_question(question)).evidence
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


# The typed stream ---------------------------------------------------------------------------------------------


def test_stream_events_come_in_order_and_the_answer_replaces_the_drafts(service_factory):
    service, llm, _ = service_factory()
    question = "How many municipal state-owned enterprises jointly launched the initiative?"
    evidence = service.retriever.retrieve(analyse_question(question)).evidence
    n = next(i for i, e in enumerate(evidence, 1) if "11 municipal" in e.text)
    llm.replies.append(f"Representatives from 11 municipal state-owned enterprises jointly launched it [{n}].")
    events = list(service.ask_stream(question))
    kinds = [e.type for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "answer"
    assert set(kinds[1:-1]) == {"draft"} and len(kinds) > 3  # streamed in pieces
    sources = events[0]
    assert sources.relevant and [s.n for s in sources.sources] == list(range(1, len(evidence) + 1))
    assert sources.sources[n - 1].text == evidence[n - 1].text and sources.sources[0].title.startswith("Shanghai")
    assert sources.chunks and not sources.rewritten and sources.question == question
    draft = "".join(e.delta for e in events if e.type == "draft")
    assert f"[{n}]" in draft  # the draft numbers sources as the prompt did
    answer = events[-1].answer
    cited, shown = answer.citations[0], sources.sources[n - 1]
    assert answer.answer.endswith("[1].") and cited.doc_id == shown.doc_id
    assert shown.start <= cited.start < cited.end <= shown.end  # the clause of the source it came from
    assert answer.citations[0].outlet == "Coin World" and answer.citations[0].date == "2024-07-06"


def test_stream_of_an_off_topic_question_has_no_drafts(service_factory):
    service, llm, _ = service_factory()
    events = list(service.ask_stream("What is the capital of France?"))
    assert [e.type for e in events] == ["sources", "answer"]
    assert not events[0].relevant and events[0].sources == [] and events[1].answer.refused
    assert llm.prompts == []


def test_bad_input_is_refused_before_the_first_event(service_factory):
    service, llm, _ = service_factory()
    with pytest.raises(EmptyQuestion):
        service.ask_stream("")  # raised on the call itself, not on iteration
    with pytest.raises(QuestionTooLong):
        service.ask_stream("x" * 10_000)
    with pytest.raises(HistoryTooLong):
        service.ask_stream("And then?", history=[{"role": "user", "content": "y" * 9000}])
    with pytest.raises(DocumentNotFound):
        service.ask_stream("Who launched it?", doc_ids=["no-such-document"])
    assert llm.prompts == []


def test_an_llm_that_does_not_answer_ends_the_stream_with_quotes_not_an_error(service_factory):
    service, llm, doc = service_factory()

    def broken(messages, *, max_tokens):
        raise LLMUnavailable("Cannot reach the hosted LLM at http://127.0.0.1:9/v1.")
        yield ""  # pragma: no cover

    llm.stream = broken
    events = list(service.ask_stream("How many municipal state-owned enterprises launched the initiative?"))
    assert [e.type for e in events] == ["sources", "answer"]
    answer = events[-1].answer
    assert answer.mode == "extractive" and not answer.refused and answer.citations
    assert all(doc[c.start : c.end] == c.text and f"“{c.text}” [{c.n}]" in answer.answer for c in answer.citations)
    assert service.gate.active == 0  # the model is free again


def test_follow_up_is_rewritten_with_the_conversation_before_retrieval(service_factory):
    service, llm, _ = service_factory()
    rewriter = ScriptedLLM("How many municipal state-owned enterprises launched the initiative?")
    service.rewriter = rewriter
    history = [{"role": "user", "content": "Who launched the AI+ Action Initiative?"},
               {"role": "assistant", "content": "Municipal state-owned enterprises launched it [1]."}]
    events = list(service.ask_stream("And how many of them?", history=history))
    sources = events[0]
    assert sources.rewritten and sources.question.startswith("How many municipal")
    assert "Who launched the AI+ Action Initiative?" in rewriter.prompts[0][-1]["content"]
    assert "[1]" not in rewriter.prompts[0][-1]["content"]  # markers stripped from earlier answers
    assert "How many municipal" in llm.prompts[0][-1]["content"]  # the model answers the standalone question
    answer = events[-1].answer
    assert answer.question == "And how many of them?" and answer.standalone_question == sources.question


def test_rewrite_in_another_language_falls_back_to_the_users_words(service_factory):
    service, _, _ = service_factory()
    service.rewriter = ScriptedLLM("How many employees does it have?")
    events = list(service.ask_stream("他们有多少员工？", history=[{"role": "user", "content": "上海电气在做什么？"}]))
    assert not events[0].rewritten and events[0].question == "他们有多少员工？"


def test_a_rewrite_that_turned_the_question_into_a_statement_is_not_searched(service_factory):
    service, llm, _ = service_factory()
    service.rewriter = ScriptedLLM("Municipal state-owned enterprises launched the initiative.")
    history = [{"role": "user", "content": "Who launched the AI+ Action Initiative?"},
               {"role": "assistant", "content": "Municipal state-owned enterprises launched it [1]."}]
    events = list(service.ask_stream("And how many of them?", history=history))
    assert not events[0].rewritten and events[0].question == "And how many of them?"
    assert all("launched the initiative." not in m["content"] for p in llm.prompts for m in p)


def test_the_gate_serves_one_generation_at_a_time_in_arrival_order():
    import threading
    import time

    from chatbot.errors import Busy
    from chatbot.gate import GenerationGate

    gate = GenerationGate(slots=1, max_waiting=2)
    order: list[int] = []
    inside = 0
    most = 0
    lock = threading.Lock()

    def work(i: int) -> None:
        nonlocal inside, most
        with gate.hold():
            with lock:
                inside += 1
                most = max(most, inside)
            order.append(i)
            time.sleep(0.05)
            with lock:
                inside -= 1

    holder = gate.hold()
    holder.__enter__()
    threads = []
    for i in range(2):
        t = threading.Thread(target=work, args=(i,))
        t.start()
        threads.append(t)
        while gate.waiting < i + 1:
            time.sleep(0.005)
    with pytest.raises(Busy) as full:  # a third waiter finds the line full
        with gate.hold():
            pass
    assert full.value.status_code == 503 and full.value.retry_after >= 1
    holder.__exit__(None, None, None)
    for t in threads:
        t.join()
    assert order == [0, 1] and most == 1 and gate.active == 0 and gate.waiting == 0


def test_closing_a_stream_midway_frees_the_model(service_factory):
    service, llm, _ = service_factory("Eleven municipal state-owned enterprises launched it [1] " * 5)
    stream = service.ask_stream("How many municipal state-owned enterprises launched the initiative?")
    for event in stream:
        if event.type == "draft":
            break
    assert service.gate.active == 1
    stream.close()  # what an adapter does when its client goes away
    assert service.gate.active == 0


# The answer path: clauses, premises, Chinese answers, the cache -------------------------------------------------


def _numbered(service, question, needle):
    evidence = service.retriever.retrieve(analyse_question(question)).evidence
    return next(i for i, e in enumerate(evidence, 1) if needle in e.text), evidence


def test_the_citation_is_the_clause_inside_its_sentence(service_factory):
    service, llm, doc = service_factory()
    question = "How many digital labor positions did China Taiping construct?"
    n, _ = _numbered(service, question, "11 Taiping digital labor positions")
    llm.replies.append(f"China Taiping constructed 11 Taiping digital labor positions [{n}].")
    a = service.ask(question)
    assert not a.refused, a
    cited = [c for c in a.citations if "11 Taiping digital labor positions" in c.text]
    assert cited and len(cited[0].text) < 120  # the clause, not the 700-character sentence
    c = cited[0]
    assert doc[c.start : c.end] == c.text
    assert c.context_start <= c.start < c.end <= c.context_end and c.context_end - c.context_start > 400
    # The prompt shows the sentence cut to its subject and the clauses that match the question.
    prompt = llm.prompts[0][-1]["content"]
    assert "China Taiping Insurance is building" in prompt and "constructing 11 Taiping digital labor positions" in prompt
    assert "… constructing 11" in prompt or "benchmarks, constructing 11" in prompt


def test_a_false_premise_is_corrected_with_the_clause_that_states_the_number(service_factory):
    service, llm, doc = service_factory("20 municipal state-owned enterprises launched it [1].")
    a = service.ask("Why did 20 municipal state-owned enterprises launch the initiative?")
    assert not a.refused and "11" in a.answer and "20" in a.answer, a.answer
    assert "11 municipal state-owned enterprises" in a.citations[0].text and len(a.citations[0].text) < 200
    assert a.unsupported == ["20 municipal state-owned enterprises launched it."]  # kept, not dropped
    assert "say 11, not 20" in llm.prompts[0][-1]["content"]  # the model was told, too


def test_a_quoted_term_given_to_the_wrong_company_is_corrected_with_the_sentence_that_states_it(service_factory):
    # the (scripted) model goes along with the premise; the answer corrects it from the documents
    service, llm, doc = service_factory("Shanghai Electric's “All in AI” strategy involves computing power [1].")
    a = service.ask("What does Shanghai Electric's “All in AI” strategy involve?")
    assert not a.refused and "Guotai Junan" in a.answer and "not Shanghai Electric" in a.answer, a.answer
    c = a.citations[0]
    assert doc[c.start : c.end] == c.text and "“All in AI”" in c.text and c.text.startswith("Guotai Junan")
    assert "Guotai Junan Securities, not Shanghai Electric" in llm.prompts[0][-1]["content"]  # the model was told
    assert "“All in AI”" in llm.prompts[0][-1]["content"]  # the sentence that states the term is evidence
    # a model that names the right company by copying its sentence still gets the correction, which says "not"
    service, llm, doc = service_factory("Guotai Junan Securities vigorously promotes the “All in AI” strategy [1].")
    a = service.ask("What does Shanghai Electric's “All in AI” strategy involve?")
    assert "not Shanghai Electric" in a.answer, a.answer


def test_a_question_with_a_number_the_documents_do_not_discuss_is_refused_not_quoted(service_factory):
    service, llm, _ = service_factory("The documents do not say.")
    a = service.ask("What was Shanghai Electric's profit in 2023?")
    assert a.refused and a.citations == [] and "don't contain" in a.answer
    assert llm.prompts and "Note:" not in llm.prompts[0][-1]["content"]


def test_a_number_about_something_else_is_not_an_answer(service_factory):
    service, llm, _ = service_factory()
    question = "How many people does China Taiping employ?"
    evidence = service.retriever.retrieve(analyse_question(question)).evidence
    n = next((i for i, e in enumerate(evidence, 1) if "49 companies" in e.text), 1)
    llm.replies.append(f"China Taiping employs 49 people [{n}].")
    assert service.ask(question).refused


def test_a_chinese_question_is_searched_in_english_and_answered_in_chinese(service_factory):
    service, llm, _ = service_factory()
    english = "How many digital labor positions did China Taiping construct?"
    service.translator = ScriptedLLM(english, english)
    searched = []
    search, select = service.retriever.search, service.retriever.select_evidence

    def spy(query, **kwargs):  # the fake embedders cannot match Chinese to English: search the translation
        searched.append(kwargs.get("translation"))
        translation = kwargs.pop("translation")
        return search(analyse_question(translation) if translation else query, **kwargs)

    def select_spy(query, found, **kwargs):  # the evidence of the English question, as its search found
        return select(analyse_question(found.queries[0]), found, **kwargs)

    service.retriever.search, service.retriever.select_evidence = spy, select_spy
    question = "中国太平构建了多少个数字员工岗位？"
    events = list(service.ask_stream(question))
    assert searched == [english] and "中国太平" in service.translator.prompts[0][-1]["content"]
    n = next(s.n for s in events[0].sources if "11 Taiping digital labor positions" in s.text)
    service.cache.clear()
    llm.replies.append(f"中国太平构建了11个数字员工岗位[{n}].")
    a = service.ask(question)
    assert a.language == "zh" and not a.refused, a
    assert a.answer == "中国太平构建了11个数字员工岗位[1]。"  # Chinese punctuation after the marker


def test_a_repeated_question_is_answered_from_the_cache_as_a_stream(service_factory):
    service, llm, _ = service_factory()
    question = "How many municipal state-owned enterprises jointly launched the initiative?"
    n, _ = _numbered(service, question, "11 municipal")
    llm.replies.append(f"11 municipal state-owned enterprises jointly launched it [{n}].")
    first = service.ask(question, id="a")
    events = list(service.ask_stream("how many municipal state-owned enterprises jointly launched the initiative",
                                     id="b"))
    assert [e.type for e in events] == ["sources", "answer"] and events[0].sources
    again = events[-1].answer
    assert again.answer == first.answer and again.citations == first.citations and again.id == "b"
    assert "cache" in again.timings_ms and again.timings_ms["total"] < 50
    assert len(llm.prompts) == 1  # the model was asked once
    # A different conversation before it is a different question.
    service.rewriter = ScriptedLLM("How many municipal state-owned enterprises jointly launched the initiative?")
    list(service.ask_stream(question, history=[{"role": "user", "content": "Who launched it?"}]))
    assert len(llm.prompts) == 2


def search_the_translation(service, english: str):  # noqa: ANN001, ANN201
    """The scripted translator gives `english`; retrieval searches it, since the fake embedders cannot match Chinese
    to English. Returns the original retrieve function."""
    service.translator = ScriptedLLM(english)
    retrieve = service.retriever.retrieve
    search, select = service.retriever.search, service.retriever.select_evidence

    def search_spy(query, **kwargs):  # noqa: ANN001, ANN003, ANN202
        translation = kwargs.pop("translation")
        return search(analyse_question(translation) if translation else query, **kwargs)

    def select_spy(query, found, **kwargs):  # noqa: ANN001, ANN003, ANN202 - the English question's evidence
        return select(analyse_question(found.queries[0]), found, **kwargs)

    service.retriever.search, service.retriever.select_evidence = search_spy, select_spy
    return retrieve


def test_a_half_translated_chinese_answer_is_replaced_by_a_translated_english_one(service_factory):
    service, llm, _ = service_factory()
    english = "How many digital labor positions did China Taiping construct?"
    retrieve = search_the_translation(service, english)
    evidence = retrieve(analyse_question(english)).evidence
    n = next(i for i, e in enumerate(evidence, 1) if "11 Taiping digital labor positions" in e.text)
    llm.replies += [f"中国太平构建了11个Taiping digital labor positions[{n}].",
                    f"Taiping constructed 11 digital labor positions [{n}]."]
    service.translator.replies.append("N1构建了11个数字劳动岗位[1]。")  # N1: the protected name Taiping
    a = service.ask("中国太平构建了多少个数字员工岗位？")
    assert not a.refused and a.answer == "Taiping构建了11个数字劳动岗位[1]。", a
    assert "(Answer in English.)" in llm.prompts[1][-1]["content"]


def test_a_chinese_false_premise_is_corrected_in_the_users_own_words(service_factory):
    service, llm, _ = service_factory()
    english = "Why did China Taiping construct 15 digital labor positions?"
    search_the_translation(service, english)
    llm.replies.append("中国太平为了提高效率构建了数字员工岗位。")  # the model does not correct the premise
    a = service.ask("中国太平为什么构建了十五个数字员工岗位？")
    assert not a.refused and a.language == "zh"
    assert a.answer == "文件中说的是11，而不是十五[1]。", a.answer  # "十五" as asked, not the translation's "15"
    assert "11 Taiping digital labor positions" in a.citations[0].text


def test_an_unsupported_answer_is_refused_after_one_generation_with_its_reason(service_factory):
    service, llm, _ = service_factory("China Taiping spent 7 billion yuan on the model [1].")
    answer = service.ask("How much did China Taiping spend on its insurance large model?")
    assert answer.refused and len(llm.prompts) == 1
    assert [(r.text, r.check) for r in answer.removed] == [("China Taiping spent 7 billion yuan on the model.",
                                                            "support")]
    assert "7 billion" in answer.removed[0].reason or "not" in answer.removed[0].reason
    assert answer.refusal_reason  # why it was refused, for the chat and the eval report


class ScriptedVerdicts:
    """A check that fails with a scripted reason, or passes (reason None); records the answers it saw."""

    def __init__(self, name: str, reason: str | None) -> None:
        self.name, self.reason, self.seen = name, reason, []

    def check(self, answer, ctx):  # noqa: ANN001, ANN201
        self.seen.append(answer.answer)
        return Verdict(self.name, self.reason) if self.reason else None


def test_checks_run_in_order_and_the_first_that_fails_refuses_with_its_reason(service_factory):
    """A new check is a class in the list: the first that fails refuses the supported answer, the contract keeps
    its name and reason, and the checks after it are not asked."""
    service, llm, _ = service_factory()
    question = "How many municipal state-owned enterprises jointly launched the initiative?"
    n = next(i for i, e in enumerate(service.retriever.retrieve(analyse_question(question)).evidence, 1) if "11 municipal" in e.text)
    passes, fails, later = (ScriptedVerdicts("passes", None), ScriptedVerdicts("dates", "no date was asked"),
                            ScriptedVerdicts("later", "never asked"))
    service = ChatService(service.settings, embedders=service.embedders, retriever=service.retriever, llm=llm,
                          checks=[passes, fails, later])
    llm.replies.append(f"11 municipal state-owned enterprises jointly launched it [{n}].")
    answer = service.ask(question)
    assert answer.refused and answer.refusal_reason == "no date was asked"
    assert answer.removed[-1].check == "dates" and answer.removed[-1].text.startswith("11 municipal")
    assert len(passes.seen) == 1 and len(fails.seen) == 1 and later.seen == []
    assert answer.unsupported == [answer.removed[-1].text]


def test_irrelevant_question_is_refused_with_the_reason(service_factory):
    service, llm, _ = service_factory()
    answer = service.ask("What is the capital of France?")
    assert answer.refused and "not about the question" in answer.refusal_reason and llm.prompts == []


def test_a_number_only_the_translation_has_is_no_premise_of_the_users():
    """哪个 became "Which of the two": the user asked about no number, so nothing is corrected (it once read
    "文件中说的是一，而不是two"). A number the user wrote is kept, in their words."""
    from chatbot.premise import PremiseConflict
    from chatbot.query import analyse_question
    from chatbot.composer import asked_as_written as _asked_as_written

    asked = analyse_question("金山中学和南湖图书馆，哪个建成得更早？")
    searched = analyse_question("Which of the two, Jinshan Middle School or Nanhu Library, was built earlier?")
    assert searched.quantities and not asked.quantities
    assert _asked_as_written(PremiseConflict(asked="two", stated="one", passage=1), searched, asked) is None
    asked = analyse_question("中国太平为什么构建了十五个数字员工岗位？")
    searched = analyse_question("Why did China Taiping construct fifteen digital labor positions?")
    kept = _asked_as_written(PremiseConflict(asked="fifteen", stated="11", passage=1), searched, asked)
    assert kept is not None and kept.asked == "十五" and kept.stated == "11"
