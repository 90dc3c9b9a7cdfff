"""Verification: check each answer sentence against the passages it cites, re-attribute a sentence cited to the
wrong passage, drop sentences no passage supports, and cite the clause that supports each kept sentence.

A sentence is supported by a passage when
  1. facts: every number (normalised: "1.05 million" = "105万") and every capitalised name in the sentence
     occurs in the passage, and what a number counts in the sentence is what it counts in the passage ("49
     people" is not supported by "composed of 49 companies"); numbers/names the question supplied may be
     named when the sentence negates them ("11, not 20, enterprises"); and
  2. meaning: enough of its content words occur in the passage (lexical coverage), or its embedding is close
     to the passage's (cosine, multilingual, so a Chinese sentence can be checked against an English passage).
A passage is what the model was shown: a clause, prefixed with its sentence's subject where the clause lacks
one. The citation is the clause; it widens to take in the subject only when the sentence needs the subject's
name or number, and becomes two citations (subject, clause) when they lie far apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import combinations
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from chatbot.chunking import split_sentences
from chatbot.clauses import split_clauses
from chatbot.config import DEFAULTS
from chatbot.corpus import detect_language
from chatbot.keyword import bridge_tokens, name_pairs, tokenize
from chatbot.markers import ClaimSentence, attach, join_sentences, parse_answer, strip_markers
from chatbot.names import QUOTED_TERM, name_runs, names_in, person_like, quoted_terms
from chatbot.numbers import MONTH, Quantity, chinese_number, extract_quantities, is_digits, is_numeric, same_value
from chatbot.query import Query
from chatbot.refusal_detection import is_refusal
from chatbot.text import CJK, CJK_RUN, is_cjk

NEGATION = re.compile(r"\b(not|rather than|instead of|no|never|but)\b|不是|而非|并非|而不是|并不|不|没有|并未", re.I)


@dataclass
class Passage:
    n: int
    doc_id: str
    start: int  # the cited span (a clause, or a whole sentence)
    end: int
    text: str  # the document's text from start to end
    score: float = 0.0
    context_start: int | None = None  # the enclosing sentence
    context_end: int | None = None
    context_text: str = ""  # the document's text from context_start to context_end
    prompt_text: str = ""  # what the model was shown (the clause with its sentence's subject); text if empty
    head_start: int | None = None  # the subject prefixed in prompt_text, if any
    head_end: int | None = None
    head_text: str = ""
    clauses: list[tuple[int, int]] = field(default_factory=list)  # the clauses start..end is made of

    @property
    def shown(self) -> str:
        return self.prompt_text or self.text


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
    passages: list[Passage]  # the cited spans, renumbered 1..m in order of first citation
    sentences: list[VerifiedSentence] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    refused: bool = False


class Similarity(Protocol):
    def __call__(self, claims: list[str], passages: list[str]) -> np.ndarray: ...


def _latin(text: str) -> bool:
    return detect_language(text) == "en"


def words_around(text: str, q: Quantity, before: int, after: int) -> tuple[list[str], list[str]]:
    """Stemmed content words (no numbers) within `before` words before and `after` words after a number in text:
    what it counts, whose it is. The words before, then the words after, each in order."""
    left = [t for t in tokenize(text[: q.start]) if not is_numeric(t)][-before:] if before else []
    right = [t for t in tokenize(text[q.end :]) if not is_numeric(t)][:after] if after else []
    return left, right


def acronym_matches(word: str, text: str) -> bool:
    """'SOEs' for 'state-owned enterprises': an acronym's letters are the initials of consecutive words."""
    letters = word.rstrip("s") if word.isupper() or word[:-1].isupper() else ""
    if len(letters) < 2:
        return False
    initials = "".join(w[0] for w in re.findall(r"[A-Za-z]+", text)).upper()
    return letters.upper() in initials


