"""Scoring one answer against its gold item (strictly, from the answer's own claims) and aggregating the
scores. Faithfulness is checked here, independently of the chatbot's verifier, the same way for every system."""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from chatbot.chunking import split_sentences

from chatbot.evaluation.claims import (
    Glossary,
    contains_word,
    has_value,
    language_of,
    latin_names,
    negated,
    quantities,
    sentences,
    strip_markers,
)
from chatbot.evaluation.models import CitedSpan, GoldItem, Metrics, Percentiles, Span, SystemResult
from chatbot.text import CJK

PROMPT_COVERAGE = 0.9  # a gold quote "reached the prompt" when this share of its characters was shown


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"[\"'`“”‘’«»「」『』《》()（）\[\],，.。:：;；!！?？、\-–—/]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def form_present(form: str, answer: str) -> bool:
    """One surface form of a required fact is in the answer. Numbers compare by value, with qualifiers:
    "1.05 million" = "1,050,000" = "105万"; "more than 30%" needs a "more than"-like word too."""
    answer = strip_markers(answer)
    wanted = quantities(form)
    if wanted:
        got = quantities(answer)
        for q in wanted:
            match = [a for a in got if has_value(a.value, [q.value])]
            if not match:
                return False
            if q.qualifier in ("gt", "lt") and not any(a.qualifier == q.qualifier for a in match):
                return False
        return True
    f, a = normalise(form), normalise(answer)
    if not f:
        return False
    if CJK.search(f):
        return f.replace(" ", "") in a.replace(" ", "")
    # An English form also matches its inflections: "mechanism model" ~ "mechanism models", "launch" ~ "launched".
    return re.search(r"(?<![a-z0-9])" + re.escape(f) + r"(?:s|es|d|ed|ing)?(?![a-z0-9])", a) is not None


def fact_present(alternatives: list[str], answer: str) -> bool:
    return any(form_present(form, answer) for form in alternatives)


@dataclass
class Passage:
    """A passage a system showed its model or cited, numbered as its answer's [n] markers."""

    n: int
    doc_id: str
    start: int
    end: int
    text: str

    @property
    def span(self) -> Span:
        return Span(doc_id=self.doc_id, start=self.start, end=self.end)


@dataclass
class Reply:
    """What a system returned for one question, in system-neutral form."""

    answer: str
    refused: bool
    cited: list[Passage]  # the passages the answer's markers refer to
    prompt: list[Span] = field(default_factory=list)  # what the model was shown
    ranked: list[Span] | None = None  # retrieved chunks in rank order
    unsupported: list[str] = field(default_factory=list)  # removed by the system's own verifier
    removed_why: list[str] = field(default_factory=list)  # "sentence — reason", as the verifier gave it
    refusal_reason: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    standalone_question: str | None = None
    error: str | None = None


@dataclass
class Reference:
    """What the scorer compares answers with: the corpus texts and the glossary of names."""

    documents: dict[str, str]
    glossary: Glossary
    _sentences: dict[str, list[Span]] = field(default_factory=dict, repr=False)

    @property
    def corpus(self) -> str:
        return "\n".join(self.documents.values())

    def sentences_around(self, spans: Sequence[Span]) -> list[str]:
        """The document sentences that overlap the given spans."""
        out = []
        for span in spans:
            if span.doc_id not in self._sentences:
                text = self.documents.get(span.doc_id, "")
                self._sentences[span.doc_id] = [Span(doc_id=span.doc_id, start=x.start, end=x.end)
                                                for x in split_sentences(text)]
            text = self.documents.get(span.doc_id, "")
            out += [text[x.start : x.end] for x in self._sentences[span.doc_id] if x.overlaps(span)]
        return out


def contradictions(item: GoldItem, answer: str, ref: Reference) -> list[str]:
    """Numbers and names the answer states that the gold evidence does not support.

    Numbers must be in the evidence quotes themselves (or the expected facts, or the question): a number
    borrowed from elsewhere in the sentence or the document is not the answer. Names may also come from the
    document sentences that contain the evidence (the subject of a quoted clause, a person's title). The
    question's own numbers and names are the user's words, except a false premise's values (`premise`),
    which may only be repeated in a sentence that rejects them ("11, not 20")."""
    supported = " ".join(item.evidence + [f for alts in item.answers for f in alts])
    context = " ".join([supported, *ref.sentences_around(item.spans)])
    asked = " ".join([*item.history, item.question])
    false_values = [q.value for form in item.premise for q in quantities(form)]
    false_entities = [e for form in item.premise for e in ref.glossary.mentioned(form)]
    allowed = [v for v in [q.value for q in quantities(supported)] + [q.value for q in quantities(asked)]
               if not has_value(v, false_values)]
    corpus = ref.corpus
    found: list[str] = []
    for s in sentences(answer):
        neg = negated(s.text)
        for q in quantities(s.text):
            if has_value(q.value, allowed) or (neg and has_value(q.value, false_values)):
                continue
            found.append(f"states the number {s.text[q.start:q.end]!r}, which the gold evidence does not")
        for e in ref.glossary.mentioned(s.text):
            if e in false_entities:
                if not neg:
                    found.append(f"names {e.name!r}, the question's false premise, as true")
                continue
            if e.in_text(context) or e.in_text(asked):
                continue
            found.append(f"names {e.name!r}, which the gold evidence does not")
        for word in latin_names(s.text):
            if ref.glossary.covers(word) or any(contains_word(t, word) for t in (supported, asked, corpus)):
                continue
            found.append(f"names {word!r}, which appears nowhere in the documents")
        if item.premise and not neg:
            for form in item.premise:
                if form_present(form, s.text):
                    found.append(f"restates the false premise {form!r} as true")
    return list(dict.fromkeys(found))


