"""The LLM's smaller jobs around an answer: a follow-up rewritten into a standalone question, a question
translated for searching the other language's documents, and a verified English answer put into Chinese."""

from __future__ import annotations

from llama_index.core.llms import LLM as IndexLLM

from chatbot import prompts
from chatbot.chat_model import complete_text
from chatbot.corpus import detect_language
from chatbot.followup import usable_rewrite
from chatbot.markers import MARKER as MARKER_RE
from chatbot.schemas import Turn
from chatbot.translation_safety import protect_for_translation, restore_translation, translation_keeps_facts

HISTORY_TURNS = 6  # earlier messages a follow-up is rewritten with
HISTORY_TURN_CHARS = 600  # each one cut to this length in the rewrite prompt


class FollowUpRewriter:
    """A follow-up rewritten with the conversation into a question retrieval can answer alone."""

    def __init__(self, llm: IndexLLM) -> None:
        self.llm = llm

    def rewrite(self, question: str, history: list[Turn]) -> str:
        if not history:
            return question
        recent = [(t.role, _clip(MARKER_RE.sub("", t.content).strip(), HISTORY_TURN_CHARS))
                  for t in history[-HISTORY_TURNS:]]
        text = complete_text(self.llm, prompts.rewrite_messages(recent, question), 80)
        text = text.strip().splitlines()[0].strip() if text.strip() else ""
        text = text.removeprefix("Standalone question:").strip().strip('"“”')
        if usable_rewrite(text, question):
            return text
        return question  # an answer, a statement or another language is worse than the user's words


class QuestionTranslator:
    """The question in English (Chinese for an English one), for searching documents of the other language."""

    def __init__(self, llm: IndexLLM) -> None:
        self.llm = llm

    def translate(self, question: str, language: str) -> str | None:
        """None when the model's reply is not a translation."""
        text = complete_text(self.llm, prompts.translate_question_messages(question, language), 60).strip()
        text = text.splitlines()[0].strip() if text else ""
        if not text or detect_language(text) == language or len(text) > 4 * len(question) + 40:
            return None
        return text


class AnswerTranslator:
    """A verified English answer in Chinese, with names and numbers protected by placeholders."""

    def __init__(self, llm: IndexLLM, common_words: frozenset[str]) -> None:
        self.llm = llm
        self.common_words = common_words

    def to_chinese(self, answer: str) -> str | None:
        """None when the translation changed a number or lost a citation marker or a name (then the verified
        English answer is shown rather than an unchecked one)."""
        protected, slots = protect_for_translation(answer, self.common_words)
        text = complete_text(self.llm, prompts.translate_answer_messages(protected), 200).strip()
        if not text or detect_language(text) != "zh":
            return None
        restored = restore_translation(text, slots)
        if restored is None or not translation_keeps_facts(answer, restored, self.common_words):
            return None
        return restored


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
