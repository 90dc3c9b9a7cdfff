"""The chat in a real browser (Playwright driving Debian's Chromium) against the served app: ask, watch the draft
turn into the verified answer, click a citation, open the document, rate, switch to Chinese; every request the
page makes stays on this machine. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json
import sqlite3
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.e2e
sync_api = pytest.importorskip("playwright.sync_api")

ANSWER_TIMEOUT_MS = 180_000  # an answer takes 3-15 s on 2 cores; generous for a loaded machine
FINAL = ".cb-turn:last-child :is(.cb-answer, .cb-refusal, .cb-error)"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make browser)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_chat(browser, served, locale: str, requests: list[str]):  # noqa: ANN001, ANN201
    page = browser.new_page(viewport={"width": 1360, "height": 900}, locale=locale)
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    page.goto(served.url + "/")
    page.wait_for_selector(".cb-conv", timeout=60_000)
    return page


def ask(page, question: str) -> None:  # noqa: ANN001
    turns = page.locator(".cb-turn").count()
    page.fill("#cb-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('.cb-turn').length > {turns}")


def document_text(served, doc_id: str) -> str:  # noqa: ANN001
    """The indexed document's text: its corpus file (a .txt file, whose extracted text is the file itself)."""
    manifest = tomllib.loads((served.root / "corpus" / "manifest.toml").read_text(encoding="utf-8"))
    [file] = [d["file"] for d in manifest["document"] if d["doc_id"] == doc_id]
    return (served.root / "corpus" / file).read_text(encoding="utf-8")


def test_chat_in_the_browser(browser, served, artifacts: Path) -> None:  # noqa: ANN001
    requests: list[str] = []
    page = open_chat(browser, served, "en-US", requests)
    assert page.locator(".cb-example").count() >= 3  # a first-time user sees example questions
    assert "Shanghai" in page.inner_text(".cb-header h1")
    top = page.locator("#cb-top").bounding_box()
    left, right = top["x"], page.viewport_size["width"] - top["x"] - top["width"]
    assert abs(left - right) <= 4, (left, right)  # the page is centred
    page.screenshot(path=str(artifacts / "chat-welcome.png"))

    # The answer streams as a provisional draft, then the verified answer replaces it.
    ask(page, "What is Shanghai Electric providing for large models?")
    draft = page.wait_for_selector(".cb-turn:last-child .cb-draft .cb-draft-text", timeout=ANSWER_TIMEOUT_MS)
    assert "not verified" in page.inner_text(".cb-turn:last-child .cb-draft .cb-label")
    assert draft.evaluate("el => getComputedStyle(el).fontStyle") == "italic"
    page.screenshot(path=str(artifacts / "chat-draft.png"))
    page.wait_for_selector(FINAL, timeout=ANSWER_TIMEOUT_MS)
    assert page.locator(".cb-turn:last-child .cb-answer").count() == 1, page.inner_text(".cb-turn:last-child")
    assert page.locator(".cb-draft").count() == 0

    # A citation shows its sentence: hover text, and the highlighted span in its source card.
    cite = page.locator(".cb-turn:last-child .cb-cite[data-n]").first
    cite.click()
    card = page.locator(".cb-turn:last-child .cb-source.cb-active")
    doc_id, start, end = card.get_attribute("data-doc"), int(card.get_attribute("data-start")), \
        int(card.get_attribute("data-end"))
    text = document_text(served, doc_id)
    assert card.locator("mark").text_content() == text[start:end]
    sentence = card.locator(".cb-sentence").text_content()  # a cited clause is shown inside its sentence
    assert text[start:end] in sentence and sentence in text
    assert cite.get_attribute("data-tip") == sentence
    page.screenshot(path=str(artifacts / "chat-answer.png"))

    # Hovering a marker at the very top of the chat pane shows its whole sentence, inside the window.
    page.evaluate("""() => { const pane = document.querySelector('#cb-conversation');
        const cite = document.querySelector('.cb-turn:last-child .cb-cite[data-n]');
        pane.scrollTop += cite.getBoundingClientRect().top - pane.getBoundingClientRect().top - 2; }""")
    cite.hover()
    tip = page.locator(".cb-tip")
    tip.wait_for(state="visible", timeout=5_000)
    assert tip.text_content() == sentence
    box, view = tip.bounding_box(), page.viewport_size
    assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= view["width"] \
        and box["y"] + box["height"] <= view["height"], box
    marker = cite.bounding_box()
    assert box["y"] + box["height"] <= marker["y"] or box["y"] >= marker["y"] + marker["height"]  # not over it
    page.screenshot(path=str(artifacts / "chat-tooltip.png"))
    page.mouse.move(0, 0)
    tip.wait_for(state="hidden", timeout=5_000)

    # "Open document" shows the whole document, scrolled to the same highlighted span.
    card.locator("[data-action=open_doc]").click()
    mark = page.locator(".cb-reader-body mark.cb-doc-hl")
    mark.wait_for(timeout=30_000)
    assert mark.text_content() == text[start:end]
    assert page.locator(".cb-reader-body").text_content() == text
    page.wait_for_timeout(400)
    body, span = page.locator(".cb-reader-body").bounding_box(), mark.bounding_box()
    assert body["y"] <= span["y"] < body["y"] + body["height"]  # the span is in view inside the reader
    page.screenshot(path=str(artifacts / "chat-document.png"))

    # Thumbs down and a comment are stored with the answer.
    page.locator(".cb-turn:last-child .cb-rate[data-rating='-1']").click()
    page.locator(".cb-turn:last-child .cb-comment textarea").fill("Too short.")
    page.locator(".cb-turn:last-child [data-action=comment]").click()
    page.wait_for_selector(".cb-turn:last-child .cb-comment-saved", timeout=30_000)
    with sqlite3.connect(served.db_path) as con:
        rating, comment, citations, source = con.execute(
            "SELECT rating, comment, citations, source FROM feedback WHERE source = 'chat' ORDER BY id DESC").fetchone()
    assert (rating, comment, source) == (-1, "Too short.", "chat")
    assert any((c["start"], c["end"]) == (start, end) for c in json.loads(citations))

    # An oversized question is a readable message, and the chat keeps working.
    ask(page, "x" * 10_000)
    page.wait_for_selector(FINAL, timeout=30_000)
    assert "10000 characters" in page.inner_text(".cb-turn:last-child .cb-error")
    assert mark.text_content() == text[start:end]  # no new answer: the reader still shows the last one's span

    # Switching the interface to Chinese relabels it; a Chinese question gets its answer.
    page.locator("#cb-lang label", has_text="中文").click()
    page.wait_for_function("document.querySelector('.cb-header h1').textContent.includes('上海')")
    page.locator("button[role=tab]", has_text="问答").wait_for(timeout=10_000)
    page.wait_for_function("document.querySelector('#cb-footer').textContent.includes('本机')")
    shown = page.inner_text("body")  # the footer too is in Chinese: Gradio's English one is gone
    assert "Runs offline" not in shown and "Built with Gradio" not in shown and "Use via API" not in shown
    ask(page, "市国资委打造了多少个高质量产业互联网平台？")
    page.wait_for_selector(FINAL, timeout=ANSWER_TIMEOUT_MS)
    final = page.inner_text(".cb-turn:last-child")
    assert "已对照出处核实" in final or "文件中没有答案" in final, final
    # The open reader follows the new answer: its first source's span, or nothing for a refusal.
    first = page.locator(".cb-turn:last-child .cb-source").first
    if first.count():
        page.wait_for_function("(s) => document.querySelector('.cb-reader-body')?.dataset.start === s",
                               arg=first.get_attribute("data-start"), timeout=10_000)
        assert mark.text_content() == first.locator("mark").text_content()
    else:
        page.locator(".cb-reader-empty").wait_for(timeout=10_000)
    page.screenshot(path=str(artifacts / "chat-chinese.png"))

    # The Documents tab lists what is indexed.
    page.locator("button[role=tab]", has_text="文件").click()
    page.wait_for_selector(".cb-table tbody tr", timeout=30_000)
    assert page.locator(".cb-table tbody tr").count() >= 1

    hosts = {urlparse(u).hostname for u in requests}
    assert hosts == {"127.0.0.1"}, sorted(u for u in requests if urlparse(u).hostname != "127.0.0.1")
    page.close()


