"""Typed records of the eval: a gold item, one system's result for a question, the metrics (each named and
labelled here, once), a system's summary and the whole report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["fact", "number", "list", "person", "multihop", "paraphrase", "unanswerable", "false_premise"]
KINDS: tuple[str, ...] = ("fact", "number", "list", "person", "multihop", "paraphrase", "unanswerable",
                          "false_premise")
LANGUAGES: tuple[str, ...] = ("en", "zh")
SPLITS: tuple[str, ...] = ("dev", "test")


class Span(BaseModel):
    model_config = ConfigDict(frozen=True)

    doc_id: str
    start: int
    end: int

    def overlaps(self, other: Span) -> bool:
        return self.doc_id == other.doc_id and self.start < other.end and other.start < self.end


class GoldItem(BaseModel):
    """One line of eval/gold.jsonl (or, with `history`, of eval/conversations.jsonl)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    question: str = Field(min_length=1)
    language: Literal["en", "zh"]
    kind: Kind
    split: Literal["dev", "test"]
    answers: list[list[str]]
    evidence: list[str]
    doc_id: str | None = None
    # false_premise items: the false value(s) the question assumes; an answer must not state them as true.
    premise: list[str] = Field(default_factory=list)
    # Conversations: the earlier user questions, asked first in the same run; `question` is the last turn.
    history: list[str] = Field(default_factory=list)
    notes: str = ""
    # Filled by the loader: where each evidence quote is in the corpus.
    spans: list[Span] = Field(default_factory=list, exclude=True)


class CitedSpan(BaseModel):
    n: int
    doc_id: str
    start: int
    end: int
    text: str
    precise: bool  # overlaps a gold evidence quote


class SystemResult(BaseModel):
    """One system's answer to one question, and how the eval scored it."""

    answer: str
    refused: bool
    answer_language: str
    in_language: bool
    correct: bool  # strict: every fact, nothing contradicting the evidence, in the question's language
    correct_any_language: bool  # the same, whatever the answer's language
    why: str
    missing_facts: list[list[str]] = Field(default_factory=list)
    contradictions: list[str] = Field(default_factory=list)
    citations: list[CitedSpan] = Field(default_factory=list)
    unsupported: list[str] = Field(default_factory=list)  # sentences the system's own verifier removed
    removed_why: list[str] = Field(default_factory=list)  # each removed sentence with the reason its check gave
    refusal_reason: str = ""  # why the system refused, as it says
    unfaithful: list[str] = Field(default_factory=list)  # sentences failing the eval's independent check
    faithfulness: float | None = None
    faithfulness_sentence: float | None = None  # the same check against the cited spans' whole sentences
    citation_precision: float | None = None
    citation_recall: float | None = None
    cited_chars: int = 0
    cited_gold_chars: int = 0
    retrieved: bool = False  # the system reported its ranked chunks (hit@k is computed only then)
    hit_rank: int | None = None
    shown: list[Span] = Field(default_factory=list)  # the passages given to the model, in prompt order
    ranked: list[Span] | None = None  # the retrieved chunks in rank order (None: not reported)
    evidence_in_prompt: float | None = None
    answer_chars: int = 0
    standalone_question: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    error: str | None = None


class HistoryTurn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class QuestionRecord(BaseModel):
    id: str
    split: str
    question: str
    language: str
    kind: str
    expected: list[list[str]]
    gold_evidence: list[str]
    premise: list[str] = Field(default_factory=list)
    history: list[HistoryTurn] = Field(default_factory=list)  # conversations: earlier turns as asked and answered
    results: dict[str, SystemResult] = Field(default_factory=dict)


def metric(title: str, *, lower_is_better: bool = False, unit: str = "share") -> Any:
    return Field(default=None, title=title, json_schema_extra={"lower_is_better": lower_is_better, "unit": unit})


