"""The answer is of the kind the question asks for (a number for "how many", a name for "who", …)."""

from __future__ import annotations

from chatbot.checks.base import CheckContext, Verdict
from chatbot.question_intent import answers_question_type
from chatbot.verification import Verification


class AnswerType:
    name = "answer_type"

    def check(self, answer: Verification, ctx: CheckContext) -> Verdict | None:
        if answers_question_type(ctx.query, answer.answer):
            return None
        return Verdict(self.name, f"the question asks for a {ctx.query.expects}; the answer does not give one")