def number_context_supported(claim: str, q: Quantity, passage: str) -> bool:
    """Does the number in the claim describe the same thing as that number in the passage? The words around
    the claim's number (what is counted, whose it is) must meet the words around it in the passage."""
    if not (_latin(claim) and _latin(passage)):
        return True  # across languages only the value is compared (the meaning check covers the rest)
    if re.fullmatch(r"(1[89]|20)\d\d", claim[q.start : q.end].strip()) or MONTH.search(
            claim[max(0, q.start - 12) : q.end + 12]):
        return True  # a year or a date says when, not what is counted
    left, right = words_around(claim, q, 4, 3)
    near = set(left) | set(right)
    if not near:
        return True  # a bare "49." or "more than 30%"
    for p in extract_quantities(passage):
        if not same_value(p.value, q.value):
            continue
        window = passage[max(0, p.start - 120) : p.end + 80]
        words = set(tokenize(window))
        if near & words:
            return True
        raw_after = re.findall(r"[A-Za-z]+", claim[q.end :])[:2]
        if any(acronym_matches(w, window) for w in raw_after):
            return True
    return False


def check_facts(claim: str, passages: list[str], query: Query) -> str:
    """'' when every number and name in the claim is in the passages, each number describing the same thing;
    otherwise what is wrong."""
    joined = " ".join(passages)
    negated = bool(NEGATION.search(claim))
    q_values = [q.value for q in query.quantities]
    p_values = [q.value for q in extract_quantities(joined)]
    for q in extract_quantities(claim):
        if any(same_value(q.value, v) for v in p_values):
            if not any(number_context_supported(claim, q, p) for p in passages):
                return f"number {claim[q.start:q.end]!r} describes something else in the cited passage"
            continue
        if negated and any(same_value(q.value, v) for v in q_values):
            continue
        if any(same_value(q.value, v) for v in q_values) and _comparison_holds(claim, q, passages):
            continue  # "Yes, it is longer than 600 metres" where the passage says 640 metres
        return f"number {claim[q.start:q.end]!r} is not in the cited passage"
    if not _order_holds(claim):
        return "its before/after contradicts the years it states"
    low = joined.lower()
    asked = query.text.lower()
    for term in quoted_terms(claim, QUOTED_TERM):  # a quoted name ("All in AI") is a fact like a number
        if term.lower() not in low and term.lower() not in asked:
            return f"quoted {term!r} is not in the cited passage"
    for name in names_in(claim):
        # A name the question itself uses is the user's wording, not a new claim.
        word = re.compile(r"(?<![a-z0-9])" + re.escape(name.lower()) + r"(?![a-z0-9])")
        if word.search(low) or word.search(asked) or acronym_matches(name, joined):
            continue
        return f"name {name!r} is not in the cited passage"
    return ""


_MORE = re.compile(r"\b(more|longer|larger|greater|higher|bigger|older|over|above|exceed\w*|after|later)\b"
                   r"(\s+than)?\s*$|超过\s*$|多于\s*$|高于\s*$|大于\s*$|晚于\s*$", re.I)
_LESS = re.compile(r"\b(less|fewer|shorter|smaller|lower|younger|under|below|before|earlier)\b(\s+than)?\s*$|"
                   r"不到\s*$|少于\s*$|低于\s*$|小于\s*$|早于\s*$", re.I)
_AFTER_MORE = re.compile(r"^\s*(以上|多)")
_AFTER_LESS = re.compile(r"^\s*(以下|以内)")


_EARLIER = re.compile(r"\b(before|earlier|older|prior to|preceded)\b|早于|之前|更早", re.I)
_LATER = re.compile(r"\b(after|later|younger|newer|followed)\b|晚于|之后|更晚", re.I)


def _order_holds(claim: str) -> bool:
    """"Opened in 1932, before the club was founded in 1902" contradicts itself: between two years, "before",
    "earlier" or "older" needs the first to be the smaller, "after", "later" or "younger" the larger."""
    years = [q for q in extract_quantities(claim) if re.fullmatch(r"(1[5-9]|20)\d\d年?", claim[q.start : q.end].strip())]
    if len(years) != 2:
        return True
    a, b = years
    between = claim[a.end : b.start]
    earlier, later = bool(_EARLIER.search(between)), bool(_LATER.search(between))
    if earlier == later or a.value == b.value or NEGATION.search(between):
        return True
    return (a.value < b.value) == earlier


