"""Sources that disagree: when the passage an answer cites and a passage of another document give different values
for the same thing (a number that counts the same noun, the date of the same event, the person in the same role),
the answer states both, each cited with its source's title and date, and says the sources disagree. Never
resolved silently: the answer contract lists them (`Answer.conflicts`) and the chat shows a notice."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from chatbot import prompts
from chatbot.config import DEFAULTS
from chatbot.corpus import detect_language
from chatbot.keyword import tokenize
from chatbot.markers import strip_markers
from chatbot.names import name_runs, person_like
from chatbot.numbers import MONTH, MONTHS, NUMBER_WORDS, Quantity, extract_quantities, same_value
from chatbot.query import Query
from chatbot.schemas import ConflictingValue, DocInfo
from chatbot.text import CJK_RUN
from chatbot.verification import Passage, Similarity, has_word, word_coverage, words_around

_DATE = re.compile(
    r"(?:(?P<y1>(?:19|20)\d\d)\s*年\s*)?(?P<m1>\d{1,2})\s*月\s*(?P<d1>\d{1,2})\s*[日号]"
    r"|(?P<mn>" + MONTH.pattern[3:-3] + r")\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y2>(?:19|20)\d\d))?"
    r"|\b(?P<d3>\d{1,2})(?:st|nd|rd|th)?\s+(?P<mn3>" + MONTH.pattern[3:-3] + r")(?:,?\s+(?P<y3>(?:19|20)\d\d))?"
    r"|\b(?P<y4>(?:19|20)\d\d)-(?P<m4>\d\d)-(?P<d4>\d\d)\b",
    re.I,
)
_ZH_MEASURE = re.compile(r"^[个家项条名位种类座只支批所台件场届期轮份张部组套款]")


@dataclass(frozen=True)
class Side:
    value: str  # as the passage writes it
    passage: Passage


@dataclass(frozen=True)
class Disagreement:
    about: str  # what the values are of ("enterprises", "date", a role)
    sides: tuple[Side, Side]  # the cited passage's value first


@dataclass(frozen=True)
class _Dated:
    start: int
    end: int
    key: tuple[int, int]  # (month, day)


def _dates(text: str) -> list[_Dated]:
    out = []
    for m in _DATE.finditer(text):
        g = m.groupdict()
        if g["m1"]:
            key = (int(g["m1"]), int(g["d1"]))
        elif g["mn"]:
            key = (MONTHS[g["mn"].lower()], int(g["d2"]))
        elif g["mn3"]:
            key = (MONTHS[g["mn3"].lower()], int(g["d3"]))
        else:
            key = (int(g["m4"]), int(g["d4"]))
        out.append(_Dated(m.start(), m.end(), key))
    return out


def _text(p: Passage) -> str:
    return p.context_text or p.text


def _kind(text: str, q: Quantity) -> str:
    if q.percent:
        return "percent"
    if re.fullmatch(r"(19|20)\d\d", text[q.start : q.end].strip()):
        return "year"
    return "amount"


def _counted(text: str, q: Quantity) -> str:
    """What a number counts: the English word after it (past "million" and the like), or the Chinese characters
    after it past a measure word ("11家市属国有企业" -> 市属)."""
    after = text[q.end : q.end + 40]
    run = CJK_RUN.match(_ZH_MEASURE.sub("", after.lstrip()))
    if run:
        return run.group(0)[:2]
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z-]*", after) if w.lower() not in NUMBER_WORDS]
    return words[0].lower() if words else ""


class ConflictFinder:
    """Finds where a cited passage and a passage of another document give different values for the same thing.
    Only values the answer states are compared: a disagreement about something else is not the user's question."""

    def __init__(self, similarity: Similarity | None = None, *,
                 min_overlap: float = DEFAULTS.conflict_min_overlap,
                 min_similarity_cross: float = DEFAULTS.conflict_min_similarity_cross,
                 same_noun_similarity: float = DEFAULTS.same_noun_similarity) -> None:
        self.similarity = similarity
        self.min_overlap = min_overlap
        self.min_similarity_cross = min_similarity_cross
        self.same_noun_similarity = same_noun_similarity

    def find(self, query: Query, answer: str, cited: Sequence[Passage],
             shown: Sequence[Passage]) -> list[Disagreement]:
        stated = strip_markers(answer)
        answer_values = [q.value for q in extract_quantities(stated)]
        answer_dates = {d.key for d in _dates(stated)}
        out: list[Disagreement] = []
        seen: set[tuple[str, str]] = set()
        for a in cited:
            for b in shown:
                if b.doc_id == a.doc_id or not about_question(query, _text(a), _text(b)):
                    continue
                for found in (self._numbers(a, b, answer_values), self._dates(a, b, answer_dates),
                              self._names(query, a, b, stated)):
                    for d in found:
                        key = (d.sides[0].value, d.sides[1].value)
                        if key not in seen:
                            seen.add(key)
                            out.append(d)
        return out

    def disagree(self, a: str, b: str, query: Query | None = None) -> bool:
        """Do two sentences (of different documents) give different values for the same thing: a count of the same
        noun or the date of the same event? Whatever an answer will state. With `query`, b must be about what the
        question names (see about_question)."""
        if query is not None and not about_question(query, a, b):
            return False
        pa, pb = Passage(1, "a", 0, len(a), a), Passage(2, "b", 0, len(b), b)
        return bool(self._numbers(pa, pb, None) or self._dates(pa, pb, None))

    def _same_context(self, ta: str, sa: int, ea: int, tb: str, sb: int, eb: int) -> bool:
        """Do the words around a value in one passage and around a value in the other say the same thing? Across
        languages, the multilingual cosine of the two windows."""
        if detect_language(ta) == detect_language(tb):
            left, right = words_around(ta, Quantity(0, False, None, sa, ea), 6, 4)
            near = set(left) | set(right)
            left_b, right_b = words_around(tb, Quantity(0, False, None, sb, eb), 6, 4)
            near_b = set(left_b) | set(right_b)
            small, other, other_text = (near, near_b, tb) if len(near) <= len(near_b) else (near_b, near, ta)
            return bool(small and other) and word_coverage(small, other_text) >= self.min_overlap
        if self.similarity is None:
            return False
        wa = ta[max(0, sa - 100) : ea + 60]
        wb = tb[max(0, sb - 40) : eb + 30]
        return float(self.similarity([wa], [wb])[0, 0]) >= self.min_similarity_cross

    def _same_noun(self, x: str, y: str) -> bool:
        if not x or not y:
            return not x and not y
        if tokenize(x) == tokenize(y) or x == y:
            return True
        return self.similarity is not None and float(self.similarity([x], [y])[0, 0]) >= self.same_noun_similarity

    def _numbers(self, a: Passage, b: Passage, answer_values: list[float] | None) -> list[Disagreement]:
        ta, tb = _text(a), _text(b)
        in_dates_a = [(d.start, d.end) for d in _dates(ta)]
        in_dates_b = [(d.start, d.end) for d in _dates(tb)]
        out = []
        for qa in extract_quantities(ta):
            if answer_values is not None and not any(same_value(qa.value, v) for v in answer_values):
                continue
            if _inside(qa, in_dates_a):
                continue
            kind = _kind(ta, qa)
            for qb in extract_quantities(tb):
                if _inside(qb, in_dates_b) or same_value(qa.value, qb.value) or _kind(tb, qb) != kind:
                    continue
                if kind == "year":
                    continue  # a year says when, not how many: dates are compared whole
                if any(same_value(qb.value, q.value) for q in extract_quantities(ta)):
                    continue  # the cited passage states that value too (about something else)
                cross = detect_language(ta) != detect_language(tb)
                if not cross and not self._same_noun(_counted(ta, qa), _counted(tb, qb)):
                    continue
                if cross and not _same_magnitude(qa.value, qb.value):
                    continue  # what a number counts is not compared across languages: its size at least is
                if not self._same_context(ta, qa.start, qa.end, tb, qb.start, qb.end):
                    continue
                about = _counted(ta, qa) or "value"
                out.append(Disagreement(about, (Side(ta[qa.start : qa.end].strip(), a),
                                                Side(tb[qb.start : qb.end].strip(), b))))
                break
        return out

    def _dates(self, a: Passage, b: Passage, answer_dates: set[tuple[int, int]] | None) -> list[Disagreement]:
        ta, tb = _text(a), _text(b)
        out = []
        for da in _dates(ta):
            if answer_dates is not None and da.key not in answer_dates:
                continue
            for db in _dates(tb):
                if db.key != da.key and self._same_context(ta, da.start, da.end, tb, db.start, db.end):
                    out.append(Disagreement("date", (Side(ta[da.start : da.end], a), Side(tb[db.start : db.end], b))))
                    break
        return out

    def _names(self, query: Query, a: Passage, b: Passage, answer: str) -> list[Disagreement]:
        """The person in the same role: the answer names a person of the cited passage, and the other passage
        gives its words about a person (less the names) to another person that the cited passage does not name."""
        if query.expects not in ("person", "name"):
            return []
        ta, tb = _text(a), _text(b)
        people_a = [n for n in name_runs(ta) if person_like(n) and has_word(answer, n)]
        people_b = [n for n in name_runs(tb) if person_like(n) and not has_word(ta, n)]
        if not people_a or not people_b:
            return []
        rest_b = tb
        for n in people_b:
            rest_b = rest_b.replace(n, " ")
        words_b = set(tokenize(rest_b))
        if not words_b or any(has_word(tb, n) for n in people_a):
            return []
        for name in people_a:
            if word_coverage(words_b, _about(ta, name)) >= self.min_overlap:
                return [Disagreement("person", (Side(name, a), Side(people_b[0], b)))]
        return []