def unfaithful_sentences(answer: str, cited: Sequence[Passage], question: str, glossary: Glossary) -> tuple[
        list[str], int]:
    """Sentences whose numbers or names are not in the passages they cite (or that state facts with no
    citation), and how many sentences were checked."""
    by_n = {p.n: p.text for p in cited}
    bad: list[str] = []
    checked = 0
    for s in sentences(answer):
        nums = quantities(s.text)
        entities = glossary.mentioned(s.text)
        names = [w for w in latin_names(s.text) if not glossary.covers(w)]
        if not s.markers:
            if nums or entities or names:
                checked += 1
                bad.append(f"{s.text} (states facts without a citation)")
            continue
        checked += 1
        texts = [by_n[n] for n in s.markers if n in by_n]
        if not texts:
            bad.append(f"{s.text} (cites a passage it was not given)")
            continue
        source = " ".join(texts)
        neg = negated(s.text)
        values = [q.value for q in quantities(source)]
        asked = [q.value for q in quantities(question)]
        why = ""
        for q in nums:
            if not (has_value(q.value, values) or (neg and has_value(q.value, asked))):
                why = f"number {s.text[q.start:q.end]!r} is not in the cited passage"
                break
        if not why:
            for e in entities:
                if not (e.in_text(source) or (neg and e.in_text(question))):
                    why = f"name {e.name!r} is not in the cited passage"
                    break
        if not why:
            for w in names:
                if not (contains_word(source, w) or (neg and contains_word(question, w))):
                    why = f"name {w!r} is not in the cited passage"
                    break
        if why:
            bad.append(f"{s.text} ({why})")
    return bad, checked


def _covered(span: Span, shown: Sequence[Span]) -> float:
    """Share of a span's characters inside the union of the shown spans."""
    length = span.end - span.start
    if length <= 0:
        return 0.0
    marks = np.zeros(length, dtype=bool)
    for s in shown:
        if s.doc_id == span.doc_id:
            lo, hi = max(s.start, span.start), min(s.end, span.end)
            if lo < hi:
                marks[lo - span.start : hi - span.start] = True
    return float(marks.mean())


def _gold_chars(span: Span, gold: Sequence[Span]) -> int:
    return round(_covered(span, gold) * (span.end - span.start))


