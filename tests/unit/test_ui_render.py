"""The chat's view of the answer stream and its HTML: drafts look provisional, citations point at their exact
spans, refusals say what the documents cover, document text is escaped. No models: scripted events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from chatbot.config import Settings
from chatbot.db import Database
from chatbot.errors import Busy, NotReady, QuestionTooLong
from chatbot.schemas import (
    Answer,
    AnswerEvent,
    Citation,
    Removed,
    DraftEvent,
    ErrorEvent,
    RetrievedChunk,
    Source,
    SourcesEvent,
)
from chatbot.text import CJK
from chatbot.ui.conversation import ChatTurn, Conversation, apply_event, passage_around
from chatbot.ui.handlers import ChatHandlers, feedback_settings
from chatbot.ui.render import (
    answer_runs,
    answer_segments,
    render_conversation,
    render_documents,
    render_header,
    render_reader,
)

TEXT = (
    "The news is reported by Coin World.\n"
    "Eleven enterprises launched the <AI+> initiative on July 6th. "
    "China Taiping built 1.05 million data instructions & 11 digital labor positions. "
    "The Airport Group is building an intelligent hub."
)


def span_of(sentence: str) -> tuple[int, int]:
    start = TEXT.index(sentence)
    return start, start + len(sentence)


LAUNCH = span_of("Eleven enterprises launched the <AI+> initiative on July 6th.")
TAIPING = span_of("China Taiping built 1.05 million data instructions & 11 digital labor positions.")


@dataclass
class FakeDoc:
    doc_id: str = "initiative"
    title: str = "AI+ Initiative <launched>"
    source: str = "corpus/initiative.txt"
    outlet: str = "Coin World"
    date: str = "2024-07-06"
    language: str = "en"
    chunks: int = 3
    chars: int = len(TEXT)
    indexed_at: str = "2026-11-29T09:34:04+0000"


class FakeLibrary:
    """One indexed document, as ChatService.documents() / document_text() give it."""

    def documents(self) -> list[FakeDoc]:
        return [FakeDoc()]

    def document_text(self, doc_id: str) -> str:
        assert doc_id == "initiative"
        return TEXT


def citation(n: int, span: tuple[int, int]) -> Citation:
    return Citation(n=n, doc_id="initiative", source="corpus/initiative.txt", title="AI+ Initiative <launched>",
                    outlet="Coin World", date="2024-07-06", start=span[0], end=span[1],
                    text=TEXT[span[0]:span[1]], score=0.8)


def source(n: int, span: tuple[int, int]) -> Source:
    return Source(n=n, doc_id="initiative", start=span[0], end=span[1], text=TEXT[span[0]:span[1]], score=0.8)


def answered(text: str, citations: list[Citation], unsupported: list[str] | None = None,
             standalone: str | None = None) -> Answer:
    return Answer(question="q", answer=text, refused=False, language="en", citations=citations,
                  unsupported=unsupported or [], standalone_question=standalone, timings_ms={"total": 4200.0})


def refusal(language: str = "en") -> Answer:
    return Answer(question="q", answer="The documents don't contain the answer to this question.", refused=True,
                  language=language)


def stream(*answer_events: object, relevant: bool = True) -> list[object]:
    sources = [source(1, LAUNCH), source(2, TAIPING)] if relevant else []
    return [SourcesEvent(question="q", language="en", relevant=relevant, sources=sources,
                         chunks=[RetrievedChunk(doc_id="initiative", start=0, end=len(TEXT), score=0.5)]),
            *answer_events]


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def turn_through(events: list[object], question: str = "Who launched it?") -> tuple[Conversation, ChatTurn]:
    conversation = Conversation()
    turn = conversation.start(question)
    for event in events:
        apply_event(turn, event, FakeLibrary())  # type: ignore[arg-type]
    return conversation, turn


# Answer text -------------------------------------------------------------------------------------------------


def test_answer_segments_split_markers_and_know_their_sentences() -> None:
    _, turn = turn_through(stream(AnswerEvent(answer=answered("Eleven [1]. Also 1.05 million [1, 2].",
                                                              [citation(1, LAUNCH), citation(2, TAIPING)]))))
    segments = answer_segments(turn.answer.answer, turn.cited)
    assert [s.text for s in segments] == ["Eleven", "[1]", ". Also 1.05 million", "[1]", "[2]", "."]
    assert [s.cited for s in segments if s.n] == [TEXT[slice(*LAUNCH)], TEXT[slice(*LAUNCH)], TEXT[slice(*TAIPING)]]
    assert answer_segments("No source [7].")[1].cited is None


def test_markers_stay_on_the_line_of_their_word_and_punctuation() -> None:
    def runs(text: str) -> list[tuple[bool, str]]:
        return [(r.keep_together, "".join(s.text for s in r.segments)) for r in answer_runs(text)]

    assert runs("Over 100 million yuan [1][2]. Next.") == [(False, "Over 100 million "), (True, "yuan[1][2]."),
                                                          (False, " Next.")]
    assert runs("打造了8个平台[1]。") == [(False, "打造了8个"), (True, "平台[1]。")]  # two characters, not the sentence
    assert "".join(t for _, t in runs("A [1], b [2] c")).replace("[1]", " [1]").replace("[2]", " [2]") == \
        "A [1], b [2] c"


def test_passage_around_keeps_the_exact_span_and_whole_words() -> None:
    before, span, after, clipped_before, clipped_after = passage_around(TEXT, *TAIPING, margin=20)
    assert span == TEXT[slice(*TAIPING)]
    assert TEXT[: TAIPING[0]].endswith(before) and TEXT[TAIPING[1]:].startswith(after)
    assert before and not before[0].isspace() and TEXT[TAIPING[0] - len(before) - 1] in " \n"
    assert clipped_before and clipped_after
    assert passage_around(TEXT, 0, 10, margin=5)[3] is False


# The conversation HTML ---------------------------------------------------------------------------------------


def test_draft_looks_provisional_and_not_like_an_answer() -> None:
    conversation, turn = turn_through(stream(DraftEvent(delta="Eleven enterprises "), DraftEvent(delta="[1]")))
    assert turn.phase == "drafting" and turn.draft == "Eleven enterprises [1]"
    page = soup(render_conversation(conversation, "en"))
    draft = page.select_one(".cb-draft")
    assert draft is not None and "not verified" in draft.get_text()
    assert draft.select_one(".cb-draft-text").get_text() == "Eleven enterprises [1]"
    assert not page.select(".cb-answer, .cb-cite, .cb-feedback, .cb-verified")


def test_verified_answer_replaces_the_draft_with_clickable_citations_and_highlighted_spans() -> None:
    answer = answered("Eleven enterprises launched it [1]. Taiping built 1.05 million instructions [2].",
                      [citation(1, LAUNCH), citation(2, TAIPING)])
    conversation, turn = turn_through(stream(DraftEvent(delta="draft text"), AnswerEvent(answer=answer)))
    page = soup(render_conversation(conversation, "en"))
    assert not page.select(".cb-draft")
    assert "draft text" not in page.get_text()
    body = page.select_one(".cb-answer")
    assert "Verified" in body.select_one(".cb-verified").get_text()
    cites = body.select(".cb-cite[data-n]")
    assert [c["data-n"] for c in cites] == ["1", "2"]
    assert cites[0]["data-tip"] == TEXT[slice(*LAUNCH)]  # hovering shows the cited sentence, unescaped text
    for card in body.select(".cb-source"):
        start, end = int(card["data-start"]), int(card["data-end"])
        assert card.select_one("mark").get_text() == TEXT[start:end]
        opener = card.select_one("[data-action=open_doc]")
        assert (opener["data-doc"], opener["data-start"], opener["data-end"]) == ("initiative", str(start), str(end))
        assert "Coin World · 2024-07-06" in card.get_text()
    assert len(body.select(".cb-rate")) == 2  # thumbs up and down


def test_a_cited_clause_is_marked_inside_its_sentence() -> None:
    clause = span_of("China Taiping built 1.05 million data instructions")
    cited = citation(1, clause).model_copy(update={"context_start": TAIPING[0], "context_end": TAIPING[1]})
    conversation, turn = turn_through(stream(AnswerEvent(answer=answered("Taiping built them [1].", [cited]))))
    card = soup(render_conversation(conversation, "en")).select_one(".cb-source")
    assert card.select_one("mark").get_text() == TEXT[slice(*clause)]
    assert card.select_one(".cb-sentence").get_text() == TEXT[slice(*TAIPING)]
    opener = card.select_one("[data-action=open_doc]")
    assert (int(opener["data-sentence-start"]), int(opener["data-sentence-end"])) == TAIPING
    tip = soup(render_conversation(conversation, "en")).select_one(".cb-cite")["data-tip"]
    assert tip == TEXT[slice(*TAIPING)]  # hovering shows the whole sentence, not a fragment
    reader = soup(render_reader("en", FakeLibrary().documents()[0], TEXT, *clause, sentence=TAIPING))  # type: ignore[arg-type]
    assert reader.select_one("mark.cb-doc-hl").get_text() == TEXT[slice(*clause)]
    assert reader.select_one(".cb-sentence").get_text() == TEXT[slice(*TAIPING)]
    assert reader.select_one(".cb-reader-body").get_text() == TEXT


def test_removed_sentences_are_visible() -> None:
    answer = answered("Eleven enterprises launched it [1].", [citation(1, LAUNCH)],
                      unsupported=["It was raining.", "Twenty people attended."])
    conversation, _ = turn_through(stream(AnswerEvent(answer=answer)))
    removed = soup(render_conversation(conversation, "en")).select_one("details.cb-removed")
    assert removed.summary.get_text() == "2 sentences removed as unsupported"
    assert [li.get_text() for li in removed.select("li")] == ["It was raining.", "Twenty people attended."]


def test_removed_sentences_show_why_each_was_removed() -> None:
    answer = answered("Eleven enterprises launched it [1].", [citation(1, LAUNCH)],
                      unsupported=["It was raining."])
    answer.removed = [Removed(text="It was raining.", reason="no citation")]
    conversation, _ = turn_through(stream(AnswerEvent(answer=answer)))
    removed = soup(render_conversation(conversation, "en")).select_one("details.cb-removed")
    assert removed.summary.get_text() == "1 sentence removed as unsupported"
    assert [li.get_text() for li in removed.select("li")] == ["It was raining. (no citation)"]


def test_a_refusal_says_why() -> None:
    answer = refusal().model_copy(update={"refusal_reason": "the retrieved passages are not about the question"})
    conversation, _ = turn_through(stream(AnswerEvent(answer=answer), relevant=False), question="Who won?")
    why = soup(render_conversation(conversation, "en")).select_one(".cb-refusal .cb-why")
    assert why.get_text() == "Why: the retrieved passages are not about the question"


def test_refusal_is_distinct_and_says_what_the_documents_cover() -> None:
    conversation, turn = turn_through(stream(AnswerEvent(answer=refusal()), relevant=False),
                                      question="Who won the World Cup?")
    page = soup(render_conversation(conversation, "en"))
    box = page.select_one(".cb-refusal")
    assert box is not None and not page.select(".cb-answer")
    covers = box.select_one(".cb-covers").get_text()
    assert "AI+ Initiative <launched>" in covers and "Coin World" in covers  # the indexed documents' titles
    nearby = box.select(".cb-nearby .cb-passage")
    assert nearby and nearby[0].get_text().startswith("The news is reported by Coin World.")
    assert box.select(".cb-rate")  # a refusal can be rated too


def test_errors_are_readable_messages() -> None:
    conversation, turn = turn_through(stream(ErrorEvent(code="busy", message="The model is busy.", status=503)))
    box = soup(render_conversation(conversation, "en")).select_one(".cb-error")
    assert box["role"] == "alert" and box["data-code"] == "busy"
    assert "The model is busy." in box.get_text()
    assert "Traceback" not in box.get_text()


def test_document_and_model_text_is_escaped() -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    answer = answered(f"Eleven {evil} [1].", [citation(1, LAUNCH)])
    conversation, _ = turn_through(stream(AnswerEvent(answer=answer)), question=evil)
    html = render_conversation(conversation, "en")
    page = soup(html)
    assert not page.select("script, img")
    assert "<AI+>" in page.select_one(".cb-source mark").get_text()  # the document's own "<AI+>" shown as text
    assert "&lt;AI+&gt;" in html
    assert evil in page.select_one(".cb-bubble").get_text()
    reader = soup(render_reader("en", FakeLibrary().documents()[0], TEXT, *LAUNCH))  # type: ignore[arg-type]
    assert reader.select_one("mark.cb-doc-hl").get_text() == TEXT[slice(*LAUNCH)]
    assert reader.select_one("h3").get_text() == "AI+ Initiative <launched>"


def test_follow_up_shows_the_standalone_question_and_history_holds_verified_answers() -> None:
    conversation = Conversation()
    first = conversation.start("What is China Taiping building?")
    apply_event(first, AnswerEvent(answer=answered("1.05 million data instructions [1].", [citation(1, TAIPING)])),
                FakeLibrary())  # type: ignore[arg-type]
    failed = conversation.start("x" * 20)
    failed.phase = "error"
    second = conversation.start("And how many positions?")
    apply_event(second, SourcesEvent(question="How many digital labor positions did China Taiping construct?",
                                     rewritten=True, language="en", relevant=True), FakeLibrary())  # type: ignore[arg-type]
    assert [(t.role, t.content) for t in conversation.history()] == [
        ("user", "What is China Taiping building?"), ("assistant", "1.05 million data instructions [1].")]
    page = soup(render_conversation(conversation, "en"))
    assert "How many digital labor positions did China Taiping construct?" in page.select_one(".cb-searched").text


def test_chinese_interface_and_examples() -> None:
    page = soup(render_conversation(Conversation(), "zh"))
    assert "试试这些问题" in page.get_text()
    examples = [b["data-text"] for b in page.select(".cb-example")]
    assert examples and all(CJK.search(q) for q in examples)
    english = [b["data-text"] for b in soup(render_conversation(Conversation(), "en")).select(".cb-example")]
    assert english and english != examples


def test_documents_tab_lists_what_is_indexed() -> None:
    page = soup(render_documents("en", FakeLibrary().documents()))
    cells = [td.get_text() for td in page.select("tbody tr td")]
    assert cells == ["AI+ Initiative <launched>", "corpus/initiative.txt", "Coin World", "2024-07-06", "en", "3",
                     f"{len(TEXT):,}", "2026-11-29 09:34 UTC"]


# Handlers with a scripted service ----------------------------------------------------------------------------


class ScriptedService:
    """Replays a scripted answer stream, or raises at the call like ChatService's input validation."""

    def __init__(self, events: list[object] | Exception) -> None:
        self.events = events
        self.calls: list[dict] = []
        self.gate = type("Gate", (), {"active": 0})()
        self.llm = type("LLM", (), {"name": "scripted"})()
        self.model_name = "scripted"

    def ask_stream(self, question: str, **kwargs: object) -> Iterator[object]:
        self.calls.append({"question": question, **kwargs})
        if isinstance(self.events, Exception):
            raise self.events
        return (event for event in self.events)

    def documents(self) -> list[FakeDoc]:
        return FakeLibrary().documents()

    def document(self, doc_id: str) -> FakeDoc:
        return next(d for d in self.documents() if d.doc_id == doc_id)

    def document_text(self, doc_id: str) -> str:
        return FakeLibrary().document_text(doc_id)