class Metrics(BaseModel):
    """Every figure the eval reports; the titles are the labels the reports print."""

    n: int = Field(default=0, title="questions", json_schema_extra={"unit": "count"})
    answer_accuracy: float | None = metric("answer accuracy (strict: every expected fact, nothing contradicting "
                                           "the gold evidence, in the question's language)")
    accuracy_any_language: float | None = metric("accuracy ignoring the answer's language")
    answered_in_language: float | None = metric("answered in the question's language")
    english_fallback: float | None = metric("Chinese questions answered in English", lower_is_better=True)
    answerable_accuracy: float | None = metric("answerable accuracy")
    unanswerable_accuracy: float | None = metric("unanswerable accuracy (refused)")
    false_premise_accuracy: float | None = metric("false-premise accuracy (premise rejected, true fact stated)")
    refusal_precision: float | None = metric("refusal precision")
    refusal_recall: float | None = metric("refusal recall")
    wrong_refusal_rate: float | None = metric("wrong-refusal rate (answerable refused)", lower_is_better=True)
    contradiction_rate: float | None = metric("answers stating a number or name the evidence does not support",
                                              lower_is_better=True)
    citation_precision: float | None = metric("citation precision (cited spans overlapping gold evidence)")
    citation_recall: float | None = metric("citation recall (gold quotes cited)")
    citation_char_precision: float | None = metric("cited characters inside gold evidence")
    faithfulness: float | None = metric("faithfulness (independent check: every number and name of a sentence "
                                        "is in the passage it cites)")
    faithfulness_sentence: float | None = metric("faithfulness against the whole sentences the cited spans are in")
    verifier_removed: float | None = metric("answers the system's own verifier cut sentences from",
                                            lower_is_better=True)
    evidence_in_prompt: float | None = metric("gold evidence that reached the prompt")
    hit_at_1: float | None = metric("retrieval hit@1 (a retrieved chunk overlaps gold evidence)")
    hit_at_3: float | None = metric("retrieval hit@3 (chunk level)")
    mrr: float | None = metric("retrieval MRR (chunk level)")
    mean_answer_chars: float | None = metric("mean answer length (characters, markers removed)", unit="chars")
    mean_cited_chars: float | None = metric("mean length of a cited span (characters)", unit="chars")


def metric_info() -> list[tuple[str, str, str, bool]]:
    """(name, label, unit, lower_is_better) for every metric, in report order."""
    out = []
    for name, field in Metrics.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        out.append((name, field.title or name, str(extra.get("unit", "share")), bool(extra.get("lower_is_better"))))
    return out


class Percentiles(BaseModel):
    p50: float | None = None
    p95: float | None = None
    values: list[float] = Field(default_factory=list)


class Judged(BaseModel):
    correctness: float | None = None
    faithfulness: float | None = None
    note: str = ""


class SystemSummary(BaseModel):
    metrics: Metrics
    by_kind: dict[str, Metrics] = Field(default_factory=dict)
    by_language: dict[str, Metrics] = Field(default_factory=dict)
    by_split: dict[str, Metrics] = Field(default_factory=dict)
    followup: Metrics | None = None  # the last turns of the multi-turn conversations
    followup_by_language: dict[str, Metrics] = Field(default_factory=dict)
    latency_ms: dict[str, Percentiles] = Field(default_factory=dict)
    judged: Judged | None = None


class RunInfo(BaseModel):
    timestamp: str
    command: str = ""
    gold_set: str = ""
    conversations_file: str | None = None
    split: str = "all"
    subset: str | None = None
    n: int = 0
    n_conversations: int = 0
    llm: str = ""
    git_commit: str = ""  # the commit that produced the answers
    git_dirty: bool = False
    scored_at_commit: str = ""  # the commit whose scorer scored them (differs after --rescore)
    answers_from: str | None = None  # --rescore: the report whose answers were scored again
    settings: dict[str, object] = Field(default_factory=dict)
    machine: dict[str, object] = Field(default_factory=dict)


class GateCheck(BaseModel):
    scope: str  # "all", "en", "zh" or "gap"
    metric: str
    threshold: float
    value: float | None
    passed: bool
    bound: Literal["min", "max"] = "min"


class GateResult(BaseModel):
    checks: list[GateCheck] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)
    passed: bool = True


class Change(BaseModel):
    id: str
    question: str
    before: str | None
    after: str | None


class Comparison(BaseModel):
    previous: str = ""
    regressions: list[Change] = Field(default_factory=list)
    improvements: list[Change] = Field(default_factory=list)
    metric_deltas: dict[str, float] = Field(default_factory=dict)


class Report(BaseModel):
    run: RunInfo
    systems: dict[str, SystemSummary] = Field(default_factory=dict)
    baseline_setup: list[str] = Field(default_factory=list)  # what differs between the baseline and the chatbot
    latency_ratio: dict[str, float] | None = None
    questions: list[QuestionRecord] = Field(default_factory=list)
    conversations: list[QuestionRecord] = Field(default_factory=list)
    comparison: Comparison | None = None
    gate: GateResult | None = None
