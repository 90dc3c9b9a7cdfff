"""The typed analysis of one question, built once at the start of its path and passed to every stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatbot.corpus import detect_language
from chatbot.keyword import tokenize
from chatbot.names import quoted_terms
from chatbot.numbers import Quantity, extract_quantities, is_digits
from chatbot.question_intent import AnswerType, asks_for_several, choice_options, expected_answer_type


@dataclass(frozen=True)
class Query:
    text: str
    language: str  # "en" or "zh"
    tokens: frozenset[str]  # stemmed English words (no stopwords) and Chinese character bigrams
    quantities: tuple[Quantity, ...]  # numbers the question states, normalised
    expects: AnswerType
    several: bool  # a list, a comparison or a two-part question: needs more evidence
    options: tuple[str, ...] = field(default=())  # the named options of a choice question ("X or Y?")
    quoted: tuple[str, ...] = field(default=())  # terms the question writes in quotation marks ("All in AI")

    @property
    def latin_words(self) -> frozenset[str]:
        """English content words (no numbers, no Chinese)."""
        return frozenset(t for t in self.tokens if t.isascii() and not is_digits(t))


def analyse_question(text: str) -> Query:
    return Query(
        text=text,
        language=detect_language(text),
        tokens=frozenset(tokenize(text)),
        quantities=tuple(extract_quantities(text)),
        expects=expected_answer_type(text),
        several=asks_for_several(text),
        options=choice_options(text),
        quoted=quoted_terms(text),
    )