class FakeState:
    def __init__(self, service: ScriptedService, db: Database) -> None:
        self.service, self.db, self.settings, self.ready = service, db, Settings(), True


@dataclass
class FakeEvent:
    _data: dict


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "feedback.sqlite3")


def test_ask_streams_drafts_then_the_answer_and_sends_history(db: Database) -> None:
    answer = answered("Eleven enterprises launched it [1].", [citation(1, LAUNCH)])
    service = ScriptedService(stream(DraftEvent(delta="Eleven "), DraftEvent(delta="enterprises"),
                                     AnswerEvent(answer=answer)))
    handlers = ChatHandlers(FakeState(service, db))  # type: ignore[arg-type]
    conversation = Conversation()
    steps = list(handlers.ask("Who launched it?", conversation, "en"))
    frames = [html for _, _, html, *_ in steps]
    for _, _, _, send, restart, *_ in steps[:-1]:
        assert send["interactive"] is False and restart["interactive"] is False  # one question at a time
    assert steps[-1][3]["interactive"] is True and steps[-1][4]["interactive"] is True
    assert soup(frames[0]).select_one(".cb-draft")  # the question shows at once, as in progress
    assert soup(frames[-1]).select_one(".cb-answer .cb-cite")
    assert not any(soup(f).select_one(".cb-answer") for f in frames[:-1])
    assert service.calls[0]["history"] == []
    list(handlers.ask("And when?", conversation, "en"))
    assert [t.content for t in service.calls[1]["history"]] == ["Who launched it?", answer.answer]


