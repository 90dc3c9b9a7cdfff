"""Split an answer into sentences, parse their [n] markers, verify each against its cited passages,
re-attribute sentences cited to the wrong passage and drop sentences no passage supports.

A sentence is supported by a passage when
  1. facts: every number (normalised: "1.05 million" = "105万") and every capitalised name in the
     sentence occurs in the passage, except numbers/names the question itself supplied when the
     sentence negates them ("11, not 20, enterprises"); and
  2. meaning: enough of its content words occur in the passage (lexical coverage), or its embedding is
     close to the passage's (cosine, multilingual, so a Chinese sentence can be checked against an
     English passage).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from chatbot.chunking import split_sentences
from chatbot.corpus import detect_language
from chatbot.keyword import tokenize
from chatbot.numbers import extract_quantities, same_value

MARKER = re.compile(r"\s*\[(\d+(?:\s*[,，]\s*\d+)*)\]")
REFUSAL_PATTERNS = re.compile(
    r"(documents? (do|does) not (say|mention|contain|specify|state|provide)|not (mentioned|stated|specified) in the "
    r"(documents?|sources?)|sources? (do|does) not (say|mention|contain|specify|state|provide)|^i don'?t know|"
    r"no information|none of the (provided )?sources|not provided in the (given )?(context|sources)|文件中没有|文件未(提及|说明|提到)|没有相关信息|未提及|没有提到|无法回答|资料中没有)",
    re.IGNORECASE,
)
NEGATION = re.compile(r"\b(not|rather than|instead of|no|never|but)\b|不是|而非|并非|而不是|并不|不|没有|并未", re.I)
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9+\-]*(?:['’]s)?")
_COMMON_CAPS = frozenset(
    "The A An It Its This That These Those In On At By For From To With As He She They Their There Yes No "
    "According Both Each All And But Or So Also However Not Only One Two Three".split()
)


@dataclass
class Passage:
    n: int
    doc_id: str
    start: int
    end: int
    text: str
    score: float = 0.0


@dataclass
class ClaimSentence:
    text: str  # without markers
    markers: list[int]


@dataclass
class VerifiedSentence:
    text: str
    cited: list[int]  # original passage numbers finally attributed (empty: unsupported)
    original: list[int]
    supported: bool
    reattributed: bool = False
    reason: str = ""


@dataclass
class Verification:
    answer: str
    passages: list[Passage]  # the cited passages, renumbered 1..m in order of first citation
    sentences: list[VerifiedSentence] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    refused: bool = False


class Similarity(Protocol):
    def __call__(self, claims: list[str], passages: list[str]) -> np.ndarray: ...


def is_refusal(text: str) -> bool:
    return bool(REFUSAL_PATTERNS.search(text.strip()))


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


def _names(sentence: str) -> list[str]:
    names = []
    for m in _NAME.finditer(sentence):
        word = re.sub(r"['’]s$", "", m.group(0))
        if word in _COMMON_CAPS or len(word) < 2:
            continue
        names.append(word)
    return names


_NAME_RUN = re.compile(r"\b[A-Z][A-Za-z0-9+\-]*(?:\s+[A-Z][A-Za-z0-9+\-]*)*")


def protect_for_translation(english: str, common_words: frozenset[str]) -> tuple[str, dict[str, str]]:
    """Replace proper names and scaled numbers by placeholders (N1, N2 …) that a translation must carry over
    unchanged; restore_translation() puts back the names as written in the source and the numbers in
    Chinese notation (1.05 million -> 105万). Ordinary capitalised words (Secretary, Group) are translated."""
    from chatbot.numbers import chinese_number

    spans: list[tuple[int, int, str]] = []
    for q in extract_quantities(english):
        phrase = english[q.start : q.end]
        inside_marker = any(m.start() <= q.start < m.end() for m in MARKER.finditer(english))
        if not inside_marker and re.search(r"[a-z]", phrase, re.I):  # "1.05 million", "eleven"
            spans.append((q.start, q.end, chinese_number(q)))
    for m in re.finditer(r"[“\"]([^”\"]{1,40})[”\"]", english):  # quoted names: “All in AI”, “1125”
        if not any(s < m.end(1) and m.start(1) < e for s, e, _ in spans):
            spans.append((m.start(1), m.end(1), m.group(1)))
    for m in _NAME_RUN.finditer(english):
        parts = m.group(0).split()
        start = m.start()
        while parts and parts[0] in _COMMON_CAPS - {"He"}:
            start += len(parts[0]) + 1
            parts = parts[1:]
        words = [w.lower() for w in parts]
        person = len(words) >= 2 and all(len(w) <= 5 for w in words)
        if not words or not (person or any(w not in common_words for w in words)):
            continue
        if not any(s < m.end() and start < e for s, e, _ in spans):
            spans.append((start, m.end(), english[start : m.end()]))
    spans = [sp for sp in spans if not any(o != sp and o[0] <= sp[0] and sp[1] <= o[1] for o in spans)]
    slots: dict[str, str] = {}
    out, last = [], 0
    for i, (start, end, value) in enumerate(sorted(spans), 1):
        slots[f"N{i}"] = value
        out.extend([english[last:start], f"N{i}"])
        last = end
    out.append(english[last:])
    return "".join(out), slots


def restore_translation(chinese: str, slots: dict[str, str]) -> str | None:
    """Put the protected names and numbers back; None when a placeholder was lost or duplicated."""
    for key in sorted(slots, key=len, reverse=True):
        if len(re.findall(rf"(?<![A-Za-z0-9]){key}(?![0-9])", chinese)) != 1:
            return None
    for key in sorted(slots, key=len, reverse=True):
        value = slots[key]
        chinese = re.sub(rf"(?<![A-Za-z0-9]){key}(?![0-9])", lambda _m: value, chinese)
    return chinese


def names_preserved(english: str, chinese: str, common_words: frozenset[str]) -> bool:
    """Did a translation keep the English answer's names? A name may stay in Latin letters or be written
    in Chinese characters whose pinyin spells it (Guotai Junan = 国泰君安, He Qing = 贺青); a wrong
    transliteration (国投中粮, 他青) fails. Ordinary English words (in common_words) may be translated."""
    from pypinyin import lazy_pinyin

    low = chinese.lower()
    spelled = "".join(lazy_pinyin(chinese)).lower()

    def kept(word: str) -> bool:
        return word in low or word in spelled

    leading = _COMMON_CAPS - {"He"}  # "He" is also a surname (He Qing)
    for run in _NAME_RUN.findall(MARKER.sub("", english)):
        parts = run.split()
        while parts and parts[0] in leading:
            parts = parts[1:]
        if len(parts) == 1 and parts[0] in _COMMON_CAPS:
            continue
        words = [w.lower() for w in parts]
        rare = [w for w in words if w not in common_words]
        if rare:
            if not all(kept(w) for w in rare):
                return False
        elif len(words) >= 2 and all(len(w) <= 5 for w in words):  # a person's name: He Qing, Cheng Peng
            if not (run.lower() in low or "".join(words) in spelled):
                return False
    return True


def check_facts(claim: str, passages: list[str], question: str) -> str:
    """'' when every number and name in the claim is in the passages; otherwise what is missing."""
    joined = " ".join(passages)
    negated = bool(NEGATION.search(claim))
    q_values = [q.value for q in extract_quantities(question)]
    p_values = [q.value for q in extract_quantities(joined)]
    for q in extract_quantities(claim):
        if any(same_value(q.value, v) for v in p_values):
            continue
        if negated and any(same_value(q.value, v) for v in q_values):
            continue
        return f"number {claim[q.start:q.end]!r} is not in the cited passage"
    low = joined.lower()
    for name in _names(claim):
        # A name the question itself uses is the user's wording, not a new claim.
        word = re.compile(r"(?<![a-z0-9])" + re.escape(name.lower()) + r"(?![a-z0-9])")
        if word.search(low) or word.search(question.lower()):
            continue
        return f"name {name!r} is not in the cited passage"
    return ""


_ASKS_QUANTITY = re.compile(
    r"\b(how (many|much|long|large|big)|budget|cost|price|amount|funding|investment of|percentage|headcount)\b|"
    r"多少|几[个家项大条名种位亿万年]|多大|金额|预算|资金|比例|百分之",
    re.IGNORECASE,
)
_ASKS_DATE = re.compile(r"\b(when|what (date|year|month|day))\b|什么时候|何时|哪一?年|哪一?天|几月|几号|日期", re.I)


_ASKS_NAME = re.compile(
    r"^\s*(who|whom|which\b[^?]{0,40}?\b(company|companies|enterprises?|soes?|firms?|suppliers?|vendors?|"
    r"factory|factories|funds?|platforms?|banks?|person|people|leaders?|officials?|partners?|brokerage|insurer|"
    r"carmaker))\b|\bwhat are the names\b", re.I)


_ASKS_SEVERAL = re.compile(
    r"\b(which (companies|enterprises|soes|areas|fields|aspects|three|two)|what are|list|both|each|two|three|"
    r"four|five)\b|哪些|哪几|分别|[两三四五][个大项家条]|？.+？", re.IGNORECASE)


def asks_for_several(question: str) -> bool:
    """Lists, "which companies", two-part questions: they need evidence from more than a few sentences."""
    return bool(_ASKS_SEVERAL.search(question))


def answers_question_type(question: str, answer: str) -> bool:
    """A 'how many/how much' question needs a number in the answer, a 'when' question a date, a 'who/which
    company' question a name the question did not already give; a fluent sentence without one is not an
    answer (it usually restates a related fact)."""
    text = MARKER.sub("", answer)
    if _ASKS_QUANTITY.search(question) or _ASKS_DATE.search(question):
        return bool(extract_quantities(text))
    if _ASKS_NAME.search(question) and detect_language(text) == "en":
        asked = question.lower()
        return any(not re.search(r"(?<![a-z])" + re.escape(n.lower()) + r"(?![a-z])", asked) for n in _names(text))
    return True


def premise_gaps(question: str, passages: list[str]) -> list[str]:
    """Numbers the question states that no passage contains: a likely false premise to point out."""
    values = [q.value for q in extract_quantities(" ".join(passages))]
    return [question[q.start : q.end] for q in extract_quantities(question)
            if not any(same_value(q.value, v) for v in values)]


def content_words(text: str) -> set[str]:
    """Latin content words of a sentence (stemmed), without numbers and Chinese."""
    words = {t for t in tokenize(text) if not t.replace(".", "").replace(",", "").isdigit()}
    return {w for w in words if not ("\u3400" <= w[0] <= "\u9fff")}


def lexical_coverage(claim: str, passage: str) -> float:
    """Share of the claim's content words found in the passage."""
    words = content_words(claim)
    if not words:
        return 0.0
    return len(words & set(tokenize(passage))) / len(words)