def test_interface_follows_the_browser_language(browser, served) -> None:  # noqa: ANN001
    requests: list[str] = []
    page = open_chat(browser, served, "zh-CN", requests)
    page.wait_for_function("document.querySelector('.cb-header h1').textContent.includes('上海')", timeout=30_000)
    assert "试试这些问题" in page.inner_text(".cb-welcome")
    assert {urlparse(u).hostname for u in requests} == {"127.0.0.1"}
    page.close()


def test_a_phone_shows_the_title_the_question_box_and_a_tall_conversation(
        browser, served, artifacts: Path) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True)
    page.goto(served.url + "/")
    page.wait_for_selector(".cb-conv", timeout=60_000)
    page.wait_for_function("document.querySelector('.cb-header h1').textContent.includes('上海')", timeout=30_000)
    for lang in ("中文", "English"):
        page.locator("#cb-lang label", has_text=lang).click()
        page.wait_for_function("(zh) => document.querySelector('#cb-new').textContent.includes('新') === zh",
                               arg=lang == "中文", timeout=10_000)
        page.evaluate("window.scrollTo(0, 0)")
        title = page.locator(".cb-header h1")
        line = float(title.evaluate("h => parseFloat(getComputedStyle(h).lineHeight)"))
        assert title.bounding_box()["height"] <= 2 * line + 2, lang  # one or two lines, not a column of characters
        boxes = {sel: page.locator(sel).bounding_box() for sel in ("#cb-question textarea", "#cb-send", "#cb-new")}
        for sel, box in boxes.items():  # the question box and both buttons, on one line, without scrolling
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844, (lang, sel)
            assert box["height"] >= 36 and box["width"] >= 40, (lang, sel, box)
            assert abs(box["y"] - boxes["#cb-send"]["y"]) <= 2, (lang, sel)
        assert page.locator("#cb-conversation").bounding_box()["height"] >= 0.6 * 844, lang
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, lang  # nothing sticks out sideways
    page.screenshot(path=str(artifacts / "chat-phone.png"))
    page.close()


def test_a_second_browser_waits_for_the_model_and_is_told_so(browser, served) -> None:  # noqa: ANN001
    first, second = (open_chat(browser, served, "en-US", []) for _ in range(2))
    # Both ask at once: the model answers one question at a time, so one of the two waits and must be told so.
    # (Which one is a race: the Chinese question is translated first, and the other may take the model then.)
    ask(first, "中国太平的保险大模型每年带来多少业务价值？")
    ask(second, "What is the Airport Group building?")
    assert first.locator("#cb-send").is_disabled()  # one question at a time per browser
    waiting = ".cb-turn:last-child .cb-draft .cb-label:has-text('Waiting for the model')"
    deadline = time.monotonic() + 30
    while not any(page.locator(waiting).count() for page in (first, second)):
        assert time.monotonic() < deadline, "neither browser was told it waits for the model"
        first.wait_for_timeout(50)
    for page in (first, second):
        page.wait_for_selector(FINAL, timeout=ANSWER_TIMEOUT_MS)
        assert page.locator(".cb-turn:last-child .cb-error").count() == 0
        page.close()