def test_an_open_reader_follows_each_new_answer(db: Database) -> None:
    """A document left open beside the conversation shows the latest answer's first cited span when that answer
    arrives (not before: drafts leave it alone), is emptied by a refusal, and a closed reader stays closed."""
    older = ("initiative", *TAIPING, *TAIPING)
    answer = answered("The Airport Group is building a hub [1].", [citation(1, LAUNCH)])
    handlers = ChatHandlers(FakeState(ScriptedService(stream(DraftEvent(delta="The Airport"),
                                                             AnswerEvent(answer=answer))), db))  # type: ignore[arg-type]
    steps = list(handlers.ask("What is the Airport Group building?", Conversation(), "en", older))
    assert all(step[5:] == ({"__type__": "update"},) * 2 for step in steps[:-1])
    opened, html = steps[-1][5:]
    assert opened == ("initiative", *LAUNCH, *LAUNCH)
    body = soup(html).select_one(".cb-reader-body")
    assert body.select_one("mark.cb-doc-hl").get_text() == TEXT[slice(*LAUNCH)]
    assert body["data-followed"] == "1"  # the page is not scrolled to it, unlike a document the user opened

    handlers = ChatHandlers(FakeState(ScriptedService(stream(AnswerEvent(answer=refusal()), relevant=False)), db))  # type: ignore[arg-type]
    *_, last = handlers.ask("What did SAIC invest?", Conversation(), "en", older)
    assert last[5] is None and soup(last[6]).select_one(".cb-reader-empty")

    handlers = ChatHandlers(FakeState(ScriptedService(stream(AnswerEvent(answer=answer))), db))  # type: ignore[arg-type]
    *_, last = handlers.ask("What is the Airport Group building?", Conversation(), "en", None)
    assert last[5:] == ({"__type__": "update"},) * 2


