"""Clauses of a sentence and a sentence's head (its subject), by punctuation and general English/Chinese grammar,
so evidence and citations can be a clause of a 700-character sentence rather than the whole sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.text import cjk_count

# Segment ends: a comma, semicolon or dash between words (English), or ，； (Chinese). The Chinese enumeration
# comma 、 separates list items, not clauses; what follows a colon (a list, a quotation) stays with it.
_BOUNDARY = re.compile(r"[,;](?=\s)|\s[–—]\s|[，；]")
_COLON = re.compile(r"[:：]")
_OPEN, _CLOSE = "“(（「『《[\"", "”)）」』》]\""
_CONJ = re.compile(r"^(and|or|but|as well as|along with|together with|以及|及|和|与|并|或)\b", re.I)
MIN_CLAUSE_CHARS = 25  # a shorter segment is a list item or a leading phrase: it joins a neighbour
MIN_CLAUSE_CJK = 10


@dataclass(frozen=True)
class Clause:
    start: int  # offsets into the text the sentence came from
    end: int


def _segments(text: str) -> list[tuple[int, int]]:
    """Split at clause punctuation outside quotes and brackets; spans without the punctuation and spaces."""
    cuts: list[int] = []
    depth = 0
    straight_open = False
    inside = []
    for ch in text:
        if ch == '"':
            straight_open = not straight_open
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        inside.append(depth > 0 or straight_open)
    colon = next((m.start() for m in _COLON.finditer(text) if not inside[m.start()]), len(text))
    for m in _BOUNDARY.finditer(text):
        if not inside[m.start()] and m.start() < colon:
            cuts.append(m.start())
    spans = []
    start = 0
    for cut in cuts:
        spans.append((start, cut))
        start = cut + 1
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        piece = text[s:e]
        lead = len(piece) - len(piece.lstrip(" \t–—"))
        trail = len(piece) - len(piece.rstrip(" \t–—"))
        if e - trail > s + lead:
            out.append((s + lead, e - trail))
    return out


def _weak(text: str) -> bool:
    cjk = cjk_count(text)
    if cjk > len(text) / 3:
        return cjk < MIN_CLAUSE_CJK
    return len(text) < MIN_CLAUSE_CHARS or len(text.split()) < 4


def _list_end(text: str) -> bool:
    """"and energy", "and financial test benchmarks": the last item of a list."""
    cjk = cjk_count(text)
    if cjk > len(text) / 3:
        return bool(_CONJ.match(text)) and cjk < MIN_CLAUSE_CJK
    return bool(_CONJ.match(text)) and len(text.split()) <= 5


def split_clauses(text: str, offset: int = 0) -> list[Clause]:
    """Clauses of one sentence, covering it in order; offsets are `offset` + positions in `text`. Short
    segments (list items, "On July 6th", a name before its title) are joined to a neighbour: one that starts
    with a conjunction ("and energy") ends a list and joins the clause before it, any other joins the next."""
    segs = _segments(text)
    if not segs:
        return []
    out: list[list[int]] = []
    pending: list[int] | None = None
    for s, e in segs:
        if pending and out and _list_end(text[s:e]):  # "…, shops, and schools": the list joins its clause
            out[-1][1] = e
            pending = None
            continue
        seg = [pending[0], e] if pending else [s, e]
        pending = None
        piece = text[seg[0] : seg[1]]
        if _weak(piece):
            if out and _CONJ.match(text[s:e]):
                out[-1][1] = e
            else:
                pending = seg
            continue
        out.append(seg)
    if pending:
        if out:
            out[-1][1] = pending[1]
        else:
            out.append(pending)
    return [Clause(offset + s, offset + e) for s, e in out]
