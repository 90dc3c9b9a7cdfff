"""Hostile input to the API (over fakes): path traversal in document ids, malformed and deeply nested JSON, wrong
types, huge headers and questions, control characters, a question that is only a citation marker. Each gets a
4xx with a JSON message (or, where the input is a question after all, the documented answer), never a 5xx or a
stack trace. test_api_routes.py has the ordinary bad input; tests/e2e/test_api_hostile_served.py the same
against the real uvicorn server."""

from __future__ import annotations

import pytest
from starlette.responses import JSONResponse

from chatbot.api.limits import MAX_HEADER_BYTES, MAX_HEADERS
from tests.fakes import ScriptedLLM
from tests.unit.api_app import QUESTION, ServedFake, build_fake_index, serve_fake

SECRET = "SECRET-OUTSIDE-THE-INDEX"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("hostile-index"))


@pytest.fixture
def served(index, tmp_path) -> ServedFake:
    return serve_fake(index, tmp_path, rate_limit_per_minute=0)


def assert_json_error(r, status: int | tuple[int, ...], code: str | tuple[str, ...] | None = None) -> dict:
    """A 4xx in the API's one error shape, with a message and no traceback."""
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, r.text
    assert r.headers["content-type"].startswith("application/json"), r.text
    error = r.json()["error"]
    assert error["status"] == r.status_code and error["message"]
    if code is not None:
        assert error["code"] in ((code,) if isinstance(code, str) else code), error
    assert "Traceback" not in r.text and 'File "' not in r.text
    return error


@pytest.mark.parametrize("path", [
    "/api/v1/documents/..%2F..%2Fetc%2Fpasswd",
    "/api/v1/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/v1/documents/%252e%252e%252fleak",  # double-encoded
    "/api/v1/documents/..%2Fleak",
    "/api/v1/documents/%2e%2e",
    "/api/v1/documents/..%5C..%5Cleak",
    "/api/v1/documents/%2Fetc%2Fpasswd",
    "/api/v1/documents//etc/passwd",
    "/api/v1/documents/leak%00",
    "/api/v1/documents/%00",
    "/api/v1/documents/%ff%fe",
    "/api/v1/documents/..%2Fleak?start=0&end=5",
])
def test_document_id_traversal_is_a_json_404_and_reads_nothing_outside_the_index(index, served, path):
    (index.settings.index_dir / "leak.txt").write_text(SECRET, encoding="utf-8")
    (index.settings.index_dir.parent / "leak.txt").write_text(SECRET, encoding="utf-8")
    r = served.client.get(path)
    assert_json_error(r, 404, ("document_not_found", "not_found"))
    assert SECRET not in r.text and "root:" not in r.text


@pytest.mark.parametrize("doc_id", ["../leak", "../../etc/passwd", "/etc/passwd", "..", "leak\x00", "%2e%2e%2fleak",
                                    "C:\\Windows\\win.ini"])
@pytest.mark.parametrize("path", ["/api/v1/ask", "/api/v1/retrieve", "/api/v1/ask/stream"])
def test_doc_ids_that_are_paths_are_unknown_documents(index, served, doc_id, path):
    (index.settings.index_dir.parent / "leak.txt").write_text(SECRET, encoding="utf-8")
    r = served.client.post(path, json={"question": QUESTION, "doc_ids": [doc_id]})
    error = assert_json_error(r, 404, "document_not_found")
    assert "GET /api/v1/documents lists them" in error["message"] and SECRET not in r.text


def test_document_id_longer_than_200_characters_is_422(served):
    assert_json_error(served.client.get("/api/v1/documents/" + "a" * 300), 422, "invalid_request")