def _comparison_holds(claim: str, q: Quantity, passages: list[str]) -> bool:
    """A number the question gave, used in a comparison ("longer than 600 metres", "before 1980", "超过一半"),
    holds when a passage states a number of the same thing on the right side of it (640 metres, 1976). A claim
    that denies the comparison ("not longer than 600") holds when the passage's number is on the other side."""
    before = claim[max(0, q.start - 30) : q.start]
    after = claim[q.end : q.end + 4]
    more = bool(_MORE.search(before) or _AFTER_MORE.search(after))
    less = bool(_LESS.search(before) or _AFTER_LESS.search(after))
    if more == less:
        return False
    negated = bool(NEGATION.search(claim[: q.start]))
    unit = words_around(claim, q, 0, 1)[1]
    for text in passages:
        for p in extract_quantities(text):
            if p.percent != q.percent or same_value(p.value, q.value):
                continue
            if unit and unit != words_around(text, p, 0, 1)[1]:
                continue  # "600 metres" compares with "640 metres", not with "two traffic lanes"
            if not number_context_supported(claim, q, text[: p.start] + claim[q.start : q.end] + text[p.end :]):
                continue
            bigger = p.value > q.value
            if (bigger if more else not bigger) != negated:
                return True
    return False


def content_words(text: str) -> set[str]:
    """Latin content words of a sentence (stemmed), without numbers and Chinese."""
    words = {t for t in tokenize(text) if not is_digits(t)}
    return {w for w in words if not is_cjk(w[0])}


def lexical_coverage(claim: str, passage: str) -> float:
    """Share of the claim's content words found in the passage."""
    return word_coverage(content_words(claim), passage)


PREFIX = 5  # words sharing their first five letters are forms of one word ("monitor", "monitoring")


def word_coverage(words: set[str], passage: str) -> float:
    """Share of the words found in the passage, a word matching any form with the same first letters."""
    if not words:
        return 0.0
    found = set(tokenize(passage))
    prefixes = {w[:PREFIX] for w in found if len(w) >= PREFIX}

    def matches(w: str) -> bool:
        if w in found or (len(w) >= PREFIX and w[:PREFIX] in prefixes):
            return True
        if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "aeioulsz" and w[:-1] in found:
            return True  # the stemmer leaves a doubled consonant: "running" -> "runn" is "run"
        # An over-stemmed word ("bre" from "breed") matches the forms it begins.
        return 3 <= len(w) < PREFIX and any(t.startswith(w) for t in found)

    return sum(1 for w in words if matches(w)) / len(words)


def _adds_little(claim: str, query: Query) -> bool:
    """A Chinese claim whose Chinese words are (almost) all the question's: "上海电气聚焦的是“AI for engineering”方向"."""
    cjk = {t for t in tokenize(claim) if is_cjk(t[0])}
    return len(cjk - set(query.tokens)) <= 3


def restates(claim: str, query: Query) -> bool:
    """Every content word, number and name of the claim is already in the question: nothing was answered.
    A yes/no or either-or question is answered by words it already contains."""
    if query.expects in ("yesno", "choice"):
        return False
    if detect_language(claim) != "en" or query.language != "en":
        return False
    q_values = [q.value for q in query.quantities]
    new_words = content_words(claim) - set(query.tokens)
    new_values = [q for q in extract_quantities(claim) if not any(same_value(q.value, v) for v in q_values)]
    quoted = [t for t in QUOTED_TERM.findall(claim) if t.strip().lower() not in query.text.lower()]
    return not new_words and not new_values and not quoted


def repair_chinese_numbers(claim: str, passages: list[str]) -> str:
    """A Chinese sentence written from English sources often mis-scales a number ("100 billion" as 100亿) or
    drops its "more than". Where the passages hold exactly one number with the same digits at another scale,
    or the same number with "more than"/"less than", write it the way a Chinese text writes that number."""
    if detect_language(claim) != "zh":
        return claim
    found = [q for t in passages for q in extract_quantities(t)]
    out, last = [], 0
    for q in extract_quantities(claim):
        fix = None
        same = [p for p in found if same_value(p.value, q.value)]
        if same:
            number = claim[q.start : q.end]
            if re.search(r"[A-Za-z]", number):  # "1.05 million" left in English: 105万
                number = chinese_number(q)
                fix = number
            qualified = {p.qualifier for p in same if p.qualifier in ("gt", "lt")}
            if q.qualifier is None and len(qualified) == 1 and len({p.qualifier for p in same}) == 1:
                fix = f"{number}以上" if qualified == {"gt"} else f"不到{number}"
        else:
            digits = re.sub(r"[^\d.]", "", claim[q.start : q.end])
            rescaled = [p for p in found if digits and _digits_of(p) == digits and not same_value(p.value, q.value)]
            if len({p.value for p in rescaled}) == 1:
                p = rescaled[0]
                number = chinese_number(p)
                fix = f"{number}以上" if p.qualifier == "gt" else f"不到{number}" if p.qualifier == "lt" else number
        if fix is not None:
            out.extend([claim[last : q.start], fix])
            last = q.end
    out.append(claim[last:])
    return "".join(out)


