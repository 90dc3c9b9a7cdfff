"""Capitalised names in English text ("Guotai Junan Securities", "Lin Mei"), without the capitalised function
words that start sentences. General English only."""

from __future__ import annotations

import re

COMMON_CAPS = frozenset(
    "The A An It Its This That These Those In On At By For From To With As He She They Their There Yes No "
    "According Both Each All And But Or So Also However Not Only One Two Three Four Five Some Many Most Our "
    "We Our I You Your His Her If When While Since After Before During Under Over Of Into Then Than What "
    "Which Who Whom Whose Where Why How Is Are Was Were Do Does Did Has Have Had Can Could Will Would".split()
)
# A pronoun directly followed by another capitalised word cannot be a pronoun (a verb would follow it), so
# "He Qing" or "It Works Ltd" keep their first word; "The Airport Group" drops its article.
_PRONOUNS = frozenset("He She It We I You They".split())
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9+\-]*(?:['’]s)?")
NAME_RUN = re.compile(r"\b[A-Z][A-Za-z0-9+\-]*(?:\s+[A-Z][A-Za-z0-9+\-]*)*")


def names_in(sentence: str) -> list[str]:
    """Capitalised words that are names rather than sentence-initial function words or numbers ("Eleven")."""
    from chatbot.numbers import EN_WORDS

    out = []
    for run in name_runs(sentence):
        for word in run.split():
            word = re.sub(r"['’]s$", "", word)
            if word.lower() in EN_WORDS:
                continue
            if len(word) >= 2 and (word not in COMMON_CAPS or word in _PRONOUNS):
                out.append(word)
    return out


def name_runs(text: str) -> list[str]:
    """Runs of capitalised words with leading function words removed: "The Airport Group" -> "Airport Group"."""
    runs = []
    for m in NAME_RUN.finditer(text):
        parts = m.group(0).split()
        while parts and parts[0] in COMMON_CAPS and not (parts[0] in _PRONOUNS and len(parts) > 1):
            parts = parts[1:]
        if len(parts) == 1 and parts[0] in COMMON_CAPS:
            continue
        if parts:
            runs.append(" ".join(parts))
    return runs


def name_run_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of name_runs() in text."""
    spans = []
    for m in NAME_RUN.finditer(text):
        parts = m.group(0).split()
        start = m.start()
        while parts and parts[0] in COMMON_CAPS and not (parts[0] in _PRONOUNS and len(parts) > 1):
            start = text.index(parts[1], start + len(parts[0])) if len(parts) > 1 else m.end()
            parts = parts[1:]
        if parts and not (len(parts) == 1 and parts[0] in COMMON_CAPS):
            spans.append((start, m.end()))
    return spans


_QUOTED = re.compile(r"“([^”]{1,60})”|\"([^\"]{1,60})\"|「([^」]{1,60})」|『([^』]{1,60})』")


def english_quotes(longest: int) -> re.Pattern[str]:
    """Terms of 1 to `longest` characters in English quotation marks (“…” or "…"), the term as group 1."""
    return re.compile(rf"[“\"]([^”\"]{{1,{longest}}})[”\"]")


QUOTED_TERM = english_quotes(60)  # English quotation marks only: what an answer quotes


def quoted_terms(text: str, pattern: re.Pattern[str] = _QUOTED) -> tuple[str, ...]:
    """Terms written in quotation marks ("the “All in AI” strategy"), without a full stop or comma written
    inside the closing quote (“multiplier effect.”, the American habit)."""
    out = []
    for m in pattern.finditer(text):
        term = next(g for g in m.groups() if g is not None).strip().rstrip(".,;:!?。，；：！？").strip()
        if term:
            out.append(term)
    return tuple(dict.fromkeys(out))


def person_like(run: str, *, longest: int = 6, cased: bool = True) -> bool:
    """Two or three short capitalised words: a person's name in pinyin ("Lin Mei", "Cheng Peng"), each word at most
    `longest` letters. `cased=False` leaves out the capitalisation test (for a run already read as a name)."""
    words = run.split()
    return 2 <= len(words) <= 3 and all(
        (not cased or (w[:1].isupper() and w[1:].islower())) and len(w) <= longest for w in words)


def quote_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _QUOTED.finditer(text)]