@pytest.mark.parametrize("body, words", [
    (b'{"question": ', "not valid JSON"),
    (b'{"question": "a",}', "not valid JSON"),
    (b"{'question': 'a'}", "not valid JSON"),
    (b'{"question": "\x00"}', "not valid JSON"),  # a raw control character inside a JSON string
    (b"\xff\xfe\x00", "UTF-8"),
    (b"", "A JSON body is required"),
    (b"null", "must be a JSON object"),
    (b'"How many?"', "must be a JSON object"),
    (b"42", "must be a JSON object"),
    (b'{"question": "How many?", "top_k": NaN}', "top_k"),
    (b'{"question": "How many?", "top_k": Infinity}', "top_k"),
    (b'{"question": "\\ud800"}', "question"),  # a lone surrogate is not text
    ('{"question": "café?"}'.encode("latin-1"), "UTF-8"),
    (b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested"),  # json.loads gives up (RecursionError)
])
@pytest.mark.parametrize("path", ["/api/v1/ask", "/api/v1/retrieve", "/api/v1/ask/stream", "/v1/chat/completions"])
def test_malformed_json_is_a_4xx_with_a_message(served, path, body, words):
    r = served.client.post(path, content=body, headers={"Content-Type": "application/json"})
    error = assert_json_error(r, (400, 422))
    if path != "/v1/chat/completions" or words not in ("top_k", "question"):  # chat has no such fields
        assert words in error["message"], error


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_body_not_sent_as_json_is_422(served, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = served.client.post("/api/v1/retrieve", content=b'{"question": "How many?"}', headers=headers)
    assert "Content-Type: application/json" in assert_json_error(r, 422, "invalid_request")["message"]


@pytest.mark.parametrize("payload, field", [
    ({"question": 42}, "question"),
    ({"question": ["How many?"]}, "question"),
    ({"question": {"text": "How many?"}}, "question"),
    ({"question": None}, "question"),
    ({"question": True}, "question"),
    ({"question": QUESTION, "top_k": "many"}, "top_k"),
    ({"question": QUESTION, "top_k": "1e3"}, "top_k"),
    ({"question": QUESTION, "top_k": -1}, "top_k"),
    ({"question": QUESTION, "top_k": 10**30}, "top_k"),
    ({"question": QUESTION, "top_k": 1e308}, "top_k"),
    ({"question": QUESTION, "top_k": 2.5}, "top_k"),
    ({"question": QUESTION, "top_k": [3]}, "top_k"),
    ({"question": QUESTION, "doc_ids": "shanghai-soe-ai-plus-initiative"}, "doc_ids"),
    ({"question": QUESTION, "doc_ids": [1]}, "doc_ids.0"),
    ({"question": QUESTION, "doc_ids": ["x"] * 51}, "doc_ids"),
    ({"question": QUESTION, "filter": "en"}, "filter"),
    ({"question": QUESTION, "filter": {"language": ["en"]}}, "filter.language"),
])
@pytest.mark.parametrize("path", ["/api/v1/retrieve", "/api/v1/ask"])
def test_wrong_types_are_422_naming_the_field(served, path, payload, field):
    error = assert_json_error(served.client.post(path, json=payload), 422, "invalid_request")
    assert error["message"].startswith("Invalid request: ") and f"{field}:" in error["message"], error
    assert any(d["field"] == field for d in error["details"]), error["details"]


@pytest.mark.parametrize("messages, words", [
    ("How many?", "messages"),
    ([{"role": "user", "content": 42}], "messages.0.content"),
    ([{"role": "user", "content": {"text": "How many?"}}], "messages.0.content"),
    ([{"role": "robot", "content": "How many?"}], "messages.0.role"),
    ([], "messages"),
])
def test_chat_completions_wrong_types_are_4xx(served, messages, words):
    r = served.client.post("/v1/chat/completions", json={"model": "m", "messages": messages})
    assert words in assert_json_error(r, (400, 422))["message"]


@pytest.mark.parametrize("path, payload", [
    ("/api/v1/ask", {"question": "x" * 100_000}),
    ("/api/v1/retrieve", {"question": "问" * 100_000}),
    ("/api/v1/ask/stream", {"question": "x" * 100_000}),
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x" * 100_000}]}),
])
def test_question_of_100000_characters_is_413(index, tmp_path, path, payload):
    served = serve_fake(index, tmp_path, rate_limit_per_minute=0)
    assert "65536 bytes" in assert_json_error(served.client.post(path, json=payload), 413, "body_too_large")["message"]
    roomy = serve_fake(index, tmp_path / "roomy", rate_limit_per_minute=0, max_body_bytes=1_000_000)
    error = assert_json_error(roomy.client.post(path, json=payload), 413, "question_too_long")
    assert "100000 characters" in error["message"] and "limit is 1000" in error["message"]
    assert not roomy.service.llm.engine.prompts


def test_control_characters_are_dropped_from_the_question(served):
    r = served.client.post("/api/v1/retrieve", json={"question": "How many\x00 municipal\x07 state-owned\x1b "
                                                                  "enterprises\u200b launched\x7f the initiative?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["question"] == "How many municipal state-owned enterprises launched the initiative?"
    assert body["relevant"] and body["passages"]


@pytest.mark.parametrize("question", ["\x00\x01\x02", "\x1b\x7f\u200b\u202e", "\t\n\r\x0b\x0c"])
@pytest.mark.parametrize("path", ["/api/v1/ask", "/api/v1/retrieve", "/api/v1/ask/stream"])
def test_question_of_only_control_characters_is_empty(served, path, question):
    assert_json_error(served.client.post(path, json={"question": question}), 400, "empty_question")


@pytest.mark.parametrize("question", ["[1]", "[1][2]", " [3] ", "【1】"])
def test_question_that_is_only_a_citation_marker_is_refused_without_the_model(index, tmp_path, question):
    llm = ScriptedLLM("Eleven enterprises [1].")
    served = serve_fake(index, tmp_path, llm, rate_limit_per_minute=0)
    r = served.client.post("/api/v1/ask", json={"question": question})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refused"] is True and body["citations"] == [] and "[" not in body["answer"]
    chat = served.client.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": question}]})
    assert chat.status_code == 200 and chat.json()["refused"] is True and chat.json()["citations"] == []
    retrieved = served.client.post("/api/v1/retrieve", json={"question": question})
    assert retrieved.status_code == 200 and retrieved.json()["relevant"] is False
    assert llm.prompts == []  # nothing the model could echo back as a citation


def test_too_many_headers_is_431(served):
    headers = {f"X-Filler-{i}": "v" for i in range(MAX_HEADERS + 1)}
    error = assert_json_error(served.client.post("/api/v1/retrieve", json={"question": QUESTION}, headers=headers),
                              431, "headers_too_large")
    assert f"limit is {MAX_HEADERS} headers" in error["message"]
    headers = {f"X-Filler-{i}": "v" for i in range(MAX_HEADERS - 10)}
    assert served.client.post("/api/v1/retrieve", json={"question": QUESTION}, headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/documents", "/v1/models", "/metrics"])
def test_header_larger_than_32_kib_is_431(served, path):
    r = served.client.get(path, headers={"X-Big": "a" * (MAX_HEADER_BYTES + 1)})
    assert f"{MAX_HEADER_BYTES} bytes" in assert_json_error(r, 431, "headers_too_large")["message"]
    assert served.client.get(path, headers={"X-Big": "a" * 8000}).status_code == 200


def test_unknown_api_paths_keep_the_json_error_shape_when_the_ui_takes_every_other_path(served):
    """The chat UI is mounted at "/" after the API and answers any path it is given with its own 404; the API's
    unknown paths and wrong methods must still get the API's error shape."""
    served.app.mount("/", JSONResponse({"detail": "Not Found"}, status_code=404))
    client = served.client
    assert client.get("/").json() == {"detail": "Not Found"}  # the stand-in UI is there
    for path in ("/api/v1/nothing-here", "/api/v1/documents/..%2F..%2Fetc%2Fpasswd", "/v1/nothing", "/api/",
                 "/api/v1/documents/a/b"):
        assert_json_error(client.get(path), 404, "not_found")
    r = client.get("/api/v1/ask")
    assert "GET is not allowed" in assert_json_error(r, 405, "method_not_allowed")["message"]
    assert r.headers["allow"] == "POST"
    assert_json_error(client.delete("/api/v1/documents"), 405, "method_not_allowed")
    assert_json_error(client.put("/v1/chat/completions", json={}), 405, "method_not_allowed")
    assert client.get("/api/v1/documents").status_code == 200  # the real routes still answer
    assert client.post("/api/v1/retrieve", json={"question": QUESTION}).status_code == 200


def test_unknown_api_path_is_not_echoed_at_any_length(served):
    r = served.client.get("/api/v1/" + "x" * 5000)
    assert len(assert_json_error(r, 404, "not_found")["message"]) < 300
