"""An English question answered in Chinese: the model followed a Chinese source about something else."""

from __future__ import annotations

from chatbot.checks.base import CheckContext, Verdict
from chatbot.corpus import detect_language
from chatbot.verification import Verification


class AnswerLanguage:
    name = "answer_language"

    def check(self, answer: Verification, ctx: CheckContext) -> Verdict | None:
        if ctx.query.language == "en" and detect_language(answer.answer) != "en":
            return Verdict(self.name, "an English question was answered in another language")
        return None
