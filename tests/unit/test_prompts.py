"""Prompt builders: which instructions and examples the model gets."""

from chatbot import prompts
from chatbot.text import CJK


def _chinese(text: str) -> bool:
    return bool(CJK.search(text))


def test_a_chinese_question_is_translated_into_english_with_only_chinese_to_english_examples():
    messages = prompts.translate_question_messages("这项倡议是由谁发起的？")
    assert "into English" in messages[0]["content"]
    turns = messages[1:-1]
    assert turns and all(_chinese(t["content"]) for t in turns if t["role"] == "user")
    assert all(not _chinese(t["content"]) for t in turns if t["role"] == "assistant")
    assert messages[-1] == {"role": "user", "content": "这项倡议是由谁发起的？"}


def test_an_english_question_is_translated_into_chinese_with_only_english_to_chinese_examples():
    messages = prompts.translate_question_messages("Who launched the initiative?")
    assert "into Simplified Chinese" in messages[0]["content"]
    turns = messages[1:-1]
    assert turns and all(not _chinese(t["content"]) for t in turns if t["role"] == "user")
    assert all(_chinese(t["content"]) for t in turns if t["role"] == "assistant")


def test_the_direction_can_be_given_so_a_warm_up_text_evaluates_the_chinese_prompt():
    assert prompts.translate_question_messages("(warm-up)", "zh")[:-1] == \
        prompts.translate_question_messages("上汽集团如何使用大模型？")[:-1]