def _digits_of(q: Quantity) -> str:
    """The digits a number is written with before its scale word: 100 for "100 billion", 1.05 for "1.05 million"."""
    for scale in (1e12, 1e9, 1e6, 1e3, 1.0):
        if abs(q.value) >= scale and scale > 1 and (q.value / scale) == round(q.value / scale, 3):
            return f"{q.value / scale:g}"
    return f"{q.value:g}"


def has_checkable_fact(claim: str) -> bool:
    return bool(extract_quantities(claim) or names_in(claim))


def verify_citations(
    answer: str,
    passages: list[Passage],
    query: Query,
    similarity: Similarity,
    *,
    min_lexical: float = DEFAULTS.min_lexical_support,
    min_similarity: float = DEFAULTS.min_semantic_support,
    min_similarity_cross: float = DEFAULTS.min_semantic_support_cross,
    max_contiguous_citation: int = DEFAULTS.max_contiguous_citation,
) -> Verification:
    """The answer's sentences checked against the passages they cite (see the module docstring); the thresholds
    are settings (min_lexical_support, min_semantic_support, min_semantic_support_cross, max_contiguous_citation)."""
    if is_refusal(answer):
        return Verification(answer="", passages=[], refused=True)
    claims = parse_answer(answer)
    by_n = {p.n: p for p in passages}
    shown = [p.shown for p in passages]
    claims = [ClaimSentence(repair_chinese_numbers(c.text, shown), c.markers) for c in claims]
    if not claims or not passages:
        return Verification(answer="", passages=[], unsupported=[c.text for c in claims], refused=True)
    sims = similarity([c.text for c in claims], [p.shown for p in passages])
    col = {p.n: j for j, p in enumerate(passages)}
    clause_sims: list[dict[int, float]] = []

    def clause_similarity(i: int, ns: list[int]) -> float:
        """The claim's best cosine with one clause of the cited passages. Across languages a long sentence's
        other clauses dilute the cosine with the whole (程鹏是经济和信息化工作党委书记 and the 490-character
        sentence naming him: 0.20; with its clause "Secretary of the Party Committee for Economic and
        Information Technology Work": 0.59), so a clause that alone reaches the same-language floor supports
        the claim too."""
        if not clause_sims:
            texts, owners = [], []
            for p in passages:
                for c in split_clauses(p.shown):
                    texts.append(p.shown[c.start : c.end])
                    owners.append(p.n)
            matrix = similarity([c.text for c in claims], texts) if texts else np.zeros((len(claims), 0))
            for row in matrix:
                best: dict[int, float] = {}
                for n, value in zip(owners, row):
                    best[n] = max(best.get(n, -1.0), float(value))
                clause_sims.append(best)
        return max(clause_sims[i].get(n, -1.0) for n in ns)

    def supports(i: int, claim: ClaimSentence, ns: list[int]) -> tuple[bool, str, float]:
        texts = [by_n[n].shown for n in ns]
        reason = check_facts(claim.text, texts, query)
        if reason:
            return False, reason, 0.0
        if not content_words(claim.text) and has_checkable_fact(claim.text):
            return True, "", 1.0  # a bare "49." or "Lin Mei.": its facts were found in the passage
        if restates(claim.text, query):
            return False, "restates the question without answering it", 0.0
        # The question's own words, repeated, need no support: what the claim adds does.
        new = content_words(claim.text) - set(query.tokens)
        if not new and has_checkable_fact(claim.text):
            return True, "", 1.0
        lex = word_coverage(new, " ".join(texts)) if new else 0.0  # what the cited passages say together
        sim = max(float(sims[i, col[n]]) for n in ns)
        english = detect_language(claim.text) == "en"
        # Cross-language pairs (a Chinese sentence, an English passage) score lower in the shared space.
        same_language = all(detect_language(t) == detect_language(claim.text) for t in texts)
        floor = min_similarity if same_language else min_similarity_cross
        # English words left in a Chinese sentence can be checked word by word too; a Chinese sentence that adds
        # nothing to the question's words but an English term, name or number is checked by those.
        lexical = english or len(new) >= 3 or (bool(new) and _adds_little(claim.text, query))
        if (lexical and lex >= min_lexical) or sim >= floor:
            return True, "", sim + (lex if lexical else 0.0)
        if not same_language and clause_similarity(i, ns) >= min_similarity:
            return True, "", sim
        return False, f"meaning not supported (word coverage {lex:.2f}, similarity {sim:.2f})", 0.0

    verified: list[VerifiedSentence] = []
    for i, claim in enumerate(claims):
        if is_refusal(claim.text):
            continue
        cited = [n for n in claim.markers if n in by_n]
        ok, reason, _ = supports(i, claim, cited) if cited else (False, "no citation", 0.0)
        if ok:
            verified.append(VerifiedSentence(claim.text, _cite_options(claim.text, cited, passages, query),
                                             claim.markers, True))
            continue
        best: tuple[float, list[int]] | None = None
        for p in passages:
            good, _, strength = supports(i, claim, [p.n])
            if good and (best is None or strength > best[0]):
                best = (strength, [p.n])
        if best is None and _latin(claim.text) and len(extract_quantities(claim.text)) + len(names_in(claim.text)) >= 2:
            # A sentence joining two passages' facts ("opened in 1932, after the club was founded in 1902") is
            # cited to both. English only: there what each number counts and each name are checked, while a
            # Chinese sentence's names are not, so two passages could lend it facts about different things.
            for a, b in combinations(passages, 2):
                good, _, strength = supports(i, claim, [a.n, b.n])
                if good and (best is None or strength > best[0]):
                    best = (strength, [a.n, b.n])
        if best is not None:
            verified.append(VerifiedSentence(claim.text, _cite_options(claim.text, best[1], passages, query),
                                             claim.markers, True, reattributed=True,
                                             reason=f"re-attributed: {reason}"))
        else:
            verified.append(VerifiedSentence(claim.text, [], claim.markers, False, reason=reason))
    return _renumber(verified, by_n, query, similarity, max_contiguous_citation)


