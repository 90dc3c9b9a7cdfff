"""Refusal detection for systems that answer in text only (the llama-index baseline)."""

import pytest

from chatbot.evaluation.refusal import is_refusal

REFUSALS = [
    "The context does not provide information about the budget.",
    "The provided context doesn't mention a deputy director.",
    "The budget is not mentioned in the provided sources.",
    "This information is not provided in the context.",
    "The sources do not specify when the hub will be completed.",
    "I don't know.",
    "I do not know the answer to that question.",
    "There is no information about the chairman in the given sources.",
    "The documents do not say who the supplier is.",
    "I cannot answer this question based on the provided context.",
    "Unable to find the number of employees in the sources.",
    "None of the sources mention the forum's date.",
    "The answer is not available in the provided context.",
    "The context provided is insufficient: not enough information to answer.",
    "Sorry, I'm unable to determine that from the documents.",
    "I'm sorry, but the passages do not contain that detail.",
    "The number of employees is not specified in the given text.",
    "Empty Response",
    "",
    "文件中没有提到这个信息。",
    "资料中未提及上海电气的投资金额。",
    "根据提供的内容，无法回答这个问题。",
    "上下文中没有相关信息。",
    "原文并未说明具体的上线时间。",
    "我不知道。",
    "文中没有给出具体数字[1]。",
]

ANSWERS = [
    "Eleven municipal SOEs launched the initiative [1].",
    "Shanghai Electric is building computing power bases [1]. The documents do not give their capacity.",
    "It was 11 enterprises, not 20 [1].",
    "共有11家市属国企发布了倡议[1]。",
    "The initiative does not stop at infrastructure: it also covers end-side products [1].",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_usual_refusal_phrasings_are_recognised(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_with_a_caveat_or_a_negation_are_not_refusals(text):
    assert not is_refusal(text)