def restates(claim: str, question: str) -> bool:
    """Every content word, number and name of the claim is already in the question: nothing was answered."""
    if detect_language(claim) != "en" or detect_language(question) != "en":
        return False
    q_words = set(tokenize(question))
    q_values = [q.value for q in extract_quantities(question)]
    new_words = content_words(claim) - q_words
    new_values = [q for q in extract_quantities(claim) if not any(same_value(q.value, v) for v in q_values)]
    return not new_words and not new_values


def has_checkable_fact(claim: str) -> bool:
    return bool(extract_quantities(claim) or _names(claim))


def verify_citations(
    answer: str,
    passages: list[Passage],
    question: str,
    similarity: Similarity,
    *,
    min_lexical: float = 0.6,
    min_similarity: float = 0.5,
    min_similarity_cross: float = 0.3,
) -> Verification:
    if is_refusal(answer):
        return Verification(answer="", passages=[], refused=True)
    claims = parse_answer(answer)
    by_n = {p.n: p for p in passages}
    if not claims or not passages:
        return Verification(answer="", passages=[], unsupported=[c.text for c in claims], refused=True)
    sims = similarity([c.text for c in claims], [p.text for p in passages])
    col = {p.n: j for j, p in enumerate(passages)}

    def supports(i: int, claim: ClaimSentence, ns: list[int]) -> tuple[bool, str, float]:
        texts = [by_n[n].text for n in ns]
        reason = check_facts(claim.text, texts, question)
        if reason:
            return False, reason, 0.0
        if not content_words(claim.text) and has_checkable_fact(claim.text):
            return True, "", 1.0  # a bare "49." or "He Qing.": its facts were found in the passage
        if restates(claim.text, question):
            return False, "restates the question without answering it", 0.0
        lex = max(lexical_coverage(claim.text, t) for t in texts)
        sim = max(float(sims[i, col[n]]) for n in ns)
        english = detect_language(claim.text) == "en"
        # Cross-language pairs (a Chinese sentence, an English passage) score lower in the shared space.
        floor = min_similarity if english else min_similarity_cross
        if (english and lex >= min_lexical) or sim >= floor:
            return True, "", sim + (lex if english else 0.0)
        return False, f"meaning not supported (word coverage {lex:.2f}, similarity {sim:.2f})", 0.0

    verified: list[VerifiedSentence] = []
    for i, claim in enumerate(claims):
        if is_refusal(claim.text):
            continue
        cited = [n for n in claim.markers if n in by_n]
        ok, reason, _ = supports(i, claim, cited) if cited else (False, "no citation", 0.0)
        if ok:
            verified.append(VerifiedSentence(claim.text, cited, claim.markers, True))
            continue
        best: tuple[float, int] | None = None
        for p in passages:
            good, _, strength = supports(i, claim, [p.n])
            if good and (best is None or strength > best[0]):
                best = (strength, p.n)
        if best is not None:
            verified.append(VerifiedSentence(claim.text, [best[1]], claim.markers, True, reattributed=True,
                                             reason=f"re-attributed: {reason}"))
        else:
            verified.append(VerifiedSentence(claim.text, [], claim.markers, False, reason=reason))

    order: dict[int, int] = {}
    for v in verified:
        for n in v.cited:
            order.setdefault(n, len(order) + 1)
    parts = []
    for v in verified:
        if not v.supported:
            continue
        marks = "".join(f"[{order[n]}]" for n in v.cited)
        parts.append(_attach(v.text, marks))
    used = [Passage(order[n], by_n[n].doc_id, by_n[n].start, by_n[n].end, by_n[n].text, by_n[n].score)
            for n in sorted(order, key=order.get)]  # type: ignore[arg-type]
    text = _join(parts)
    return Verification(
        answer=text, passages=used, sentences=verified,
        unsupported=[v.text for v in verified if not v.supported], refused=not parts,
    )


def _attach(sentence: str, marks: str) -> str:
    """Put the markers before the sentence's final punctuation: 'Eleven enterprises launched it [1].'"""
    m = re.search(r"[.!?。！？]+[\"”’」)）]*$", sentence)
    if not m:
        return f"{sentence} {marks}" if not _cjk_end(sentence) else f"{sentence}{marks}"
    body, end = sentence[: m.start()], sentence[m.start() :]
    sep = "" if _cjk_end(body) else " "
    return f"{body}{sep}{marks}{end}"


def _cjk_end(text: str) -> bool:
    return bool(text) and ("\u3400" <= text[-1] <= "\u9fff" or text[-1] in "”」）")


def _join(parts: list[str]) -> str:
    out = ""
    for p in parts:
        if out and not _cjk_end(out.rstrip("。！？")) and not ("\u3400" <= p[0] <= "\u9fff"):
            out += " "
        out += p
    return out