@pytest.mark.parametrize("failure", [QuestionTooLong(10000, 1000), Busy(8, 5.0), RuntimeError("boom")])
def test_ask_failures_become_chat_messages(db: Database, failure: Exception) -> None:
    handlers = ChatHandlers(FakeState(ScriptedService(failure), db))  # type: ignore[arg-type]
    *_, (box, conversation, html, send, _, opened, reader) = handlers.ask("x" * 10000, Conversation(), "en",
                                                                          ("initiative", *LAUNCH, *LAUNCH))
    error = soup(html).select_one(".cb-error").get_text()
    assert box == "" and conversation.turns[0].phase == "error" and send["interactive"] is True
    assert opened == reader == {"__type__": "update"}  # the open document stays: no new answer arrived
    assert ("10000 characters" in error) if isinstance(failure, QuestionTooLong) else True
    assert "boom" not in error and "Traceback" not in error


def test_rating_and_comment_are_stored_with_the_settings(db: Database) -> None:
    answer = answered("Eleven enterprises launched it [1].", [citation(1, LAUNCH)])
    handlers = ChatHandlers(FakeState(ScriptedService(stream(AnswerEvent(answer=answer))), db))  # type: ignore[arg-type]
    *_, (_, conversation, *_) = handlers.ask("Who launched it?", Conversation(), "en")
    turn_id = conversation.turns[0].id
    _, html = handlers.rate(conversation, "en", FakeEvent({"turn": turn_id, "rating": -1}))  # type: ignore[arg-type]
    assert soup(html).select_one(".cb-comment textarea")  # an optional comment is offered after rating
    handlers.comment(conversation, "en", FakeEvent({"turn": turn_id, "text": "Missing the date."}))  # type: ignore[arg-type]
    [stored] = db.feedback()
    assert (stored.rating, stored.comment, stored.answer) == (-1, "Missing the date.", answer.answer)
    assert stored.citations[0]["start"] == LAUNCH[0]
    assert stored.settings["llm_model"] == Settings().llm_model and stored.settings["top_k"] == Settings().top_k
    assert stored.settings["llm_name"] == "scripted"
    handlers.rate(conversation, "en", FakeEvent({"turn": turn_id, "rating": 1}))  # type: ignore[arg-type]
    assert len(db.feedback()) == 1  # one rating per answer


