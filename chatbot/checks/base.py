"""The check interface: a small class whose `check` says why an answer fails (a Verdict), or nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chatbot.config import Settings
from chatbot.query import Query
from chatbot.verification import Similarity, Verification


@dataclass(frozen=True)
class Verdict:
    """Why a check did not accept the answer; kept in the answer contract, the chat and the eval report."""

    check: str  # the check's name
    reason: str  # a sentence for the user or the evaluator


@dataclass(frozen=True)
class CheckContext:
    """What a check may read besides the answer: the question, the retrieved text and the documents."""

    query: Query
    settings: Settings  # the tuned thresholds
    known: str  # the retrieved chunks' text, where names the question uses are looked up
    similarity: Similarity
    document_text: Callable[[str], str | None]  # a document's whole text (None when it is gone)
    distinctive: Callable[[str], bool]  # does a word name something particular (few indexed chunks use it)?


class AnswerCheck(Protocol):
    """One check of a verified answer (its supported sentences and the passages they cite)."""

    name: str

    def check(self, answer: Verification, ctx: CheckContext) -> Verdict | None: ...


def first_verdict(checks: list[AnswerCheck], answer: Verification, ctx: CheckContext) -> Verdict | None:
    """The checks run in order; the first that fails decides (later ones would only repeat the refusal)."""
    for check in checks:
        verdict = check.check(answer, ctx)
        if verdict is not None:
            return verdict
    return None
