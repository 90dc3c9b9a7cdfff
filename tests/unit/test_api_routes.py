"""The native API (/api/v1) over a ChatService on fakes: contract, errors for bad input, SSE framing, busy."""

from __future__ import annotations

import json

import pytest

from chatbot.gate import GenerationGate
from tests.fakes import ScriptedLLM, ScriptedSlowLLM
from tests.unit.api_app import ANSWER, DOC_ID, QUESTION, build_fake_index, serve_fake


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("api-index"))


def sse_events(text: str) -> list[tuple[str, dict]]:
    """Parse an SSE body: (event name, JSON data) per block; comments skipped."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def test_ask_returns_the_answer_contract_and_the_citation_span_is_the_document_text(index, tmp_path):
    n = index.evidence_number(QUESTION, "11 municipal")
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=n)))
    r = served.client.post("/api/v1/ask", json={"question": QUESTION, "id": "q-7"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "q-7" and body["question"] == QUESTION and body["refused"] is False
    assert body["answer"] == ANSWER.format(n=1) and body["language"] == "en"
    c = body["citations"][0]
    assert c["n"] == 1 and c["doc_id"] == DOC_ID and "11 municipal" in c["text"]
    assert index.text[c["start"]:c["end"]] == c["text"]
    span = served.client.get(f"/api/v1/documents/{DOC_ID}", params={"start": c["start"], "end": c["end"]})
    assert span.status_code == 200 and span.json()["text"] == c["text"]
    assert {"retrieve", "generate", "total"} <= set(body["timings_ms"])


def test_off_topic_question_is_refused(index, tmp_path):
    served = serve_fake(index, tmp_path)
    body = served.client.post("/api/v1/ask", json={"question": "What is the capital of France?"}).json()
    assert body["refused"] is True and body["citations"] == []


@pytest.mark.parametrize("payload, status, code, words", [
    ({"question": "why " * 300}, 413, "question_too_long", "limit is 1000"),
    ({"question": "   "}, 400, "empty_question", "empty"),
    ({"question": ""}, 400, "empty_question", "empty"),
    ({}, 422, "invalid_request", "question: Field required"),
    ({"question": 42}, 422, "invalid_request", "question: Input should be a valid string"),
    ({"question": QUESTION, "top_k": 0}, 422, "invalid_request", "top_k"),
    ({"question": QUESTION, "top_k": 21}, 422, "invalid_request", "less than or equal to 20"),
    ({"question": QUESTION, "top_k": "many"}, 422, "invalid_request", "top_k"),
    ({"question": QUESTION, "doc_ids": ["no-such-doc"]}, 404, "document_not_found", "no-such-doc"),
    ({"question": QUESTION, "doc_ids": []}, 400, "bad_request", "doc_ids is empty"),
    ({"question": QUESTION, "filter": {"language": "fr"}}, 404, "no_matching_document", "filter"),
    ({"question": QUESTION, "filter": {"date_from": "July"}}, 422, "invalid_request", "filter.date_from"),
    ({"question": QUESTION, "history": [{"role": "user", "content": "x" * 9000}]}, 413, "history_too_long",
     "limit is 8000"),
    ({"question": QUESTION, "history": [{"role": "robot", "content": "hi"}]}, 422, "invalid_request",
     "history.0.role"),
    ({"question": QUESTION, "history": "earlier"}, 422, "invalid_request", "history"),
    ({"question": QUESTION, "temperature": 0.2}, 422, "invalid_request", "temperature: unknown field"),
])
@pytest.mark.parametrize("path", ["/api/v1/ask", "/api/v1/ask/stream"])
def test_bad_input_gets_a_clear_json_error_never_a_5xx(index, tmp_path, path, payload, status, code, words):
    served = serve_fake(index, tmp_path)
    r = served.client.post(path, json=payload)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == code and error["status"] == status and words in error["message"]


def test_body_that_is_not_json_or_not_an_object(index, tmp_path):
    client = serve_fake(index, tmp_path).client
    r = client.post("/api/v1/ask", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
    r = client.post("/api/v1/ask", json=["a question"])
    assert r.status_code == 422 and "JSON object" in r.json()["error"]["message"]


def test_body_too_large_is_413_by_header_and_by_actual_size(index, tmp_path):
    client = serve_fake(index, tmp_path, max_body_bytes=2000).client
    big = json.dumps({"question": "x" * 5000}).encode()
    r = client.post("/api/v1/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert "2000 bytes" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: the size is only known by reading
        for i in range(0, len(big), 500):
            yield big[i:i + 500]

    r = client.post("/v1/chat/completions", content=chunked(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    small = client.post("/api/v1/retrieve", json={"question": QUESTION})
    assert small.status_code == 200


def test_stream_is_sources_then_drafts_then_the_verified_answer(index, tmp_path):
    n = index.evidence_number(QUESTION, "11 municipal")
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=n)))
    r = served.client.post("/api/v1/ask/stream", json={"question": QUESTION})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    events = sse_events(r.text)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "answer" and set(names[1:-1]) == {"draft"}
    assert all(data["type"] == name for name, data in events)
    sources = events[0][1]
    assert sources["relevant"] and any(s["n"] == n and "11 municipal" in s["text"] for s in sources["sources"])
    drafted = "".join(data["delta"] for name, data in events if name == "draft")
    assert f"[{n}]" in drafted  # the provisional draft cites as the prompt numbered
    answer = events[-1][1]["answer"]
    assert answer["answer"] == ANSWER.format(n=1) and answer["citations"][0]["doc_id"] == DOC_ID


def test_failure_during_the_stream_is_an_error_event(index, tmp_path):
    # An LLM that does not answer gives quotes instead (test_extractive_answers.py); any other failure is an error.
    llm = ScriptedSlowLLM("Eleven enterprises launched it [1].", delay=0, fail=RuntimeError("llama.cpp crashed"))
    served = serve_fake(index, tmp_path, llm)
    r = served.client.post("/api/v1/ask/stream", json={"question": QUESTION})
    events = sse_events(r.text)
    assert [name for name, _ in events][0] == "sources" and events[-1][0] == "error"
    assert events[-1][1]["code"] == "internal" and events[-1][1]["status"] == 500
    assert "went wrong" in events[-1][1]["message"] and "llama.cpp" not in events[-1][1]["message"]
    assert served.service.gate.active == 0  # the model was released
    r = served.client.post("/api/v1/ask", json={"question": QUESTION})
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"


def test_full_waiting_line_is_503_with_retry_after(index, tmp_path):
    served = serve_fake(index, tmp_path, gate=GenerationGate(slots=1, max_waiting=0))
    with served.service.gate.hold():  # another question is being answered, and no one may wait
        for path in ("/api/v1/ask", "/api/v1/ask/stream"):
            r = served.client.post(path, json={"question": QUESTION})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "busy" and int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["retry_after"] >= 1
        r = served.client.post("/v1/chat/completions", json={"model": "m", "messages": [
            {"role": "user", "content": QUESTION}]})
        assert r.status_code == 503 and "busy" in r.json()["error"]["message"]
        # retrieval and documents do not need the model
        assert served.client.post("/api/v1/retrieve", json={"question": QUESTION}).status_code == 200
        assert served.client.get("/api/v1/documents").status_code == 200
    assert served.client.post("/api/v1/ask", json={"question": QUESTION}).status_code == 200


def test_not_ready_is_503_with_retry_after(index, tmp_path):
    from chatbot.app import create_app
    from chatbot.state import AppState
    from fastapi.testclient import TestClient

    state = AppState(index.settings.model_copy(update={"db_path": tmp_path / "db.sqlite3"}))  # never loads
    client = TestClient(create_app(state.settings, state=state, ui=False))
    r = client.post("/api/v1/retrieve", json={"question": QUESTION})
    assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready" and r.headers["retry-after"] == "5"


def test_retrieve_gives_passages_with_offsets_and_the_evidence_sentences(index, tmp_path):
    client = serve_fake(index, tmp_path).client
    r = client.post("/api/v1/retrieve", json={"question": QUESTION, "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["relevant"] and body["language"] == "en" and len(body["passages"]) == 3
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True)
    for p in body["passages"]:
        assert index.text[p["start"]:p["end"]] == p["text"] and p["doc_id"] == DOC_ID and p["title"]
    assert any("11 municipal" in e["text"] for e in body["evidence"])
    assert [e["n"] for e in body["evidence"]] == list(range(1, len(body["evidence"]) + 1))
    filtered = client.post("/api/v1/retrieve", json={"question": QUESTION, "filter": {
        "outlet": "Coin World", "date_from": "2024-07", "date_to": "2024"}})
    assert filtered.status_code == 200 and filtered.json()["passages"]
    none = client.post("/api/v1/retrieve", json={"question": QUESTION, "filter": {"date_to": "2023-12-31"}})
    assert none.status_code == 404 and none.json()["error"]["code"] == "no_matching_document"


def test_documents_list_and_text_with_spans(index, tmp_path):
    client = serve_fake(index, tmp_path).client
    docs = client.get("/api/v1/documents").json()["documents"]
    assert [d["doc_id"] for d in docs] == [DOC_ID]
    assert docs[0]["outlet"] == "Coin World" and docs[0]["chars"] == len(index.text) and docs[0]["chunks"] > 0
    whole = client.get(f"/api/v1/documents/{DOC_ID}").json()
    assert whole["text"] == index.text and (whole["start"], whole["end"]) == (0, len(index.text))
    assert client.get(f"/api/v1/documents/{DOC_ID}?start=10&end=40").json()["text"] == index.text[10:40]
    assert client.get(f"/api/v1/documents/{DOC_ID}?start=7000").json()["text"] == index.text[7000:]
    for query, status in (("start=50&end=10", 400), (f"end={len(index.text) + 1}", 400), ("start=-1", 422),
                          ("start=abc", 422)):
        r = client.get(f"/api/v1/documents/{DOC_ID}?{query}")
        assert r.status_code == status, query
        assert r.json()["error"]["message"]
    missing = client.get("/api/v1/documents/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "document_not_found"


def test_unknown_api_path_and_method_are_json_errors(index, tmp_path):
    client = serve_fake(index, tmp_path).client
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/api/v1/ask")
    assert r.status_code == 405 and "GET is not allowed" in r.json()["error"]["message"]


def test_openapi_documents_the_contract_with_examples(index, tmp_path):
    spec = serve_fake(index, tmp_path).client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v1/ask", "/api/v1/ask/stream", "/api/v1/retrieve", "/api/v1/documents",
                 "/api/v1/documents/{doc_id}", "/v1/chat/completions", "/v1/models", "/metrics", "/widget.js"):
        assert path in paths, path
    ask = paths["/api/v1/ask"]["post"]
    assert {"200", "401", "404", "413", "422", "429", "503"} <= set(ask["responses"])
    assert ask["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    schemas = spec["components"]["schemas"]
    assert schemas["AskRequest"]["examples"] and schemas["AskRequest"]["properties"]["top_k"]["anyOf"][0]["maximum"] == 20
    assert "citations" in schemas["ChatCompletion"]["properties"]
    assert "text/event-stream" in paths["/api/v1/ask/stream"]["post"]["responses"]["200"]["content"]
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