def score_answer(item: GoldItem, reply: Reply, ref: Reference) -> SystemResult:
    answer = reply.answer
    answer_language = language_of(answer) if answer.strip() else item.language
    in_language = answer_language == item.language
    missing: list[list[str]] = []
    contra: list[str] = []
    if reply.error:
        correct_any, why = False, f"error: {reply.error}"
    elif item.kind == "unanswerable":
        correct_any = reply.refused
        why = "refused, as expected" if reply.refused else "answered a question the documents cannot answer"
    elif reply.refused:
        correct_any, why, missing = False, "refused an answerable question", item.answers
    else:
        missing = [alts for alts in item.answers if not fact_present(alts, answer)]
        contra = contradictions(item, answer, ref)
        correct_any = not missing and not contra
        n = len(item.answers)
        reasons = []
        if missing:
            reasons.append(f"{len(missing)} of {n} required facts missing: "
                           + "; ".join(" / ".join(m[:3]) for m in missing))
        reasons += contra
        why = "; ".join(reasons) if reasons else f"all {n} required facts, nothing contradicting the evidence"
    correct = correct_any and in_language
    if correct_any and not in_language:
        why = f"{why}; but answered in {answer_language}, not {item.language}"

    gold = item.spans
    spans = [p.span for p in reply.cited]
    precise = [any(s.overlaps(g) for g in gold) for s in spans]
    precision = (sum(precise) / len(precise)) if spans else None
    recall = (sum(any(s.overlaps(g) for s in spans) for g in gold) / len(gold)) if gold else None
    rank = None
    if reply.ranked is not None and gold:
        rank = next((i for i, r in enumerate(reply.ranked, 1) if any(r.overlaps(g) for g in gold)), None)
    in_prompt = (sum(_covered(g, reply.prompt) >= PROMPT_COVERAGE for g in gold) / len(gold)) if gold else None
    unfaithful: list[str] = []
    faithfulness = faithfulness_sentence = None
    if not reply.refused and not reply.error:
        asked = " ".join([*item.history, item.question])
        unfaithful, checked = unfaithful_sentences(answer, reply.cited, asked, ref.glossary)
        faithfulness = (checked - len(unfaithful)) / checked if checked else None
        # The same check against the whole document sentences the cited spans are in (a clause-level citation
        # may leave out its sentence's subject): tells a citation too narrow from a claim not in the document.
        widened = [Passage(p.n, p.doc_id, p.start, p.end, " ".join(ref.sentences_around([p.span])) or p.text)
                   for p in reply.cited]
        loose, checked = unfaithful_sentences(answer, widened, asked, ref.glossary)
        faithfulness_sentence = (checked - len(loose)) / checked if checked else None
    return SystemResult(
        answer=answer, refused=reply.refused, answer_language=answer_language, in_language=in_language,
        correct=correct, correct_any_language=correct_any, why=why, missing_facts=missing, contradictions=contra,
        citations=[CitedSpan(n=p.n, doc_id=p.doc_id, start=p.start, end=p.end, text=p.text, precise=ok)
                   for p, ok in zip(reply.cited, precise)],
        unsupported=reply.unsupported, removed_why=reply.removed_why, refusal_reason=reply.refusal_reason,
        unfaithful=unfaithful, faithfulness=faithfulness,
        faithfulness_sentence=faithfulness_sentence,
        citation_precision=precision, citation_recall=recall,
        cited_chars=sum(s.end - s.start for s in spans), cited_gold_chars=sum(_gold_chars(s, gold) for s in spans),
        retrieved=reply.ranked is not None, hit_rank=rank, evidence_in_prompt=in_prompt, shown=reply.prompt,
        ranked=reply.ranked,
        answer_chars=len(strip_markers(answer).strip()), standalone_question=reply.standalone_question,
        timings_ms=reply.timings_ms, error=reply.error,
    )


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def aggregate(rows: Sequence[tuple[GoldItem, SystemResult]]) -> Metrics:
    results = [r for _, r in rows]
    answerable = [r for i, r in rows if i.kind != "unanswerable"]
    unanswerable = [r for i, r in rows if i.kind == "unanswerable"]
    false_premise = [r for i, r in rows if i.kind == "false_premise"]
    chinese = [r for i, r in rows if i.language == "zh"]
    refused = [(i, r) for i, r in rows if r.refused]
    answered = [r for r in results if not r.refused and not r.error]
    answered_answerable = [r for r in answerable if not r.refused and not r.error]
    with_gold = [r for i, r in rows if i.spans]
    ranked = [r for r in with_gold if r.retrieved]
    cites = [c for r in results for c in r.citations]
    cited_chars = sum(r.cited_chars for r in results)
    return Metrics(
        n=len(rows),
        answer_accuracy=_mean([float(r.correct) for r in results]),
        accuracy_any_language=_mean([float(r.correct_any_language) for r in results]),
        answered_in_language=_mean([float(r.in_language) for r in results]),
        english_fallback=_mean([float(r.answer_language == "en") for r in chinese]),
        answerable_accuracy=_mean([float(r.correct) for r in answerable]),
        unanswerable_accuracy=_mean([float(r.correct) for r in unanswerable]),
        false_premise_accuracy=_mean([float(r.correct) for r in false_premise]),
        refusal_precision=_share(sum(i.kind == "unanswerable" for i, _ in refused), len(refused)),
        refusal_recall=_share(sum(r.refused for r in unanswerable), len(unanswerable)),
        wrong_refusal_rate=_mean([float(r.refused) for r in answerable]),
        contradiction_rate=_mean([float(bool(r.contradictions)) for r in answered_answerable]),
        citation_precision=_share(sum(c.precise for c in cites), len(cites)),
        citation_recall=_mean([r.citation_recall for r in with_gold if r.citation_recall is not None]),
        citation_char_precision=_share(sum(r.cited_gold_chars for r in results), cited_chars),
        faithfulness=_mean([r.faithfulness for r in results if r.faithfulness is not None]),
        faithfulness_sentence=_mean([r.faithfulness_sentence for r in results if r.faithfulness_sentence is not None]),
        verifier_removed=_mean([float(bool(r.unsupported)) for r in results]),
        evidence_in_prompt=_mean([r.evidence_in_prompt for r in with_gold if r.evidence_in_prompt is not None]),
        hit_at_1=_mean([float(r.hit_rank is not None and r.hit_rank <= 1) for r in ranked]),
        hit_at_3=_mean([float(r.hit_rank is not None and r.hit_rank <= 3) for r in ranked]),
        mrr=_mean([1.0 / r.hit_rank if r.hit_rank else 0.0 for r in ranked]),
        mean_answer_chars=round(statistics.fmean([r.answer_chars for r in answered]), 1) if answered else None,
        mean_cited_chars=round(cited_chars / len(cites), 1) if cites else None,
    )


def percentiles(values: Sequence[float]) -> dict:
    """{"p50", "p95", "values"} of a list of timings (bench.py prints these too)."""
    if not values:
        return {"p50": None, "p95": None, "values": []}
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1), "values": [round(v, 1) for v in values]}


def latency(values: Sequence[float]) -> Percentiles:
    return Percentiles(**percentiles(values))
