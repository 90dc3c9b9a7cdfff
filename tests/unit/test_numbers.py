"""Number extraction: only quantities count, never citation markers or numerals inside ordinary words."""

import pytest

from chatbot.numbers import extract_quantities
from chatbot.premise import premise_gaps


def values(text: str) -> list[float]:
    return [q.value for q in extract_quantities(text)]


@pytest.mark.parametrize("text", [
    "Shanghai Electric builds computing power bases [1].",
    "He Qing and Cheng Peng launched it [1][2].",
    "It covers operation and safety [1, 3].",
    "上海电气建设智算基地[2]。",
])
def test_citation_markers_are_not_numbers(text):
    assert values(text) == []


def test_numbers_beside_markers_still_count():
    assert values("Eleven enterprises [1] built 49 factories [2].") == [11, 49]
    assert values("十一家企业[1]") == [11]


@pytest.mark.parametrize("text", [
    "国泰君安把人工智能作为“一号工程”。",
    "他们一起发布了倡议。",
    "倡议是在哪一天发布的？",
    "进一步推动国企改革。",
    "统一部署，唯一的平台之一。",
    "第三方算力支持。",
    "打造一个语料平台。",
])
def test_chinese_numerals_inside_ordinary_words_are_not_numbers(text):
    assert values(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("三大先导产业母基金", [3]),
    ("覆盖三条业务线", [3]),
    ("两大战略基础体系", [2]),
    ("十一家市属国企", [11]),
    ("四十九家企业", [49]),
    ("一年带来超过1亿元", [1, 1e8]),
    ("劳动生产率提升三成以上", [30]),
    ("总规模千亿", [1e11]),
])
def test_chinese_quantities_still_count(text, expected):
    assert values(text) == expected


@pytest.mark.parametrize("text", [
    "Why was Cheng Peng the one who talked about the multiplier effect?",
    "He Qing is one of the officials.",
    "No one else spoke at the forum.",
    "Which one launched it?",
])
def test_english_one_as_a_pronoun_is_not_a_number(text):
    assert values(text) == []


def test_english_one_as_a_quantity_counts():
    assert values("Only one enterprise did so.") == [1]
    assert values("one million instructions") == [1e6]


def test_a_question_with_a_pronoun_one_has_no_false_premise():
    # "the one who" used to be read as the number 1, which no passage states: a false premise to "correct".
    assert premise_gaps("Why was Cheng Peng the one who spoke at the forum?", ["He Qing spoke at the forum."]) == []
    assert premise_gaps("哪一天发布的？", ["On July 6th, it was launched."]) == []