def test_feedback_settings_name_the_models() -> None:
    values = feedback_settings(Settings(llm_backend="hosted", hosted_model="m"), "x")
    assert values["hosted_model"] == "m" and values["embed_model"] and values["llm_name"] == "x"


class LoadingState:
    """The served process before its models are loaded: AppState.service raises NotReady."""

    def __init__(self, db: Database) -> None:
        self.db, self.settings, self.ready = db, Settings(), False

    @property
    def service(self) -> ScriptedService:
        raise NotReady("The chatbot is still loading its models; try again in a few seconds.")


def test_questions_while_loading_get_a_message_and_documents_say_loading(db: Database) -> None:
    handlers = ChatHandlers(LoadingState(db))  # type: ignore[arg-type]
    *_, (_, conversation, html, *_) = handlers.ask("Who launched it?", Conversation(), "en")
    assert "still loading" in soup(html).select_one(".cb-error").get_text()
    assert "still loading" in soup(handlers.documents("en")).get_text()
    assert "正在加载" in soup(handlers.documents("zh")).get_text()


def test_the_header_and_the_examples_are_the_deployments_branding() -> None:
    header = soup(render_header("zh", {"en": "Harbour Manuals"}, {"en": "Ask the manuals.", "zh": "向手册提问。"}, "HM"))
    assert header.select_one("h1").text == "Harbour Manuals"  # English where the language has none
    assert header.select_one("p").text == "向手册提问。" and header.select_one(".cb-logo").text == "HM"
    page = soup(render_conversation(Conversation(), "en", {"en": ["How deep is berth 4?"]}))
    assert [b["data-text"] for b in page.select(".cb-example")] == ["How deep is berth 4?"]
