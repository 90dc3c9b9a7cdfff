"""What an answer claims, read by the eval independently of the chatbot's own verifier: its sentences and
their [n] markers, its numbers, its names, its language, and whether a sentence negates what it states."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chatbot.evaluation.tomlfile import load_toml
from chatbot.errors import ChatbotError
from chatbot.numbers import Quantity, extract_quantities, same_value
from chatbot.text import CJK, CJK_RANGE, cjk_count

# "[1]", "[1, 2]", and the "[Source 2]" / "Source 2" forms llama-index's citation prompt invites.
_ONE = r"(?:source\s*)?\d+"
MARKER = re.compile(rf"\[\s*({_ONE}(?:\s*[,，]\s*{_ONE})*)\s*\]|\bsources?\s+\d+(?:\s*(?:,|and|&)\s*sources?\s+\d+|\s+(?:and|&)\s+\d+)*\b",
                    re.IGNORECASE)
_LEADING_MARKERS = re.compile(rf"^\s*((?:\[\s*{_ONE}(?:\s*[,，]\s*{_ONE})*\s*\]\s*)+)", re.IGNORECASE)
# A sentence ends at . ! ? 。！？； (plus closing quotes) before whitespace, a marker, Chinese text or the end;
# "1.05" and "e.g." do not end one.
_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?。！？；]+[\"”’')）」]*(?=\s|$|\[|["
                  + CJK_RANGE + "])")
_LATIN = re.compile(r"[A-Za-z]")
NEGATION = re.compile(
    r"\b(not|no|never|rather than|instead of|instead|actually|incorrect|wrong|but)\b|n't\b|"
    r"不是|并非|而非|而是|并不|并未|没有|不到|不对|有误|实际上|其实|不",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![A-Za-z0-9’'-])[A-Z][A-Za-z0-9&+\-]*")
# Capitalised words that are not names (sentence openers, the document's generic vocabulary in answers).
GENERIC = frozenset("""
a an the it its this that these those they their there he she we i you yes no not only both each all and but
or so also however according based in on at by for from to with as of if when where which who what why how
source sources context document documents text article passage answer note sure here overall additionally
furthermore moreover specifically finally first second third then thus therefore meanwhile unfortunately
ai soe soes state-owned enterprise enterprises shanghai china chinese municipal english q&a ceo llm llms
""".split())


def strip_markers(text: str) -> str:
    return MARKER.sub("", text)


def cited_numbers(text: str) -> list[int]:
    """Every source number the text's markers name, in order of first mention."""
    return list(dict.fromkeys(n for m in MARKER.finditer(text) for n in _numbers(m.group(0))))


def language_of(text: str) -> str:
    """'zh' when Chinese characters are at least a quarter of the letters (a Chinese answer may keep English
    names such as "All in AI"); 'en' otherwise."""
    text = strip_markers(text)
    cjk = cjk_count(text)
    latin = len(_LATIN.findall(text))
    if cjk + latin == 0:
        return "en"
    return "zh" if cjk >= 0.25 * (cjk + latin) else "en"


@dataclass
class AnswerSentence:
    text: str  # without markers
    markers: list[int]


def sentences(answer: str) -> list[AnswerSentence]:
    """The answer's sentences with the [n] markers each carries; markers written after the final
    punctuation ("… ceremony. [1]") belong to the sentence before them."""
    pieces: list[str] = []
    start = 0
    for m in _END.finditer(answer):
        pieces.append(answer[start : m.end()])
        start = m.end()
    pieces.append(answer[start:])
    out: list[AnswerSentence] = []
    for piece in pieces:
        lead = _LEADING_MARKERS.match(piece)
        if lead and out:
            out[-1].markers.extend(_numbers(lead.group(1)))
            piece = piece[lead.end() :]
        markers = cited_numbers(piece)
        text = strip_markers(piece).strip()
        if not re.search(r"\w", text):
            if out and markers:
                out[-1].markers.extend(markers)
            continue
        out.append(AnswerSentence(text, list(dict.fromkeys(markers))))
    for s in out:
        s.markers = list(dict.fromkeys(s.markers))
    return out


def _numbers(group: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", group)]


def quantities(text: str) -> list[Quantity]:
    return extract_quantities(strip_markers(text))


def has_value(value: float, pool: list[float]) -> bool:
    return any(same_value(value, v) for v in pool)


def negated(sentence: str) -> bool:
    return bool(NEGATION.search(sentence))


def latin_names(sentence: str) -> list[str]:
    """Capitalised words that may be names: not the sentence's first word (unless written in capitals or
    camel case), not a generic word."""
    out = []
    for m in _CAPITALISED.finditer(sentence):
        word = re.sub(r"['’]s$", "", m.group(0)).strip("-")
        if len(word) < 2 or word.lower() in GENERIC:
            continue
        first = not re.search(r"[A-Za-z0-9]", sentence[: m.start()])
        shaped = word.isupper() or any(c.isupper() for c in word[1:])
        if first and not shaped:
            continue
        out.append(word)
    return out


def contains_word(text: str, word: str) -> bool:
    """Latin words match whole and case-insensitively; Chinese ones as substrings."""
    if CJK.search(word):
        return word in text
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(word.lower()) + r"(?![A-Za-z0-9])", text.lower()) is not None


class GlossaryError(ChatbotError):
    code = "bad_glossary"


@dataclass(frozen=True)
class Entity:
    forms: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.forms[0]

    def in_text(self, text: str) -> bool:
        return any(contains_word(text, f) for f in self.forms)


class Glossary:
    """Named things (people, bodies, enterprises, products) with their English and Chinese forms, so a
    Chinese answer's 上海电气 is checked against an English passage's "Shanghai Electric"."""

    def __init__(self, entities: list[Entity]) -> None:
        self.entities = entities

    @classmethod
    def from_forms(cls, forms: list[list[str]]) -> Glossary:
        return cls([Entity(tuple(f)) for f in forms])

    @classmethod
    def load(cls, path: Path) -> Glossary:
        data = load_toml(path, GlossaryError, "entity list")
        entities = []
        for i, entry in enumerate(data.get("entity", []), 1):
            forms = entry.get("forms") if isinstance(entry, dict) else None
            if not forms or not all(isinstance(f, str) and f.strip() for f in forms):
                raise GlossaryError(f"{path}: entity {i} needs a non-empty list of 'forms' strings.")
            entities.append(Entity(tuple(forms)))
        return cls(entities)

    def mentioned(self, text: str) -> list[Entity]:
        return [e for e in self.entities if e.in_text(text)]

    def covers(self, word: str) -> bool:
        """The word is part of a glossary form (then the glossary check judges it, not the name check)."""
        return any(contains_word(f, word) for e in self.entities for f in e.forms)