def _cite_options(claim: str, cited: list[int], passages: list[Passage], query: Query) -> list[int]:
    """A sentence answering a choice or yes/no question about named things ("Which is older, X or Y?", "Are X and
    Y run by the same company?") speaks of each of them: one it names that its cited passages never mention is
    cited to the shown passage that does (one stating a figure first, since figures decide a comparison)."""
    if query.expects not in ("choice", "yesno"):
        return cited
    by_n = {p.n: p for p in passages}
    out = list(cited)
    for run in name_runs(query.text):
        if run.replace("+", "").isupper() or not has_word(claim, run):
            continue
        if any(has_word(by_n[n].context_text or by_n[n].shown, run) for n in out if n in by_n):
            continue
        mentioning = [p for p in passages if has_word(p.context_text or p.shown, run)]
        if mentioning:
            best = max(mentioning, key=lambda p: (bool(extract_quantities(p.shown)), p.score))
            out.append(best.n)
    return out


def _renumber(verified: list[VerifiedSentence], by_n: dict[int, Passage], query: Query,
              similarity: Similarity | None = None,
              max_contiguous: int = DEFAULTS.max_contiguous_citation) -> Verification:
    """Number the cited spans 1..m in order of first citation and put the markers into the sentences."""
    order: dict[tuple[int, int, int], int] = {}
    spans: dict[tuple[int, int, int], Passage] = {}
    parts = []
    for v in verified:
        if not v.supported:
            continue
        keys = []
        for n in v.cited:
            for span in cited_spans(v.text, by_n[n], query, similarity, max_contiguous):
                key = (n, span.start, span.end)
                spans.setdefault(key, span)
                order.setdefault(key, len(order) + 1)
                keys.append(key)
        marks = "".join(f"[{order[k]}]" for k in dict.fromkeys(keys))
        chinese = True if query.language == "zh" and CJK.search(v.text) else None
        parts.append(attach(v.text, marks, chinese))
    used = [replace(spans[k], n=order[k]) for k in sorted(order, key=order.__getitem__)]
    return Verification(
        answer=join_sentences(parts), passages=used, sentences=verified,
        unsupported=[v.text for v in verified if not v.supported], refused=not parts,
    )


