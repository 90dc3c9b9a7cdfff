"""Hostile requests against the real `chatbot serve` (uvicorn's own HTTP parser, the chat UI mounted at "/"):
huge and many headers, bytes no HTTP client would send, traversal in document ids, malformed bodies. Each gets a
4xx, never a 5xx or a stack trace, and the server goes on answering."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.e2e

QUESTION = "How many municipal state-owned enterprises launched the initiative?"


def raw_request(url: str, request: bytes, *, timeout: float = 30.0) -> bytes:
    """Send bytes as they are (no client normalises the path or checks the headers) and read the whole reply."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def assert_api_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["status"] == status and error["message"] and (code is None or error["code"] == code), error
    assert "Traceback" not in r.text
    return error


def assert_still_serving(url: str) -> None:
    assert httpx.get(url + "/readyz", timeout=30).status_code == 200
    r = httpx.post(url + "/api/v1/retrieve", json={"question": QUESTION}, timeout=60)
    assert r.status_code == 200 and r.json()["passages"]


def test_a_64_kib_header_and_200_headers_are_431_and_the_server_keeps_serving(served):
    """uvicorn's default parser (httptools) takes headers of any size and number; the API's own limit answers
    431 Request Header Fields Too Large in its JSON error shape."""
    body = {"question": QUESTION}
    r = httpx.post(served.url + "/api/v1/retrieve", json=body, headers={"X-Big": "a" * 65536}, timeout=60)
    assert "32768 bytes" in assert_api_error(r, 431, "headers_too_large")["message"]
    headers = {f"X-Filler-{i}": "v" * 20 for i in range(200)}
    r = httpx.post(served.url + "/api/v1/ask", json=body, headers=headers, timeout=60)
    assert "100 headers" in assert_api_error(r, 431, "headers_too_large")["message"]
    big = b"X-Big: " + b"a" * (4 << 20) + b"\r\n"  # 4 MiB in one header, sent raw
    reply = raw_request(served.url, b"GET /api/v1/documents HTTP/1.1\r\nHost: x\r\n" + big +
                        b"Connection: close\r\n\r\n")
    assert status_of(reply) == 431, reply[:300]
    assert_still_serving(served.url)


@pytest.mark.parametrize("request_line", [
    b"GET /api/v1/documents/a\x00b HTTP/1.1",
    b"GET /api/v1/documents/\xff\xfe HTTP/1.1",
    b"GARBAGE",
    b"GET /api/v1/documents HTTP/9.9",
])
def test_bytes_no_client_sends_are_a_400_from_uvicorn(served, request_line):
    """uvicorn refuses a request it cannot parse before the app sees it: 400 'Invalid HTTP request received.'
    (plain text: there is no request yet to answer in the API's shape)."""
    reply = raw_request(served.url, request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert 400 <= status_of(reply) < 500, reply[:300]
    assert b"Traceback" not in reply
    assert_still_serving(served.url)


@pytest.mark.parametrize("target", [
    b"/api/v1/documents/../../etc/passwd",
    b"/api/v1/documents/..%2F..%2Fetc%2Fpasswd",
    b"/api/v1/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"/api/v1/documents/%2Fetc%2Fpasswd",
    b"/api/v1/documents/..%00",
    b"/api/v1/documents/%2e%2e",
    b"/api/v1/../../../etc/passwd",
])
def test_document_id_traversal_is_a_json_404_in_the_served_app(served, target):
    reply = raw_request(served.url, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert status_of(reply) == 404, reply[:300]
    assert b"root:" not in body and b"Traceback" not in body
    if target.startswith(b"/api/v1/documents/"):  # (the last one is outside /api/ once resolved: the UI's 404)
        assert b'"error":{"code":"' in body and b"application/json" in head.lower(), reply[:400]


def test_unknown_api_paths_and_methods_get_the_api_error_shape_not_the_ui_404(served):
    assert_api_error(httpx.get(served.url + "/api/v1/nothing-here", timeout=30), 404, "not_found")
    assert_api_error(httpx.get(served.url + "/v1/nothing-here", timeout=30), 404, "not_found")
    r = httpx.get(served.url + "/api/v1/ask", timeout=30)
    assert_api_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    assert httpx.get(served.url + "/", timeout=30).status_code == 200  # the chat UI still has "/"


@pytest.mark.parametrize("content, status, words", [
    (b'{"question": ', 422, "not valid JSON"),
    (b"\xff\xfe\x00", 400, "UTF-8"),
    (b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nested"),
    (b'{"question": 42, "top_k": "many"}', 422, "top_k"),
    (b'{"question": ["a"], "top_k": -1}', 422, "question"),
    (b'{"question": "[1]", "top_k": 100000000000000000000}', 422, "less than or equal to 20"),
])
def test_malformed_bodies_are_4xx_with_a_message(served, content, status, words):
    r = httpx.post(served.url + "/api/v1/ask", content=content, headers={"Content-Type": "application/json"},
                   timeout=60)
    assert words in assert_api_error(r, status)["message"]


def test_question_of_100000_characters_is_413_and_control_characters_are_dropped(served):
    r = httpx.post(served.url + "/api/v1/ask", json={"question": "x" * 100_000}, timeout=60)
    assert_api_error(r, 413, "body_too_large")
    r = httpx.post(served.url + "/api/v1/retrieve", json={"question": "How many\x00 municipal\x1b state-owned "
                                                                        "enterprises\x07 launched the initiative?"},
                   timeout=60)
    assert r.status_code == 200 and r.json()["question"] == ("How many municipal state-owned enterprises launched "
                                                              "the initiative?")
    assert_api_error(httpx.post(served.url + "/api/v1/ask", json={"question": "\x00\x1b\x7f"}, timeout=60), 400,
                     "empty_question")


def test_question_that_is_only_a_citation_marker_is_refused(served):
    r = httpx.post(served.url + "/api/v1/ask", json={"question": "[1]"}, timeout=180)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refused"] is True and body["citations"] == [] and "[1]" not in body["answer"]
