"""A second served app set up as an intranet portal would use it: API keys (made with the CLI), a CORS
allowlist with the portal's origin, a one-place waiting line. Drives it with httpx, schemathesis against its
/openapi.json, and headless Chromium on a portal page (another origin) that embeds the widget; a third app whose
LLM cannot be reached serves a second portal page, where the widget shows quotes under their notice."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)

from chatbot.prompts import extractive_notice
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, Served, free_port, start_server, stop_server

pytestmark = pytest.mark.e2e

QUESTION = "How many municipal state-owned enterprises launched the initiative?"


@dataclass
class Site:
    """The portal's static pages, served on their own origin."""

    root: Path
    origin: str

    def add_page(self, name: str, body: str) -> str:
        (self.root / name).write_text("<!doctype html><html><head><meta charset='utf-8'><title>HR portal</title>"
                                      f"</head><body><h1>Group HR portal</h1>{body}</body></html>", encoding="utf-8")
        return f"{self.origin}/{name}"


@dataclass
class Portal:
    served: Served
    page_url: str  # the portal page, on another origin
    origin: str
    keys: dict[str, str]  # name -> key

    def auth(self, name: str = "portal") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def create_key(served: Served, name: str, *extra: str) -> str:
    done = served.chatbot("keys", "create", "--name", name, *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("portal-site")
    page_port = free_port()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", page_port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield Site(root, f"http://127.0.0.1:{page_port}")
    finally:
        httpd.shutdown()


@pytest.fixture(scope="module")
def portal(site, tmp_path_factory) -> Iterator[Portal]:
    served = start_server(tmp_path_factory.mktemp("portal-server"), extra_env={
        "CHATBOT_CORS_ORIGINS": site.origin, "CHATBOT_MAX_WAITING": "1", "CHATBOT_RATE_LIMIT_PER_MINUTE": "120"})
    try:
        keys = {"portal": create_key(served, "portal"), "tiny": create_key(served, "tiny", "--rate-limit", "3"),
                "fuzz": create_key(served, "fuzz", "--rate-limit", "0")}
        page_url = site.add_page("index.html", (
            "<p>Questions about the AI+ initiative? Use the bubble.</p>"
            f"<script src='{served.url}/widget.js' data-server='{served.url}' data-key='{keys['portal']}' "
            "data-title='Ask the AI+ documents'></script>"))
        yield Portal(served, page_url, site.origin, keys)
    finally:
        stop_server(served)


@pytest.fixture(scope="module")
def quoting_portal(site, tmp_path_factory) -> Iterator[Portal]:
    """A page of the same portal whose widget talks to an app whose hosted LLM is a closed loopback port: nothing
    listens there, so every generation fails at once and each answer quotes the documents."""
    served = start_server(tmp_path_factory.mktemp("quoting-server"), extra_env={
        "CHATBOT_CORS_ORIGINS": site.origin, "CHATBOT_LLM_BACKEND": "hosted",
        "CHATBOT_HOSTED_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "CHATBOT_HOSTED_MODEL": "m",
        "CHATBOT_HOSTED_BACKOFF_S": "0.05"})
    try:
        page_url = site.add_page("quotes.html", f"<script src='{served.url}/widget.js' data-server='{served.url}'></script>")
        yield Portal(served, page_url, site.origin, {})
    finally:
        stop_server(served)


def test_keys_are_required_once_created(portal):
    url = portal.served.url
    missing = httpx.get(url + "/api/v1/documents", timeout=30)
    assert missing.status_code == 401 and "chatbot keys create" in missing.json()["error"]["message"]
    wrong = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer cbk_not-a-key"}, timeout=30)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(url + "/api/v1/documents", headers=portal.auth(), timeout=30).status_code == 200
    old = create_key(portal.served, "old")
    assert httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {old}"}, timeout=30).status_code == 200
    assert portal.served.chatbot("keys", "revoke", "old").returncode == 0
    revoked = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {old}"}, timeout=30)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    listing = portal.served.chatbot("keys", "list").stdout
    assert "portal" in listing and old not in listing and "revoked" in listing
    for path in ("/healthz", "/readyz", "/widget.js", "/"):  # health, the widget and the chat page stay public
        assert httpx.get(url + path, timeout=30).status_code == 200, path


def test_cors_allows_the_portal_origin_only(portal):
    url = portal.served.url
    preflight = httpx.options(url + "/api/v1/ask/stream", timeout=30, headers={
        "Origin": portal.origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == portal.origin
    other = httpx.options(url + "/api/v1/ask/stream", timeout=30, headers={
        "Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers
    r = httpx.get(url + "/api/v1/documents", headers={**portal.auth(), "Origin": portal.origin}, timeout=30)
    assert r.headers["access-control-allow-origin"] == portal.origin


def test_rate_limit_per_key(portal):
    url = portal.served.url
    codes = [httpx.get(url + "/v1/models", headers=portal.auth("tiny"), timeout=30).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = httpx.get(url + "/v1/models", headers=portal.auth("tiny"), timeout=30)
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    assert httpx.get(url + "/v1/models", headers=portal.auth(), timeout=30).status_code == 200


def test_full_waiting_line_gets_503_with_retry_after(portal):
    url = portal.served.url

    def ask(i: int) -> httpx.Response:  # four different top_k: four answers to generate, none from the cache
        return httpx.post(url + "/api/v1/ask", json={"question": QUESTION, "id": str(i), "top_k": 3 + i},
                          headers=portal.auth("fuzz"), timeout=300)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(ask, range(4)))
    codes = sorted(r.status_code for r in responses)
    # one answers, one waits (max_waiting 1); the others are told to come back
    assert codes.count(200) >= 2 and 503 in codes and set(codes) <= {200, 503}, codes
    for r in responses:
        if r.status_code == 503:
            assert r.json()["error"]["code"] == "busy" and int(r.headers["retry-after"]) >= 1
        else:
            assert r.json()["refused"] is False


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Every generation costs seconds on 2 cores: the endpoints that may call the LLM get a few examples (most
# generated questions are off-topic and refused before the LLM), the rest more.
EXAMPLES = {"/api/v1/ask": 6, "/api/v1/ask/stream": 6, "/v1/chat/completions": 6}


def test_schemathesis_finds_no_server_error_and_no_schema_violation(portal):
    schema = schemathesis.openapi.from_url(portal.served.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    tested = []
    for operation in operations:
        strategy = st.one_of(operation.as_strategy(),
                             operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        @given(case=strategy)
        @settings(max_examples=EXAMPLES.get(operation.path, 25), deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:  # noqa: ANN001
            case.call_and_validate(headers=portal.auth("fuzz"), checks=CHECKS, timeout=300)

        check()
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert {"POST /api/v1/ask", "POST /api/v1/ask/stream", "POST /api/v1/retrieve", "GET /api/v1/documents",
            "GET /api/v1/documents/{doc_id}", "POST /v1/chat/completions", "GET /v1/models"} <= set(tested)


def test_widget_on_another_origin_streams_a_cited_answer(portal, artifacts: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(portal.page_url)
            page.click(".cb-bubble")
            page.fill(".cb-input", QUESTION)
            page.click(".cb-send")
            page.wait_for_selector(".cb-answer.cb-final", timeout=240_000)
            answer = page.inner_text(".cb-answer.cb-final")
            assert "11" in answer and re.search(r"\[\d+\]", answer), answer
            assert page.locator(".cb-answer.cb-final .cb-ref").count() >= 1
            assert page.locator(".cb-notice, .cb-extractive").count() == 0  # a written answer has no quotes notice
            sources = page.locator(".cb-source")
            assert sources.count() >= 1
            quote = sources.first.locator(".cb-quote").inner_text()
            assert len(quote) > 20 and "characters" in sources.first.locator(".cb-meta").inner_text()
            sources.first.locator(".cb-context").click()
            page.wait_for_selector(".cb-doc mark", timeout=30_000)
            assert page.inner_text(".cb-doc mark").strip() == quote.strip()
            # The context around the span starts and ends between words, and the span is scrolled into view.
            [doc] = httpx.get(portal.served.url + "/api/v1/documents", headers=portal.auth(), timeout=30).json()[
                "documents"]
            text = httpx.get(f"{portal.served.url}/api/v1/documents/{doc['doc_id']}", headers=portal.auth(),
                             timeout=30).json()["text"]
            context = page.locator(".cb-doc").text_content().removeprefix("…").removesuffix("…")
            at = text.index(context)
            assert at == 0 or not (text[at - 1].isalnum() and text[at].isalnum()), text[at - 10:at + 20]
            end = at + len(context)
            assert end == len(text) or not (text[end - 1].isalnum() and text[end].isalnum()), text[end - 20:end + 10]
            shown, mark = page.locator(".cb-doc").bounding_box(), page.locator(".cb-doc mark").bounding_box()
            assert shown["y"] <= mark["y"] < shown["y"] + shown["height"] - 10, (shown, mark)
            page.screenshot(path=str(artifacts / "api-widget.png"))
            assert not [e for e in errors if "CORS" in e or "Access-Control" in e], errors
            hosts = {httpx.URL(u).netloc.decode() for u in requests if u.startswith("http")}
            assert hosts <= {httpx.URL(portal.origin).netloc.decode(), httpx.URL(portal.served.url).netloc.decode()}
        finally:
            browser.close()


def test_widget_on_an_origin_the_server_refuses_names_the_setting(portal, artifacts: Path):
    """The same portal page opened as localhost, an origin not in CHATBOT_CORS_ORIGINS: the browser hides why the
    request failed, and the widget says the server refused this origin and which setting admits it."""
    from playwright.sync_api import sync_playwright

    refused = portal.page_url.replace("://127.0.0.1:", "://localhost:")
    origin = refused.rsplit("/", 1)[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(locale="en-US")
            page.goto(refused)
            page.click(".cb-bubble")
            page.fill(".cb-input", QUESTION)
            page.click(".cb-send")
            message = page.locator(".cb-answer.cb-error")
            message.wait_for(timeout=30_000)
            assert message.inner_text() == (
                f"The server ({portal.served.url}) is up but refused this page's origin ({origin}): its "
                f"administrator must add {origin} to CHATBOT_CORS_ORIGINS.")
            page.screenshot(path=str(artifacts / "api-widget-refused-origin.png"))
        finally:
            browser.close()


def test_widget_shows_why_an_answer_is_quotes_when_the_llm_is_unreachable(quoting_portal, artifacts: Path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(locale="en-US")
            page.goto(quoting_portal.page_url)
            page.click(".cb-bubble")
            # English question, then a Chinese one: the label is the widget's (English), each notice the answer's.
            for n, (question, language) in enumerate([(QUESTION, "en"), ("中国太平构建了多少条高质量保险数据指令？", "zh")]):
                page.fill(".cb-input", question)
                page.click(".cb-send")
                bot = page.locator(".cb-bot").nth(n)
                expect(bot.locator(".cb-answer.cb-final")).to_be_visible(timeout=60_000)
                notice = bot.locator(".cb-notice")
                expect(notice).to_be_visible()
                assert notice.get_attribute("role") == "note"
                assert notice.locator(".cb-notice-label").inner_text() == (
                    "Quoted from the documents: the language model did not answer")
                text = notice.locator(".cb-notice-text")
                assert text.inner_text() == extractive_notice(language) and text.get_attribute("lang") == language
                # the note sits above the quotes, which are cited and listed with their sources
                assert bot.evaluate("b => b.querySelector('.cb-notice').nextElementSibling.matches('.cb-answer')")
                answer = bot.locator(".cb-answer.cb-final").inner_text()
                assert answer.startswith("Quoted from the documents:" if language == "en" else "以下直接引用文件原文"), answer
                assert bot.locator(".cb-answer .cb-ref").count() >= 1
                sources = bot.locator(".cb-source")
                assert sources.count() >= 1 and bot.locator(".cb-sources-head").is_visible()
                quote = " ".join(sources.first.locator(".cb-quote").inner_text().split())
                assert f"“{quote}”" in " ".join(answer.split()), (quote, answer)
                assert bot.locator(".cb-draft").count() == 0 and bot.locator(".cb-status").count() == 0
            assert "11 municipal state-owned enterprises" in page.locator(".cb-bot").first.inner_text()
            page.locator(".cb-notice").last.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts / "api-widget-quotes.png"))
        finally:
            browser.close()
