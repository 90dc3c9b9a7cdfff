"""The chat's Gradio API driven by gradio_client against the served app: /ask returns the answer contract with
exact citations, follow-ups use the history, off-topic questions are refused, feedback lands in SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(served) -> Client:  # noqa: ANN001
    return Client(served.url + "/", verbose=False)


@pytest.fixture(scope="module")
def first_answer(client: Client) -> dict[str, Any]:
    """One answered question, shared by the tests that need one (each answer costs seconds)."""
    return client.predict("What is China Taiping building with large models?", api_name="/ask")


def document_text(served, source: str) -> str:  # noqa: ANN001
    """The document a citation points into (for .txt files the extracted text is the file's own characters)."""
    path = Path(source)
    return (path if path.is_absolute() else served.root / path).read_text(encoding="utf-8")


def assert_exact_citations(served, answer: dict[str, Any]) -> None:  # noqa: ANN001
    assert answer["citations"], answer
    for c in answer["citations"]:
        assert f"[{c['n']}]" in answer["answer"]
        assert c["text"] == document_text(served, c["source"])[c["start"]:c["end"]]
        assert c["title"] and c["doc_id"]


def test_ask_returns_a_cited_answer(served, first_answer: dict[str, Any]) -> None:  # noqa: ANN001
    assert set(first_answer) >= {"id", "question", "answer", "refused", "language", "citations", "unsupported",
                                 "standalone_question", "timings_ms"}
    assert first_answer["refused"] is False and first_answer["language"] == "en"
    assert "Taiping" in first_answer["answer"]
    assert_exact_citations(served, first_answer)
    assert first_answer["standalone_question"] is None  # no history: asked as written


def test_follow_up_is_rewritten_with_the_previous_turn(served, client: Client,  # noqa: ANN001
                                                       first_answer: dict[str, Any]) -> None:
    history = [{"role": "user", "content": first_answer["question"]},
               {"role": "assistant", "content": first_answer["answer"]}]
    follow_up = client.predict("And how much annual business value does it bring?", history, api_name="/ask")
    assert follow_up["standalone_question"] and "Taiping" in follow_up["standalone_question"]
    assert follow_up["refused"] is False
    assert_exact_citations(served, follow_up)


def test_off_topic_question_is_refused(client: Client) -> None:
    answer = client.predict("Who won the 2022 FIFA World Cup?", api_name="/ask")
    assert answer["refused"] is True and answer["citations"] == []
    assert "documents" in answer["answer"]


def test_chinese_question_gets_a_chinese_contract(served, client: Client) -> None:  # noqa: ANN001
    answer = client.predict("市国资委设立了几只先导产业母基金？", api_name="/ask")
    assert answer["language"] == "zh"
    if not answer["refused"]:
        assert_exact_citations(served, answer)


def test_bad_input_is_a_clear_error_and_the_server_keeps_running(served, client: Client) -> None:  # noqa: ANN001
    with pytest.raises(Exception, match="10000 characters long; the limit is"):
        client.predict("x" * 10_000, api_name="/ask")
    with pytest.raises(Exception, match="history must be a list"):
        client.predict("And then?", [{"speaker": "me"}], api_name="/ask")
    assert httpx.get(served.url + "/healthz", timeout=5).status_code == 200


def test_feedback_is_stored_in_sqlite(served, client: Client, first_answer: dict[str, Any]) -> None:  # noqa: ANN001
    stored = client.predict(first_answer, -1, "The answer should give the number of positions.",
                            api_name="/feedback")
    with sqlite3.connect(served.db_path) as con:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT * FROM feedback WHERE id = ?", (stored["id"],)).fetchone()
    assert row["rating"] == -1 and row["comment"] == "The answer should give the number of positions."
    assert row["question"] == first_answer["question"] and row["answer"] == first_answer["answer"]
    assert json.loads(row["citations"]) == first_answer["citations"]
    settings = json.loads(row["settings"])
    assert settings["llm_model"] and settings["top_k"] and settings["embed_model"]
    assert row["created_at"] and row["source"] == "gradio_api"
    with pytest.raises(Exception, match="rating is 1"):
        client.predict(first_answer, 5, "", api_name="/feedback")
