"""Which model rewrites of a follow-up may replace the user's words (English and Chinese grammar only)."""

import pytest

from chatbot.followup import is_question, usable_rewrite


@pytest.mark.parametrize("text", [
    "What direction is it focusing on for end-side products?",
    "Which new routes has Bluewater Transit opened",  # no question mark, but a question word first
    "Does the club meet on Tuesdays?",
    "东港物流园有多少座仓库？",
    "它是哪家公司设计的",
    "这个战略提出了吗",
])
def test_questions_are_recognised(text):
    assert is_question(text)


@pytest.mark.parametrize("text", [
    "Shanghai Electric is focusing on end-side products.",
    "Kestrel Airlines builds the aircraft.",
    "青川水电站的大坝是青川能源公司设计的。",
])
def test_statements_are_not_questions(text):
    assert not is_question(text)


def test_a_rewrite_that_resolves_the_reference_is_used():
    assert usable_rewrite("Which new routes has Bluewater Transit opened?", "Which new routes has it opened?")
    assert usable_rewrite("东方物流集团有多少员工？", "他们有多少员工？")


def test_a_statement_in_place_of_a_question_is_not_used():
    assert not usable_rewrite("Shanghai Electric is focusing on end-side products.",
                              "What direction is it focusing on for end-side products?")
    assert not usable_rewrite("东港物流园的运营方计划在2026年前建成。", "它计划在哪一年前建成？")


def test_a_request_may_stay_a_request():
    assert usable_rewrite("Tell me more about Acme Robotics.", "Tell me more about them.")


def test_an_answer_or_another_language_is_not_used():
    assert not usable_rewrite("", "When was it founded?")
    assert not usable_rewrite("How many employees does it have?", "他们有多少员工？")
    assert not usable_rewrite("Acme Robotics was founded in 1999 " * 20 + "?", "When was it founded?")
