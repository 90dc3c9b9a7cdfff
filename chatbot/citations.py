"""Former home of the answer checks, kept so existing imports keep working. The five jobs now live in
chatbot.markers, chatbot.verification, chatbot.refusal_detection, chatbot.question_intent and
chatbot.translation_safety (plus chatbot.premise); import from those."""

from chatbot.markers import MARKER, ClaimSentence, parse_answer, strip_markers
from chatbot.premise import premise_gaps
from chatbot.question_intent import answers_question_type, asks_for_several
from chatbot.refusal_detection import REFUSAL_PATTERNS, is_refusal
from chatbot.translation_safety import names_preserved, protect_for_translation, restore_translation
from chatbot.verification import (
    NEGATION,
    Passage,
    Similarity,
    Verification,
    VerifiedSentence,
    check_facts,
    content_words,
    lexical_coverage,
    restates,
    verify_citations,
)

__all__ = [
    "MARKER", "NEGATION", "REFUSAL_PATTERNS", "ClaimSentence", "Passage", "Similarity", "Verification",
    "VerifiedSentence", "answers_question_type", "asks_for_several", "check_facts", "content_words", "is_refusal",
    "lexical_coverage", "names_preserved", "parse_answer", "premise_gaps", "protect_for_translation", "restates",
    "restore_translation", "strip_markers", "verify_citations",
]
