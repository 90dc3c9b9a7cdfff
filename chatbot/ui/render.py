"""HTML of the chat, rendered from Jinja2 templates with autoescape: every document or model text is escaped."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape

from chatbot.markers import MARKER
from chatbot.schemas import Answer
from chatbot.ui.conversation import CitedPassage, Conversation, DocSummary
from chatbot.config import DEFAULTS
from chatbot.ui.i18n import LANGUAGES, pick, t

QUESTION_SHOWN = 280  # characters of a question shown in its bubble (a 10,000-character paste is cut)


@dataclass(frozen=True)
class Segment:
    """A piece of an answer: plain text, or a citation marker [n] (`cited` is the sentence it cites, None if
    unknown)."""

    text: str
    n: int | None = None
    cited: str | None = None


def answer_segments(text: str, citations: Sequence[CitedPassage] = ()) -> list[Segment]:
    """Split an answer at its [n] markers ("[1, 2]" gives two); a marker knows the sentence it cites."""
    by_n = {c.n: c.sentence for c in citations}
    out: list[Segment] = []
    pos = 0
    for m in MARKER.finditer(text):
        if m.start() > pos:
            out.append(Segment(text[pos:m.start()]))
        for part in m.group(1).replace("，", ",").split(","):
            n = int(part.strip())
            out.append(Segment(f"[{n}]", n=n, cited=by_n.get(n)))
        pos = m.end()
    if pos < len(text):
        out.append(Segment(text[pos:]))
    return out


def when(timestamp: str) -> str:
    """An ISO timestamp as "2024-07-06 09:34 UTC" (as given when it is not one)."""
    try:
        moment = dt.datetime.fromisoformat(timestamp.replace("+0000", "+00:00"))
    except ValueError:
        return timestamp
    if moment.tzinfo is not None:
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Run:
    """Segments drawn together; `keep_together` keeps a word, its markers and the punctuation after them on one
    line, so a marker never starts a line on its own."""

    segments: tuple[Segment, ...]
    keep_together: bool = False


_LAST_WORD = re.compile(r"(?:[A-Za-z0-9%'’.\-]{1,24}|\S{1,2})$")
_PUNCTUATION = re.compile(r"[.,;:!?。，；：！？、)）\]”’」』]+")


def answer_runs(text: str, citations: Sequence[CitedPassage] = ()) -> list[Run]:
    """The answer's segments grouped for drawing: each group of markers with the word before it and the
    punctuation after it."""
    runs: list[Run] = []
    pending = ""  # text not placed yet
    segments = answer_segments(text, citations)
    i = 0
    while i < len(segments):
        if segments[i].n is None:
            pending += segments[i].text
            i += 1
            continue
        word = _LAST_WORD.search(pending)
        cut = word.start() if word else len(pending)
        if pending[:cut]:
            runs.append(Run((Segment(pending[:cut]),)))
        glued = [Segment(pending[cut:])] if pending[cut:] else []
        while i < len(segments) and segments[i].n is not None:
            glued.append(segments[i])
            i += 1
        pending = ""
        if i < len(segments):
            after = segments[i].text
            punct = _PUNCTUATION.match(after)
            if punct:
                glued.append(Segment(punct.group()))
            pending = after[punct.end() if punct else 0:]
            i += 1
        runs.append(Run(tuple(glued), keep_together=True))
    if pending:
        runs.append(Run((Segment(pending),)))
    return runs


def removed_label(lang: str, n: int) -> str:
    return t(lang, "removed_one") if n == 1 else t(lang, "removed_many", n=n)


def seconds(lang: str, answer: Answer) -> str:
    """How long the answer took ("answered before" when it came from the service's answer cache)."""
    if "cache" in answer.timings_ms:
        return t(lang, "cached")
    total = answer.timings_ms.get("total")
    return t(lang, "seconds", s=f"{total / 1000:.1f}") if total is not None else ""


@cache
def _env() -> Environment:
    env = Environment(loader=PackageLoader("chatbot.ui", "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(t=t, pick=pick, answer_runs=answer_runs, removed_label=removed_label, seconds=seconds,
                       when=when, QUESTION_SHOWN=QUESTION_SHOWN)
    return env


def _render(template: str, **context: object) -> str:
    return _env().get_template(template).render(**context)


def render_header(lang: str, title: Mapping[str, str] = DEFAULTS.title,
                  subtitle: Mapping[str, str] = DEFAULTS.subtitle, mark: str = DEFAULTS.brand_mark) -> str:
    """The chat's header: the deployment's title, subtitle and badge (settings.title, subtitle, brand_mark)."""
    return _render("header.html", lang=lang, title=title, subtitle=subtitle, mark=mark)


def render_footer(lang: str) -> str:
    return _render("footer.html", lang=lang)


def render_conversation(conversation: Conversation, lang: str,
                        examples: Mapping[str, list[str]] = DEFAULTS.example_questions) -> str:
    """The chat; an empty one offers the example questions (settings.example_questions) in `lang`."""
    return _render("conversation.html", lang=lang, turns=conversation.turns, examples=pick(examples, lang),
                   busy=conversation.busy)


def render_reader(lang: str, doc: DocSummary | None = None, text: str = "", start: int = 0, end: int = 0,
                  sentence: tuple[int, int] | None = None, *, followed: bool = False) -> str:
    """The reader panel: a whole document with the span start:end highlighted (inside its sentence, when that is
    given), or a hint when no document is open. `followed`: shown for a new answer rather than opened by a click,
    so the page is not scrolled to it."""
    s_start, s_end = sentence or (start, end)
    return _render("reader.html", lang=lang, doc=doc, before=text[:s_start], sentence_before=text[s_start:start],
                   span=text[start:end], sentence_after=text[end:s_end], after=text[s_end:], start=start, end=end,
                   followed=followed)


def render_documents(lang: str, documents: Sequence[object] | None, message: str = "") -> str:
    """The Documents tab: what is indexed (DocInfo rows), or a message (loading, nothing indexed)."""
    return _render("documents.html", lang=lang, documents=documents or [], message=message)


def render_notice(lang: str, message: str) -> str:
    return _render("notice.html", lang=lang, message=message)


@cache
def head_html() -> str:
    """The page's <style> and <script>, from chatbot/ui/static (served inline: nothing is fetched from outside)."""
    static = resources.files("chatbot.ui").joinpath("static")
    css = static.joinpath("chat.css").read_text(encoding="utf-8")
    return f"<style>{css}</style>"


@cache
def script(name: str) -> str:
    return resources.files("chatbot.ui").joinpath("static", name).read_text(encoding="utf-8")


__all__ = ["LANGUAGES", "Run", "Segment", "answer_runs", "answer_segments", "head_html", "render_conversation",
           "render_documents", "render_footer", "render_header", "render_notice", "render_reader", "script"]