def about_question(query: Query, a: str, b: str, min_share: float = 0.6) -> bool:
    """Is the other passage about what the question names? "How many books does the Riverton Public Library hold?"
    is not answered by another library's count: a passage in the question's language must hold most words of one of
    the names the question writes (none named: any passage is; across languages the windows' cosine decides)."""
    names = [n.split() for n in name_runs(query.text) if n.split()]
    if not names or detect_language(b) != detect_language(query.text) or detect_language(a) != detect_language(b):
        return True
    return any(sum(has_word(b, w) for w in words) >= min_share * len(words) for words in names)


def _about(text: str, name: str) -> str:
    """What the text says of a person: the phrase after the name up to the next comma or sentence end ("He Qing,
    Secretary of the Party Committee and Director of …, and Cheng Peng, …": Cheng Peng's is his own role)."""
    start = text.find(name)
    rest = re.sub(r"^[\s,，]*(?:(?:is|was|serves as|became)\s+)?", "", text[start + len(name) :])
    return re.split(r"[,，.;；。]", rest, maxsplit=1)[0]


def _same_magnitude(a: float, b: float) -> bool:
    """Within a factor of ten: "100 billion" and "2000亿" may be two figures for one fund, "three" and "2000亿" not."""
    small, large = sorted((abs(a), abs(b)))
    return small > 0 and large / small <= 10


