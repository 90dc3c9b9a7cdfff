"""Does an answer decline to answer? Used for systems that return text only (the llama-index baseline):
the usual English and Chinese phrasings of "the sources do not say"."""

from __future__ import annotations

import re

from chatbot.evaluation.claims import sentences

_EN = (
    r"(do|does|did)(n'?t| not) (provide|mention|contain|specify|state|say|include|give|offer|indicate|discuss|"
    r"address|describe|list|name|reveal|tell)",
    r"(is|are|was|were)(n'?t| not) (provided|mentioned|specified|stated|given|included|available|found|"
    r"discussed|addressed|described|listed|named|disclosed|clear|known)",
    r"\bno (information|mention|details?|data|answer|specific information|relevant information)\b",
    r"\b(not enough|insufficient|no relevant) (information|context|details)\b",
    r"\bi (don'?t|do not) know\b",
    r"\b(cannot|can'?t|can not|unable to|could not|couldn'?t) (be )?(answer|find|determine|determined|provide|say|"
    r"tell|locate|identify)",
    r"\bnot possible to (answer|determine|say)\b",
    r"\bthere is no (information|mention|indication|data|record)\b",
    r"\bnone of the (provided |given )?(sources|documents|passages|context)\b",
    r"\b(beyond|outside) (the scope of )?(the )?(provided )?(context|sources|documents)\b",
    r"^(i'?m|i am) sorry\b",
    r"^empty response$",
    r"^unknown\.?$",
)
_ZH = (
    r"(没有|未|并未|并没有)(提及|提到|提供|说明|给出|包含|涉及|列出|披露|明确|记载|找到|相关)",
    r"(无法|不能|难以)(回答|确定|得知|判断|找到|提供)",
    r"不知道|不清楚|无从得知|无相关信息|暂无(相关)?信息|未能找到|不包含",
    r"(文件|资料|文档|上下文|原文|材料|来源)中?(没有|未|并未)",
)
_PATTERN = re.compile("|".join(f"(?:{p})" for p in _EN + _ZH), re.IGNORECASE)


def is_refusal_sentence(sentence: str) -> bool:
    return bool(_PATTERN.search(sentence.strip()))


def is_refusal(answer: str) -> bool:
    """An empty answer, or one whose first sentence (or every sentence) says the sources do not answer.
    A caveat after an answer ("… [1]. The documents do not give a date.") is not a refusal."""
    parts = sentences(answer)
    if not parts:
        return True
    if is_refusal_sentence(parts[0].text):
        return True
    return all(is_refusal_sentence(p.text) for p in parts)
