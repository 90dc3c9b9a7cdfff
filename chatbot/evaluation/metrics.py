"""Scoring one answer against a gold item, and aggregating scores per kind and language."""

from __future__ import annotations

import re
import statistics
import unicodedata
from dataclasses import dataclass, field

from chatbot.citations import parse_answer
from chatbot.numbers import extract_quantities, same_value

KINDS = ("fact", "number", "list", "person", "multihop", "paraphrase", "unanswerable", "false_premise")
LANGUAGES = ("en", "zh")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"[\"'`“”‘’«»「」『』《》()（）\[\],，.。:：;；!！?？、\-–—/]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def form_present(form: str, answer: str) -> bool:
    """One surface form of a required fact is in the answer. Numbers compare by value, with qualifiers:
    "1.05 million" = "1,050,000" = "105万"; "more than 30%" needs a "more than"-like word too."""
    quantities = extract_quantities(form)
    if quantities:
        got = extract_quantities(answer)
        for q in quantities:
            match = [a for a in got if same_value(a.value, q.value)]
            if not match:
                return False
            if q.qualifier in ("gt", "lt") and not any(a.qualifier == q.qualifier for a in match):
                return False
        return True
    f, a = normalise(form), normalise(answer)
    if not f:
        return False
    if re.search(r"[\u3400-\u9fff]", f):
        return f.replace(" ", "") in a.replace(" ", "")
    return re.search(r"(?<![a-z0-9])" + re.escape(f) + r"(?![a-z0-9])", a) is not None


def fact_present(alternatives: list[str], answer: str) -> bool:
    return any(form_present(form, answer) for form in alternatives)


@dataclass
class Span:
    doc_id: str
    start: int
    end: int


def overlaps(a: Span, b: Span) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


@dataclass
class Verdict:
    correct: bool
    why: str
    missing_facts: list[list[str]] = field(default_factory=list)
    citation_precision: float | None = None
    citation_recall: float | None = None
    faithfulness: float | None = None
    hit_rank: int | None = None
    precise: list[bool] = field(default_factory=list)


def score_answer(
    item: dict,
    answer: str,
    refused: bool,
    cited: list[Span],
    unsupported: list[str],
    gold_spans: list[Span],
    retrieved: list[Span] | None = None,
) -> Verdict:
    unanswerable = item["kind"] == "unanswerable"
    if unanswerable:
        correct = refused
        why = "refused, as expected" if refused else "answered a question the documents cannot answer"
        missing: list[list[str]] = []
    elif refused:
        correct, why, missing = False, "refused an answerable question", item["answers"]
    else:
        missing = [alts for alts in item["answers"] if not fact_present(alts, answer)]
        correct = not missing
        n = len(item["answers"])
        why = f"all {n} required facts present" if correct else (
            f"{len(missing)} of {n} required facts missing: " + "; ".join(" / ".join(m[:3]) for m in missing))

    precise = [any(overlaps(c, g) for g in gold_spans) for c in cited]
    precision = (sum(precise) / len(precise)) if cited else None
    recall = (sum(any(overlaps(c, g) for c in cited) for g in gold_spans) / len(gold_spans)) if gold_spans else None
    kept = len(parse_answer(answer)) if not refused else 0
    total = kept + len(unsupported)
    faithfulness = (kept / total) if total else None
    rank = None
    if retrieved is not None and gold_spans:
        for i, r in enumerate(retrieved, 1):
            if any(overlaps(r, g) for g in gold_spans):
                rank = i
                break
    return Verdict(correct, why, missing, precision, recall, faithfulness, rank, precise)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def aggregate(rows: list[dict]) -> dict:
    """rows: {"kind", "language", "correct", "refused", "citation_precision", ...} per question."""
    answerable = [r for r in rows if r["kind"] != "unanswerable"]
    unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
    refused = [r for r in rows if r["refused"]]
    true_refusals = [r for r in refused if r["kind"] == "unanswerable"]
    # Citation precision is pooled over every cited span, so an answer with many wrong citations weighs more.
    spans = [p for r in rows for p in r.get("precise", [])]
    with_gold = [r for r in rows if r.get("has_gold")]
    return {
        "n": len(rows),
        "answer_accuracy": _mean([float(r["correct"]) for r in rows]),
        "answerable_accuracy": _mean([float(r["correct"]) for r in answerable]),
        "unanswerable_accuracy": _mean([float(r["correct"]) for r in unanswerable]),
        "refusal_precision": round(len(true_refusals) / len(refused), 4) if refused else None,
        "refusal_recall": round(len(true_refusals) / len(unanswerable), 4) if unanswerable else None,
        "wrong_refusal_rate": _mean([float(r["refused"]) for r in answerable]),
        "citation_precision": round(sum(spans) / len(spans), 4) if spans else None,
        "citation_recall": _mean([r["citation_recall"] for r in rows if r.get("citation_recall") is not None]),
        "faithfulness": _mean([r["faithfulness"] for r in rows if r.get("faithfulness") is not None]),
        "hit_at_1": _mean([float(r["hit_rank"] is not None and r["hit_rank"] <= 1) for r in with_gold]),
        "hit_at_3": _mean([float(r["hit_rank"] is not None and r["hit_rank"] <= 3) for r in with_gold]),
        "hit_at_k": _mean([float(r["hit_rank"] is not None) for r in with_gold]),
        "mrr": _mean([1.0 / r["hit_rank"] if r["hit_rank"] else 0.0 for r in with_gold]),
    }


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "values": []}
    ordered = sorted(values)

    def pick(q: float) -> float:
        k = (len(ordered) - 1) * q
        lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
        return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)

    return {"p50": pick(0.5), "p95": pick(0.95), "values": [round(v, 1) for v in values]}
