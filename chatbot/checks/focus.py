"""The answer speaks of what the question asks about ("which plants" is answered with plants)."""

from __future__ import annotations

from chatbot.checks.base import CheckContext, Verdict
from chatbot.question_intent import addresses_focus, focus_phrase
from chatbot.verification import Verification


class Focus:
    name = "focus"

    def check(self, answer: Verification, ctx: CheckContext) -> Verdict | None:
        if addresses_focus(ctx.query, answer.answer, [p.shown for p in answer.passages], ctx.similarity,
                           min_similarity=ctx.settings.focus_similarity):
            return None
        focus = focus_phrase(ctx.query.text)
        return Verdict(self.name, f"the answer does not speak of what the question asks about ({focus})"
                       if focus else "the answer does not speak of what the question asks about")
