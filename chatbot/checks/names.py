"""Names the question asks about must be in what the answer cites, in English and in Chinese questions."""

from __future__ import annotations

from chatbot.checks.base import CheckContext, Verdict
from chatbot.verification import (
    Verification, chinese_question_names_grounded, question_names_grounded, question_names_in_cited_documents,
)


class QuestionNamesGrounded:
    """A person the question names, when the answer speaks of them (or of someone in their place), is named in
    the cited sentences."""

    name = "question_names_grounded"

    def check(self, answer: Verification, ctx: CheckContext) -> Verdict | None:
        if question_names_grounded(ctx.query, answer.answer, answer.passages, ctx.known, ctx.document_text,
                                   referent_sentences=ctx.settings.referent_sentences):
            return None
        return Verdict(self.name, "the cited sentences do not name the person the question asks about")


class ChineseNamesGrounded:
    """A Chinese question's name that the English text spells in pinyin (贺青 -> He Qing) is in what is cited."""

    name = "chinese_names_grounded"

    def check(self, answer: Verification, ctx: CheckContext) -> Verdict | None:
        if chinese_question_names_grounded(ctx.query, answer.passages, ctx.known, ctx.document_text,
                                           ctx.distinctive, referent_sentences=ctx.settings.referent_sentences):
            return None
        return Verdict(self.name, "the cited sentences do not name what the Chinese question asks about")


class NamesInCitedDocuments:
    """A name the question asks about and the answer repeats is in the documents the answer cites."""

    name = "names_in_cited_documents"

    def check(self, answer: Verification, ctx: CheckContext) -> Verdict | None:
        if question_names_in_cited_documents(ctx.query, answer.answer, answer.passages, ctx.document_text):
            return None
        return Verdict(self.name, "the cited documents do not mention the name the question asks about")
