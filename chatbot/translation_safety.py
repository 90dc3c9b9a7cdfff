"""Translation safety: protect names and numbers of a verified English answer with placeholders before it is
translated into Chinese, restore them afterwards, and reject a translation that lost a marker, a number, a
"more than", or a name (a wrong transliteration is caught by comparing pinyin)."""

from __future__ import annotations

import re

from chatbot.markers import MARKER, strip_markers
from chatbot.names import COMMON_CAPS, QUOTED_TERM, english_quotes, name_run_spans, name_runs, person_like
from chatbot.numbers import chinese_number, extract_quantities, same_value


_QUOTED_NAME = english_quotes(40)  # a quoted name a translation must carry over (“All in AI”)


def protect_for_translation(english: str, common_words: frozenset[str]) -> tuple[str, dict[str, str]]:
    """Replace proper names and scaled numbers by placeholders (N1, N2 …) that a translation must carry over
    unchanged; restore_translation() puts back the names as written in the source and the numbers in
    Chinese notation (1.05 million -> 105万). Ordinary capitalised words (Secretary, Group) are translated."""
    spans: list[tuple[int, int, str]] = []
    for q in extract_quantities(english):
        phrase = english[q.start : q.end]
        inside_marker = any(m.start() <= q.start < m.end() for m in MARKER.finditer(english))
        if not inside_marker and re.search(r"[a-z]", phrase, re.I):  # "1.05 million", "eleven"
            spans.append((q.start, q.end, chinese_number(q)))
    for m in _QUOTED_NAME.finditer(english):  # quoted names: “All in AI”, “1125”
        if not any(s < m.end(1) and m.start(1) < e for s, e, _ in spans):
            spans.append((m.start(1), m.end(1), m.group(1)))
    for start, end in name_run_spans(english):
        words = [w.lower() for w in english[start:end].split()]
        person = person_like(english[start:end], longest=5, cased=False)
        if not (person or any(w not in common_words for w in words)):
            continue
        if not any(s < end and start < e for s, e, _ in spans):
            spans.append((start, end, english[start:end]))
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
    in Chinese characters whose pinyin spells it (Lin Mei = 林梅); a wrong transliteration fails.
    Ordinary English words (in common_words) may be translated."""
    from pypinyin import lazy_pinyin

    low = chinese.lower()
    spelled = "".join(lazy_pinyin(chinese)).lower()

    def kept(word: str) -> bool:
        return word in low or word in spelled

    for run in name_runs(strip_markers(english)):
        words = [w.lower() for w in run.split()]
        if len(words) == 1 and run in COMMON_CAPS:
            continue
        rare = [w for w in words if w not in common_words]
        if rare:
            if not all(kept(w) for w in rare):
                return False
        elif person_like(run, longest=5, cased=False):
            if not (run.lower() in low or "".join(words) in spelled):
                return False
    return True


def translation_keeps_facts(answer: str, translated: str, common_words: frozenset[str]) -> bool:
    """The translation has the same markers, every number with its "more than"/"less than", and the names."""
    if sorted(MARKER.findall(translated)) != sorted(MARKER.findall(answer)):
        return False
    ours = extract_quantities(strip_markers(answer))
    theirs = extract_quantities(strip_markers(translated))
    for q in ours:
        if not any(same_value(q.value, t.value) and (q.qualifier not in ("gt", "lt") or t.qualifier == q.qualifier)
                   for t in theirs):
            return False
    return names_preserved(answer, translated, common_words)


_LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z0-9+&'’\-]*(?:\s+[A-Za-z][A-Za-z0-9+&'’\-]*)*")


def untranslated_words(chinese: str, sources: list[str]) -> list[str]:
    """English left in a Chinese answer that is not a name or quoted term of the sources ("上海 Electric",
    "智能 cockpit"): the model translated only part of the sentence."""
    allowed: set[str] = set()
    for text in sources:
        allowed |= {run.lower() for run in name_runs(text)}
        allowed |= {m.group(1).strip().lower() for m in QUOTED_TERM.finditer(text)}
    bad = []
    for m in _LATIN_RUN.finditer(strip_markers(chinese)):
        run = m.group(0).strip()
        if run.isupper() or run.lower() in allowed:  # an acronym, a whole name, a quoted term
            continue
        bad.append(run)
    return bad
