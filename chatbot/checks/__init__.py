"""Answer checks, each a small class returning a Verdict (why the answer fails) or None; run in this order."""

from __future__ import annotations

from chatbot.checks.answer_language import AnswerLanguage
from chatbot.checks.answer_type import AnswerType
from chatbot.checks.base import AnswerCheck, CheckContext, Verdict, first_verdict
from chatbot.checks.focus import Focus
from chatbot.checks.names import ChineseNamesGrounded, NamesInCitedDocuments, QuestionNamesGrounded

__all__ = ["AnswerCheck", "CheckContext", "Verdict", "default_checks", "first_verdict"]


def default_checks() -> list[AnswerCheck]:
    """The checks a verified answer must pass. A new check is a new class added here."""
    return [AnswerLanguage(), AnswerType(), Focus(), QuestionNamesGrounded(), ChineseNamesGrounded(),
            NamesInCitedDocuments()]
