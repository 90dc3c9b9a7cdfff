"""Citation markers: the one [n] regular expression, splitting an answer into sentences with their markers, and
putting markers back before a sentence's final punctuation (Chinese punctuation for a Chinese sentence)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.chunking import split_sentences
from chatbot.text import cjk_count, is_cjk

MARKER = re.compile(r"\s*\[(\d+(?:\s*[,，]\s*\d+)*)\]")
_END = re.compile(r"[.!?。！？]+[\"”’」)）]*$")


@dataclass
class ClaimSentence:
    text: str  # without markers
    markers: list[int]


def strip_markers(text: str) -> str:
    return MARKER.sub("", text)


def parse_answer(text: str) -> list[ClaimSentence]:
    """Sentences with their [n] markers; a marker-only fragment attaches to the sentence before it."""
    out: list[ClaimSentence] = []
    for span in split_sentences(text):
        raw = text[span.start : span.end]
        markers = [int(n) for group in MARKER.findall(raw) for n in re.split(r"\s*[,，]\s*", group)]
        clean = MARKER.sub("", raw).strip()
        if not re.search(r"\w", clean):
            if out and markers:
                out[-1].markers.extend(m for m in markers if m not in out[-1].markers)
            continue
        out.append(ClaimSentence(clean, list(dict.fromkeys(markers))))
    return out


def is_chinese(text: str) -> bool:
    """Mostly Chinese: more CJK characters than Latin letters (names may stay in Latin letters)."""
    cjk = cjk_count(text)
    latin = len(re.findall(r"[A-Za-z]", text))
    return cjk > 0 and cjk * 2 >= latin


def attach(sentence: str, marks: str, chinese: bool | None = None) -> str:
    """Put the markers before the sentence's final punctuation: 'Eleven enterprises launched it [1].';
    a Chinese sentence ends with Chinese punctuation: '共有11家企业[1]。'. `chinese` overrides the guess from the
    sentence's own characters (a Chinese answer may hold long English names)."""
    chinese = is_chinese(sentence) if chinese is None else chinese
    m = _END.search(sentence)
    body, end = (sentence[: m.start()], sentence[m.start() :]) if m else (sentence, "")
    if chinese:
        end = end.replace(".", "。").replace("?", "？").replace("!", "！") if end else "。"
        end = re.sub(r"。+", "。", end)
        return f"{body.rstrip()}{marks}{end}"
    if not m:
        return f"{sentence} {marks}"
    return f"{body} {marks}{end}"


def _cjk_end(text: str) -> bool:
    return bool(text) and (is_cjk(text[-1]) or text[-1] in "。！？”」）")


def join_sentences(parts: list[str]) -> str:
    """Chinese sentences are joined without spaces, English ones with one."""
    out = ""
    for p in parts:
        if out and not _cjk_end(out) and not is_cjk(p[0]):
            out += " "
        out += p
    return out