def cited_spans(claim: str, p: Passage, query: Query, similarity: Similarity | None = None,
                max_contiguous: int = DEFAULTS.max_contiguous_citation) -> list[Passage]:
    """The span(s) to cite for a claim supported by passage p: the fewest consecutive clauses of p that hold the
    claim's new names and its numbers and the clause that says the rest in other words; clauses further apart
    than `max_contiguous` characters are cited separately. A claim that needs the sentence's subject (shown
    before a clause) cites it too."""
    spans = _narrow(claim, p, query, similarity, max_contiguous)
    if len(spans) > 1:
        return [_plain(x) for x in spans]
    p = spans[0]
    if p.head_start is None or p.head_end is None or not p.head_text:
        return [_plain(p)]
    head_facts = [n for n in names_in(claim) if has_word(p.head_text, n) and not has_word(p.text, n)]
    head_values = [q.value for q in extract_quantities(p.head_text)]
    clause_values = [q.value for q in extract_quantities(p.text)]
    head_facts += [str(q.value) for q in extract_quantities(claim)
                   if any(same_value(q.value, v) for v in head_values)
                   and not any(same_value(q.value, v) for v in clause_values)]
    if not head_facts:
        return [_plain(p)]
    head = replace(_plain(p), start=p.head_start, end=p.head_end, text=p.head_text)
    if p.end - p.head_start <= max_contiguous and p.context_start is not None and p.context_text:
        wide = p.context_text[p.head_start - p.context_start : p.end - p.context_start]
        return [replace(_plain(p), start=p.head_start, text=wide)]
    return [head, _plain(p)]


def _plain(p: Passage) -> Passage:
    return replace(p, prompt_text="", head_start=None, head_end=None, head_text="", clauses=[])


def _narrow(claim: str, p: Passage, query: Query, similarity: Similarity | None,
            max_contiguous: int) -> list[Passage]:
    """p cut down to the clauses that hold the claim's facts (one span, or one per clause when far apart)."""
    if len(p.clauses) < 2:
        return [p]
    texts = [p.text[s - p.start : e - p.start] for s, e in p.clauses]
    asked = query.text
    # The question's own names are the user's words (measured on dev: citing their clause too costs precision and
    # recall); the claim's new names and its numbers are what it cites.
    names = [n for n in names_in(claim) if not has_word(asked, n)]
    values = [q.value for q in extract_quantities(claim)]

    quoted = [t.strip() for t in QUOTED_TERM.findall(claim)]

    def facts(text: str) -> set[str]:
        found = {n for n in names if has_word(text, n)} | {f"“{t}" for t in quoted if t.lower() in text.lower()}
        found |= {f"#{v}" for v in values if any(same_value(v, q.value) for q in extract_quantities(text))}
        return found

    per_clause = [facts(t) for t in texts]
    # The clause that says what the claim says in other words ("creating an independent … ecosystem").
    words = content_words(claim)
    if words and _latin(claim):
        overlap = [word_coverage(words, t) for t in texts]
        best = max(range(len(texts)), key=lambda i: (overlap[i], -i))
        if overlap[best] >= 0.4:
            per_clause[best] = per_clause[best] | {"~words"}
    elif not _latin(claim) and similarity is not None:  # a Chinese claim: the clause closest in meaning
        sims = similarity([claim], texts)[0]
        per_clause[int(np.argmax(sims))] |= {"~meaning"}
    wanted = set().union(*per_clause)
    if wanted:
        runs = [(p.clauses[j][1] - p.clauses[i][0], i, j) for i in range(len(texts)) for j in range(i, len(texts))
                if set().union(*per_clause[i : j + 1]) >= wanted]
        length, lo, hi = min(runs)
        if length > max_contiguous and hi > lo:
            picked: list[int] = []
            left = set(wanted)
            while left:  # the fewest clauses that hold every fact, each cited on its own
                i = max(range(lo, hi + 1), key=lambda k: (len(per_clause[k] & left), -k))
                picked.append(i)
                left -= per_clause[i]
            return [_clause_span(p, i, i) for i in sorted(picked)]
    else:
        words = content_words(claim)
        shared = [len(words & set(tokenize(t))) for t in texts]
        lo = hi = max(range(len(texts)), key=lambda i: (shared[i], -i))
    return [_clause_span(p, lo, hi)]


