"""Prompt templates, loaded from the files in chatbot/prompts/."""

from __future__ import annotations

import json
import re
from functools import cache
from collections.abc import Sequence
from pathlib import Path

PROMPT_DIR = Path(__file__).parent / "prompts"

REFUSAL = {
    "en": "The documents don't contain the answer to this question.",
    "zh": "文件中没有包含这个问题的答案。",
}


@cache
def read(name: str) -> str:
    return (PROMPT_DIR / name).read_text(encoding="utf-8").strip()


def answer_prefix() -> list[dict[str, str]]:
    """The fixed prefix (system and few-shot turns) that every answer prompt starts with."""
    messages = [{"role": "system", "content": read("system.txt")}]
    for example in json.loads(read("examples.json")):
        messages.append({"role": "user", "content": example["user"]})
        messages.append({"role": "assistant", "content": example["assistant"]})
    return messages


def answer_messages(sources: Sequence[str], question: str,
                    premises: Sequence[tuple[str, str]] = ()) -> list[dict[str, str]]:
    """The fixed prefix first (llama.cpp reuses it), then this question's sources. `premises` are (asked,
    stated) pairs: a number the question assumes and the one the sources state about the same thing."""
    numbered = "\n".join(f"[{i}] {text}" for i, text in enumerate(sources, 1))
    note = "".join("\n" + read("premise_note.txt").format(asked=asked, stated=stated) for asked, stated in premises)
    return [*answer_prefix(),
            {"role": "user", "content": read("user.txt").format(sources=numbered, question=question, note=note)}]


def translate_answer_messages(answer: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": read("translate_answer_system.txt")}]
    for example in json.loads(read("translate_answer_examples.json")):
        messages.append({"role": "user", "content": example["user"]})
        messages.append({"role": "assistant", "content": example["assistant"]})
    messages.append({"role": "user", "content": answer})
    return messages


def translate_question_messages(question: str, language: str | None = None) -> list[dict[str, str]]:
    """A question in the other language, to search documents written in that language: a Chinese question
    (`language` "zh", detected when not given) into English, any other into Chinese. One direction per prompt:
    with both directions' examples in one prompt the 1.5B model copied Chinese questions back unchanged (0 of
    21 Chinese dev and second-corpus questions translated; 21 of 21 with the Chinese-to-English prompt)."""
    from chatbot.corpus import detect_language

    direction = json.loads(read("translate_question.json"))["zh" if (language or detect_language(question)) == "zh"
                                                              else "en"]
    messages = [{"role": "system", "content": direction["system"]}]
    for example in direction["examples"]:
        messages.append({"role": "user", "content": example["user"]})
        messages.append({"role": "assistant", "content": example["assistant"]})
    messages.append({"role": "user", "content": question})
    return messages


def premise_correction(language: str, asked: str, stated: str, quote: str) -> str:
    templates = json.loads(read("premise_correction.json"))
    return templates.get(language, templates["en"]).format(asked=asked, stated=stated, quote=quote)


def extractive_notice(language: str, *, cut_off: bool = False) -> str:
    """Why an answer quotes the documents instead of saying it in its own words: the LLM did not answer, or
    (`cut_off`) it stopped in the middle of an answer the user saw begin as a draft."""
    templates = json.loads(read("extractive.json"))
    return templates.get(language, templates["en"])["cut_off_notice" if cut_off else "notice"]


def extractive_answer(language: str, quotes: Sequence[str]) -> str:
    """The documents' own sentences, one a line, quoted and cited [1], [2] … in order, after a line saying (in
    the question's language) that these are quotes."""
    templates = json.loads(read("extractive.json"))
    lead = templates.get(language, templates["en"])["lead"]
    gap = "" if language == "zh" else " "
    lines = [f"“{_one_line(q)}”{gap}[{n}]" for n, q in enumerate(quotes, 1)]
    return "\n".join([lead, *lines])


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def rewrite_messages(history: Sequence[tuple[str, str]], question: str) -> list[dict[str, str]]:
    """Turn a follow-up into a standalone question: fixed instructions and examples, then the conversation."""
    messages = [{"role": "system", "content": read("rewrite_system.txt")}]
    for example in json.loads(read("rewrite_examples.json")):
        messages.append({"role": "user", "content": example["user"]})
        messages.append({"role": "assistant", "content": example["assistant"]})
    lines = "\n".join(f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in history)
    messages.append({"role": "user", "content": f"Conversation:\n{lines}\n\nLast question: {question}"})
    return messages
