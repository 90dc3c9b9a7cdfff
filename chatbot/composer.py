"""Answers the workflow composes without the model: the premise correction, the extractive answer (quotes, when
the LLM does not answer), refusals, and the contract's citations and sources."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from chatbot import prompts
from chatbot.errors import LLMUnavailable
from chatbot.markers import strip_markers
from chatbot.numbers import chinese_number, extract_quantities, same_value
from chatbot.premise import PremiseConflict
from chatbot.query import Query
from chatbot.schemas import DocInfo
from chatbot.schemas import Answer, Citation, Evidence, Removed
from chatbot.verification import Passage, Verification, has_word

log = logging.getLogger(__name__)


def passage_of(n: int, e: Evidence) -> Passage:
    return Passage(n, e.doc_id, e.start, e.end, e.text, e.score, e.context_start, e.context_end, e.context_text,
                   e.prompt_text if e.prompt_text != e.text else "", e.head_start, e.head_end, e.head_text,
                   list(e.clauses))


def whole_sentence(n: int, p: Passage) -> Passage:
    """The evidence passage widened to its whole sentence (a clause quoted alone can read as a fragment)."""
    if p.context_text and p.context_start is not None and p.context_end is not None:
        return Passage(n, p.doc_id, p.context_start, p.context_end, p.context_text, p.score, p.context_start,
                       p.context_end, p.context_text)
    return Passage(n, p.doc_id, p.start, p.end, p.text, p.score, p.start, p.end, p.text)


class Citer:
    """Citations and sources of passages, with their documents' title, outlet and date."""

    def __init__(self, documents: dict[str, DocInfo]) -> None:
        self.documents = documents

    def citation(self, p: Passage) -> Citation:
        doc = self.documents.get(p.doc_id)
        return Citation(n=p.n, doc_id=p.doc_id, source=doc.source if doc else "", title=doc.title if doc else "",
                        outlet=doc.outlet if doc else "", date=doc.date if doc else "",
                        start=p.start, end=p.end, text=p.text, score=round(p.score, 4),
                        context_start=p.context_start, context_end=p.context_end)

    source = citation  # a passage shown to the model is described exactly as a citation of it

def removed_sentences(check: Verification, verdict_check: str = "", verdict_reason: str = "") -> list[Removed]:
    """Each sentence verification removed, with its reason; a whole answer a check refused, with the check's."""
    removed = [Removed(text=s.text, reason=s.reason or "not supported by the cited passage")
               for s in check.sentences if not s.supported]
    if verdict_check:
        removed.append(Removed(text=strip_markers(check.answer).strip(), reason=verdict_reason, check=verdict_check))
    return removed


def refusal(id: str | None, question: str, language: str, timings: dict[str, float], standalone: str | None,
            reason: str, check: Verification | None = None, removed: list[Removed] | None = None) -> Answer:
    return Answer(id=id, question=question, answer=prompts.REFUSAL.get(language, prompts.REFUSAL["en"]),
                  refused=True, language=language, standalone_question=standalone, timings_ms=timings,
                  unsupported=check.unsupported if check else [], removed=removed or [], refusal_reason=reason)


def premise_correction(language: str, conflicts: list[PremiseConflict], passages: list[Passage],
                       check: Verification) -> Verification:
    """The model did not correct the question's number: quote the passage that states the documents' number
    about the same thing. What the model wrote and verification removed stays listed as unsupported."""
    conflict = conflicts[0]
    p = next(p for p in passages if p.n == conflict.passage)
    stated = conflict.stated
    if language == "zh" and re.search(r"[A-Za-z]", stated):
        found = extract_quantities(stated)
        stated = chinese_number(found[0]) if found else stated
    start, end = p.start, p.end
    documents = [q.value for q in extract_quantities(conflict.stated)]
    for c_start, c_end in p.clauses:  # the clause that states the documents' number (or name)
        clause = p.text[c_start - p.start : c_end - p.start]
        if any(same_value(q.value, v) for q in extract_quantities(clause) for v in documents) or (
                not documents and has_word(clause, conflict.stated)):
            start, end = c_start, c_end
            break
    if conflict.term:  # a name: the quote runs on to the clause with the term the question gave another
        for c_start, c_end in p.clauses:
            if c_end > start and conflict.term.lower() in p.text[c_start - p.start : c_end - p.start].lower():
                end = max(end, c_end)
                break
    quote = p.text[start - p.start : end - p.start]
    text = prompts.premise_correction(language, conflict.asked, stated, quote)
    cited = Passage(1, p.doc_id, start, end, quote, p.score, p.context_start, p.context_end, p.context_text)
    return Verification(answer=text, passages=[cited], sentences=check.sentences, unsupported=check.unsupported)


def extractive(id: str | None, question: str, language: str, passages: list[Passage],
               conflicts: list[PremiseConflict], timings: dict[str, float], standalone: str | None,
               failure: LLMUnavailable, citer: Citer, quotes: int, min_share: float, *,
               cut_off: bool = False) -> Answer:
    """The LLM did not answer: the best evidence sentences, quoted word for word and each cited, labelled
    extractive (with a notice saying why: `cut_off` when it stopped after drafts were streamed) instead of
    an error. A question whose number the documents state differently gets the quote that states theirs.
    Quotes after the best one score at least `min_share` of its score."""
    log.warning("the LLM did not answer (%s); answering with quotes from the documents", failure)
    if conflicts:
        correction = premise_correction(language, conflicts, passages, Verification("", []))
        cited, text = correction.passages, correction.answer
        if cited[0].text not in text:  # a template that does not quote (the Chinese one): the quote follows
            text += "\n" + prompts.extractive_answer(language, [cited[0].text])
    else:
        ranked = sorted(passages, key=lambda p: -p.score)
        best = [ranked[0], *(p for p in ranked[1:quotes] if p.score >= min_share * ranked[0].score)]
        cited = [whole_sentence(i, p) for i, p in enumerate(best, 1)]
        text = prompts.extractive_answer(language, [p.text for p in cited])
    return Answer(id=id, question=question, answer=text, refused=False, language=language,
                  citations=[citer.citation(p) for p in cited], standalone_question=standalone, mode="extractive",
                  notice=prompts.extractive_notice(language, cut_off=cut_off), timings_ms=timings)


def asked_as_written(conflict: PremiseConflict, searched: Query, asked: Query) -> PremiseConflict | None:
    """A premise found in the question's translation, named the way the user wrote it (their "150万", not the
    translation's "150 million"): the number at the same place among the question's numbers, or of equal value.
    None when the user wrote no such number: the translation added it ("Which of the two …" for 哪个), so it is
    no premise of theirs."""
    if searched is asked:
        return conflict
    found = [q for q in searched.quantities if searched.text[q.start : q.end] == conflict.asked]
    if not found:
        return conflict
    same = [q for q in asked.quantities if same_value(q.value, found[0].value)]
    if not same and len(asked.quantities) == len(searched.quantities):
        same = [asked.quantities[searched.quantities.index(found[0])]]
    return replace(conflict, asked=asked.text[same[0].start : same[0].end]) if same else None


def states_any(answer: str, conflicts: list[PremiseConflict]) -> bool:
    """Does the answer state a number (or name) the documents give for what the question got wrong?"""
    text = strip_markers(answer)
    stated = [q.value for c in conflicts for q in extract_quantities(c.stated)]
    names = [" ".join(c.stated.split()[:2]) for c in conflicts if not extract_quantities(c.stated)]
    return any(same_value(q.value, v) for q in extract_quantities(text) for v in stated) or any(
        has_word(text, n) for n in names)