def _clause_span(p: Passage, lo: int, hi: int) -> Passage:
    start, end = p.clauses[lo][0], p.clauses[hi][1]
    if (start, end) == (p.start, p.end):
        return p
    head = p.head_start is not None and p.head_end is not None and start >= p.head_end
    return replace(p, start=start, end=end, text=p.text[start - p.start : end - p.start],
                   clauses=p.clauses[lo : hi + 1], head_start=p.head_start if head else None,
                   head_end=p.head_end if head else None, head_text=p.head_text if head else "")


def question_names_in_cited_documents(query: Query, answer: str, cited: list[Passage],
                                      document_text: Callable[[str], str | None]) -> bool:
    """A name the question asks about and the answer repeats must be in the documents the answer cites: "The
    Harlow Bridge's renovation cost 14 million dollars" citing the library's article, which never mentions the
    bridge, answers with another document's fact. Documents are read only when the answer repeats such a name."""
    text = strip_markers(answer)
    runs = [run for run in name_runs(query.text) if not run.replace("+", "").isupper() and has_word(text, run)]
    if not runs or NEGATION.search(text):
        return True
    documents: dict[str, str] = {}
    for p in cited:
        if p.doc_id not in documents:
            documents[p.doc_id] = document_text(p.doc_id) or p.context_text or p.text
    cited_text = " ".join(documents.values())
    for run in runs:
        if has_word(cited_text, run):
            continue
        # The user's words may abbreviate what the document spells out ("Shanghai SOEs", "Municipal SASAC"):
        # acronyms are left out, and the run's other words may each appear on their own.
        words = {w for word in run.split() if not _ACRONYM.fullmatch(word) for w in tokenize(word)}
        if not words or word_coverage(words, cited_text) == 1.0:
            continue
        if _romanised_in(run, cited_text):
            continue
        return False
    return True


def _romanised_in(run: str, text: str) -> bool:
    """An English question's name written in pinyin ("Qingchuan", "Wang Liping") for a name a Chinese text writes
    in characters (青川, 王立平): the joined run, or one of its longer words, is the pinyin of a run of characters."""
    if not CJK.search(text):
        return False
    pinyin = {t for t in bridge_tokens(text) if not t.startswith("#")}
    words = [w.lower() for w in run.split()]
    return "".join(words) in pinyin or any(len(w) >= 5 and w in pinyin for w in words)


_ACRONYM = re.compile(r"[A-Z0-9+&-]*[A-Z][A-Z0-9+&-]*[A-Z][A-Za-z0-9+&-]*")  # two capitals or more: SOEs, SASAC, AI+


def question_names_grounded(query: Query, answer: str, cited: list[Passage], known: str,
                            document_text: Callable[[str], str | None] | None = None, *,
                            referent_sentences: int = DEFAULTS.referent_sentences) -> bool:
    """A person the question asks about, when the answer speaks of them or puts another person in their place,
    must be in the sentences the answer cites: "Cheng Peng said …" citing a sentence about someone else, or "He
    Qing said …" to "What did Cheng Peng say?", does not answer the question. A name the answer explicitly denies
    ("He Qing, not Cheng Peng, …") is a correction, not a claim. A cited sentence that names nobody ("It has 44
    turbines", "The railway is run by 260 volunteers") speaks of what the sentence before it in its document
    names (read through `document_text`), so the name may be there; a sentence naming someone else is about them."""
    contexts = " ".join(p.context_text or p.text for p in cited) + " " + " ".join(p.head_text for p in cited)
    text = strip_markers(answer)
    others = [run for run in name_runs(text) if person_like(run) and not has_word(query.text, run)]
    anonymous = document_text is not None and not others and not any(
        person_like(run) for run in name_runs(contexts))
    for run in name_runs(query.text):
        if not person_like(run) or not has_word(known, run) or has_word(contexts, run):
            continue
        if not (others or has_word(text, run)):
            continue  # the answer speaks of something else the question asked (a period, a place)
        if NEGATION.search(text) and has_word(text, run):
            continue
        if anonymous and document_text is not None and _speaks_of_asked(query, run, contexts) and any(
                named_before(p, run, document_text, referent_sentences) for p in cited):
            continue
        return False
    return True


