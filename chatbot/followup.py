"""Follow-up questions: whether the model's standalone rewrite of a follow-up can replace the user's words.

The rules are English and Chinese grammar (what a question looks like), not anything of one corpus."""

from __future__ import annotations

import re

from chatbot.corpus import detect_language

# An English question word at the start, or a question mark at the end: what a question (not a statement) has.
_EN_QUESTION = re.compile(r"\?\s*$|^\s*(who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|"
                          r"did|can|could|will|would|has|have|had|should)\b", re.IGNORECASE)
_ZH_QUESTION = re.compile(r"[?？]\s*$|吗|呢|什么|哪|谁|几|多少|怎|如何|为何|为什么|是否")


def is_question(text: str) -> bool:
    """A question rather than a statement: it ends with a question mark or asks with a question word."""
    pattern = _ZH_QUESTION if detect_language(text) == "zh" else _EN_QUESTION
    return bool(pattern.search(text.strip()))


def usable_rewrite(rewrite: str, question: str) -> bool:
    """Can the model's standalone version of `question` replace it? Not when it is empty or far longer (an
    answer), in another language, or a statement where a question was asked: the 1.5B model often turns "What
    direction is it focusing on for end-side products?" into "Shanghai Electric is focusing on end-side
    products.", which its answer then only repeats (and verification refuses)."""
    if not rewrite or len(rewrite) > 3 * len(question) + 200:
        return False
    if detect_language(rewrite) != detect_language(question):
        return False
    return is_question(rewrite) or not is_question(question)