def _inside(q: Quantity, spans: list[tuple[int, int]]) -> bool:
    return any(s <= q.start < e for s, e in spans)


def state_disagreements(language: str, answer: str, cited: list[Passage], found: list[Disagreement],
                        documents: dict[str, DocInfo]) -> tuple[str, list[Passage], list[ConflictingValue]]:
    """The answer with one sentence per disagreement stating both values, each cited, with its source's title and
    date ("The sources disagree: …"), the cited passages with the other sides added, and the contract's list."""
    if not found:
        return answer, cited, []
    templates = json.loads(prompts.read("conflicts.json"))
    template = templates.get(language, templates["en"])
    passages = list(cited)
    values: list[ConflictingValue] = []
    sentences = []
    for d in found:
        parts = []
        for side in d.sides:
            n = next((p.n for p in passages if (p.doc_id, p.start, p.end) == (side.passage.doc_id,
                                                                                 side.passage.start,
                                                                                 side.passage.end)), None)
            if n is None:
                n = len(passages) + 1
                p = side.passage
                passages.append(Passage(n, p.doc_id, p.start, p.end, p.text, p.score, p.context_start,
                                        p.context_end, p.context_text))
            doc = documents.get(side.passage.doc_id)
            title = doc.title if doc else side.passage.doc_id
            date = doc.date if doc else ""
            parts.append(template["side_dated" if date else "side"].format(title=title, date=date, value=side.value,
                                                                          n=n))
            values.append(ConflictingValue(value=side.value, citation=n, source=title, doc_id=side.passage.doc_id,
                                           date=date, about=d.about))
        sentences.append(template["sentence"].format(sides=template["joiner"].join(parts)))
    gap = "" if language == "zh" else " "
    return answer.rstrip() + gap + gap.join(sentences), passages, values