def chinese_question_names_grounded(query: Query, cited: list[Passage], known: str,
                                    document_text: Callable[[str], str | None] | None = None,
                                    distinctive: Callable[[str], bool] | None = None, *,
                                    referent_sentences: int = DEFAULTS.referent_sentences) -> bool:
    """The Chinese question's counterpart of question_names_grounded: a name it writes in characters whose pinyin
    is a two-word name of the retrieved English text (国泰君安 -> Guotai Junan, 贺青 -> He Qing) is what the
    question asks about, so the cited sentences must name it too, or begin with a pronoun after a sentence that
    does (read through `document_text`). "国泰君安在人工智能方面投入了1000亿元" citing the sentence about the
    Municipal SASAC's funds answers with another subject's fact. A one-word name (中国太平 -> "China Taiping")
    counts when `distinctive` says few of the indexed chunks use it (not a city every passage names)."""
    if query.language != "zh":
        return True
    pinyin = {t for t in bridge_tokens(query.text) if not t.startswith("#")}
    # Each group is satisfied by any one of its names: one-word names whose syllables overlap in the question
    # are alternative readings of the same characters (中国太平 reads as "Guotai" and as "Taiping").
    groups = [[f"{a} {b}"] for a, b in dict.fromkeys(name_pairs(known)) if (a + b).lower() in pinyin]
    if distinctive is not None:
        words = [w for w in dict.fromkeys(_PINYIN_WORD.findall(known)) if w.lower() in pinyin and distinctive(w)]
        groups += _overlapping(words, query.text)
    if not groups:
        return True
    contexts = " ".join(p.context_text or p.text for p in cited) + " " + " ".join(p.head_text for p in cited)

    def named(name: str) -> bool:
        """In a cited sentence, or before one that begins with a pronoun ("It launched …")."""
        if has_word(contexts, name):
            return True
        return document_text is not None and any(PRONOUN_START.match(p.context_text or p.text)
                                                 and named_before(p, name, document_text, referent_sentences)
                                                 for p in cited)

    return all(any(named(name) for name in group) for group in groups)


def _overlapping(words: list[str], question: str) -> list[list[str]]:
    """Pinyin words grouped by where they read the question's characters: words whose syllables overlap are
    one group."""
    from pypinyin import lazy_pinyin

    spans: list[tuple[int, int, str]] = []
    offset = 0
    for run in CJK_RUN.findall(question):
        syl = [x.lower() for x in lazy_pinyin(run)]
        for w in words:
            for i in range(len(syl)):
                for n in (2, 3, 4):
                    if "".join(syl[i : i + n]) == w.lower():
                        spans.append((offset + i, offset + i + n, w))
        offset += len(syl) + 1
    groups: list[tuple[int, int, list[str]]] = []
    for start, end, w in sorted(spans):
        if groups and start < groups[-1][1]:
            last = groups[-1]
            groups[-1] = (last[0], max(last[1], end), [*last[2], w] if w not in last[2] else last[2])
        else:
            groups.append((start, end, [w]))
    return [g[2] for g in groups]


PRONOUN_START = re.compile(r"\s*(It|Its|They|Their|This|These|He|She|His|Her)\b")
_PINYIN_WORD = re.compile(r"(?<![A-Za-z])[A-Z][a-z]{4,}(?![A-Za-z])")  # a capitalised word of two syllables or more


def _speaks_of_asked(query: Query, run: str, contexts: str) -> bool:
    """Does the cited sentence say something about what the question asks of `run` (one of the question's other
    words)? "About 38,000 vehicles cross the bridge" says nothing of "the renovation of the bridge cost"."""
    asked = {w for w in query.latin_words if w not in set(tokenize(run))}
    return not asked or word_coverage(asked, contexts) > 0


def named_before(p: Passage, run: str, document_text: Callable[[str], str | None],
                 referent_sentences: int = DEFAULTS.referent_sentences) -> bool:
    """Is `run` what p's sentence refers back to: named in one of the `referent_sentences` sentences before it in
    its document, with no other person named in between?"""
    at = p.context_start if p.context_start is not None else p.start
    text = document_text(p.doc_id) or ""
    window = text[max(0, at - 1500) : at]
    for span in reversed(split_sentences(window)[-referent_sentences:]):
        sentence = window[span.start : span.end]
        if has_word(sentence, run):
            return True
        if any(person_like(other) for other in name_runs(sentence)):
            return False
    return False


def has_word(text: str, word: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(word) + r"(?![A-Za-z0-9])", text) is not None
