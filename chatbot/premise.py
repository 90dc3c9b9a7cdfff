"""False premises: a number the question assumes that the documents state differently about the same thing
("Why did 20 enterprises launch it?" where the documents say 11 enterprises). A number the documents do not
state about anything the question asks ("profit in 2023", "which two goals") is not a premise to correct.
And a quoted term the question gives to one name where the documents give it to another ("Shanghai
Electric's “All in AI” strategy" where the documents say Guotai Junan promotes it)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatbot.config import DEFAULTS
from chatbot.corpus import detect_language
from chatbot.keyword import tokenize
from chatbot.names import name_runs, person_like, quote_spans
from chatbot.numbers import NUMBER_WORDS, Quantity, extract_quantities, is_digits, same_value
from chatbot.query import Query
from chatbot.verification import (
    PRONOUN_START,
    Passage,
    Similarity,
    acronym_matches,
    has_word,
    named_before,
    number_context_supported,
    word_coverage,
    words_around,
)

_UNITS_AFTER = re.compile(r"^\s*(percent|per cent|%)", re.I)
_LABEL_BEFORE = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][a-z]+\s*$")


@dataclass(frozen=True)
class PremiseConflict:
    asked: str  # the question's number as written ("20"), or name ("Cheng Peng")
    stated: str  # the documents' number about the same thing, as written ("11"), or name ("He Qing")
    passage: int  # the passage (n) that states it
    term: str = ""  # a name conflict: the quoted term the passage ties to `stated`


def premise_gaps(question: str, passages: Sequence[str]) -> list[str]:
    """Numbers the question states that no passage contains (by value)."""
    values = [q.value for q in extract_quantities(" ".join(passages))]
    return [question[q.start : q.end] for q in extract_quantities(question)
            if not any(same_value(q.value, v) for v in values)]


def _kind(text: str, q: Quantity) -> str:
    surface = text[q.start : q.end]
    if q.percent or _UNITS_AFTER.match(text[q.end :]):
        return "percent"
    if re.fullmatch(r"(19|20)\d\d", surface.strip()):
        return "year"
    return "amount"


def _around(text: str, q: Quantity, before: int = 4, after: int = 3) -> tuple[set[str], list[str]]:
    """Content words just before and after a number (what it counts, whose it is); the words after, in order."""
    left, right = words_around(text, q, before, after)
    return set(left) | set(right), right


def _adjacent(text: str, q: Quantity) -> set[str]:
    """The content words right before and right after a number: what a year dates ("profit in 2022", "the 2023
    conference")."""
    left, right = words_around(text, q, 1, 1)
    return set(left) | set(right)


def _counted(after: str) -> list[str]:
    """The words a number counts: up to three words after it, stopping at the next number."""
    out = []
    for t in tokenize(after)[:4]:
        if is_digits(t):
            break
        if t not in NUMBER_WORDS:
            out.append(t)
    return out[:3]


_WORD = re.compile(r"[A-Za-z][A-Za-z-]*")


def _counted_noun(after: str) -> str | None:
    """The word right after a number, as written (skipping "million" and the like): what it counts."""
    found = [w for w in _WORD.findall(after[:40]) if w.lower() not in NUMBER_WORDS]
    return found[0].lower() if found else None


def _context(p: Passage) -> str:
    """The sentence around the passage (the words that say what its numbers count), or the passage itself."""
    return p.context_text or p.shown


def _stated_about(question: str, q: Quantity, kind: str, near: set[str], text: str, p: Quantity,
                  min_overlap_counted: float) -> bool:
    """Does the passage state the question's number about what the question says it is about? A year says when,
    not what is counted, so it is compared by the words around it: "the 2023 conference" is not stated by "the
    2023-2025 reform plan"."""
    if kind != "year":
        return number_context_supported(question, q, text)
    if not near or detect_language(text) != detect_language(question):
        return True
    return word_coverage(near, text[max(0, p.start - 120) : p.end + 80]) >= min_overlap_counted


def premise_conflicts(query: Query, passages: Sequence[Passage], similarity: Similarity | None = None, *,
                      min_overlap: float = DEFAULTS.premise_min_overlap,
                      min_overlap_counted: float = DEFAULTS.premise_min_overlap_counted,
                      min_similarity_cross: float = DEFAULTS.premise_min_similarity_cross,
                      same_noun_similarity: float = DEFAULTS.same_noun_similarity) -> list[PremiseConflict]:
    """Each question number that no passage states about the same thing, paired with the number a passage
    does state about it (the words around both numbers meet; across languages, the passage is close to the
    question in the multilingual space). The thresholds are settings (premise_min_overlap …)."""
    out: list[PremiseConflict] = []
    cross_sims: dict[int, float] | None = None
    nouns: dict[tuple[str, str], bool] = {}

    def same_noun(asked: str | None, stated: str | None) -> bool:
        """Do two numbers count the same thing in other words ("100 enterprises", "49 companies")?"""
        if asked is None or stated is None or similarity is None:
            return False
        if asked != stated and (asked, stated) not in nouns:
            nouns[(asked, stated)] = float(similarity([asked], [stated])[0, 0]) >= same_noun_similarity
        return asked == stated or nouns[(asked, stated)]

    for q in query.quantities:
        if _LABEL_BEFORE.search(query.text[: q.start]):
            continue  # "Line 3", "Terminal 2": a name, not a quantity
        kind = _kind(query.text, q)
        near, after = _around(query.text, q)
        asked_noun = _counted_noun(query.text[q.end :])
        if any(same_value(q.value, p.value)
               and _stated_about(query.text, q, kind, near, text, p, min_overlap_counted)
               for ps in passages for text in (ps.shown, _context(ps)) for p in extract_quantities(text)):
            continue  # the documents state this number about this thing: no false premise
        best: tuple[float, str, int] | None = None
        for ps in passages:
            text = _context(ps)
            offset = (ps.start - ps.context_start) if ps.context_text and ps.context_start is not None else 0
            same_language = detect_language(text) == query.language
            for p in extract_quantities(text):
                if not offset <= p.start < offset + (ps.end - ps.start):
                    continue  # a number the model was not shown
                if same_value(p.value, q.value) or _kind(text, p) != kind:
                    continue
                if same_language:
                    if not near:
                        continue
                    window = text[max(0, p.start - 120) : p.end + 80]
                    counted = _counted(text[p.end :])
                    if after and not set(after) & set(counted) and not same_noun(asked_noun,
                                                                                 _counted_noun(text[p.end :])):
                        continue  # what the question counts ("50 billion yuan") must be what the passage counts
                    strength = word_coverage(near, window)
                    if strength < (min_overlap_counted if after else min_overlap):
                        continue
                    if kind == "year" and not word_coverage(_adjacent(query.text, q), window):
                        continue  # "profit in 2022" is not "the reform programme (2023-2025)"
                else:
                    if similarity is None:
                        continue
                    if cross_sims is None:
                        sims = similarity([query.text], [x.shown for x in passages])
                        cross_sims = {x.n: float(sims[0, j]) for j, x in enumerate(passages)}
                    strength = cross_sims[ps.n]
                    if strength < min_similarity_cross:
                        continue
                strength -= 0.05 * abs(math.log10(max(abs(q.value), 1e-9)) - math.log10(max(abs(p.value), 1e-9)))
                if best is None or strength > best[0]:
                    best = (strength, text[p.start : p.end], ps.n)
        if best is not None:
            out.append(PremiseConflict(asked=query.text[q.start : q.end], stated=best[1], passage=best[2]))
    return out


def attribution_conflicts(query: Query, passages: Sequence[Passage],
                          document_text: Callable[[str], str | None] | None = None, *,
                          referent_sentences: int = DEFAULTS.referent_sentences) -> list[PremiseConflict]:
    """A term the question quotes, tied in the question to a name (a person, or an organisation of two or more
    words) that no sentence stating the term mentions, where that sentence names another of the same kind:
    "Why did Cheng Peng talk about the “multiplier effect”?" where the documents' sentence has He Qing say it.
    A sentence that begins with a pronoun refers to the name of a sentence just before it (`document_text`)."""
    if not query.quoted:
        return []
    inside = quote_spans(query.text)
    asked = [m for m in _names_outside_quotes(query.text, inside) if len(m.split()) >= 2]
    asked.sort(key=lambda n: not person_like(n))  # people first: a role is less often written two ways
    for term in query.quoted:
        stating = [p for p in passages if term.lower() in _context(p).lower()]
        if not stating:
            continue
        for name in asked:
            if any(_mentions(p, name, document_text, referent_sentences) for p in stating):
                continue  # the documents tie this name to the term
            for p in stating:
                text = _context(p)
                others = [o for o in _names_outside_quotes(text, quote_spans(text))
                          if len(o.split()) >= 2 and person_like(o) == person_like(name)
                          and not has_word(query.text, o)]
                if others:
                    return [PremiseConflict(asked=name, stated=others[0], passage=p.n, term=term)]
    return []


def _names_outside_quotes(text: str, quotes: list[tuple[int, int]]) -> list[str]:
    out = []
    for m in re.finditer(r"[^“”\"「」『』]+", text):
        if any(a <= m.start() < b for a, b in quotes):
            continue
        out.extend(name_runs(m.group(0)))
    return list(dict.fromkeys(out))


def _mentions(p: Passage, name: str, document_text: Callable[[str], str | None] | None,
              referent_sentences: int) -> bool:
    """Does the passage's sentence name `name` (or one of an organisation's words, or its acronym), or refer
    back to it with a pronoun?"""
    text = _context(p)
    if has_word(text, name) or any(acronym_matches(w, text) for w in name.split()):
        return True
    if not person_like(name) and any(has_word(text, w) for w in name.split() if len(w) > 3):
        return True  # "Municipal SASAC" and "the Municipal State-owned Assets … Commission"
    return document_text is not None and bool(PRONOUN_START.match(text)) and named_before(
        p, name, document_text, referent_sentences)

