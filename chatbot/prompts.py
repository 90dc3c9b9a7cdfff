"""Prompt templates, loaded from the files in chatbot/prompts/."""

from __future__ import annotations

import json
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


def answer_messages(sources: list[str], question: str, premise_gaps: Sequence[str] = ()) -> list[dict[str, str]]:
    """System and few-shot turns first (a fixed prefix llama.cpp reuses), then this question's sources."""
    messages = [{"role": "system", "content": read("system.txt")}]
    for example in json.loads(read("examples.json")):
        messages.append({"role": "user", "content": example["user"]})
        messages.append({"role": "assistant", "content": example["assistant"]})
    numbered = "\n".join(f"[{i}] {text}" for i, text in enumerate(sources, 1))
    note = "\n" + read("premise_note.txt").format(values=", ".join(premise_gaps)) if premise_gaps else ""
    messages.append({"role": "user", "content": read("user.txt").format(sources=numbered, question=question, note=note)})
    return messages


def translate_answer_messages(answer: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": read("translate_answer_system.txt")}]
    for example in json.loads(read("translate_answer_examples.json")):
        messages.append({"role": "user", "content": example["user"]})
        messages.append({"role": "assistant", "content": example["assistant"]})
    messages.append({"role": "user", "content": answer})
    return messages


def premise_correction(language: str, values: Sequence[str], quote: str) -> str:
    templates = json.loads(read("premise_correction.json"))
    sep = "、" if language == "zh" else ", "
    return templates.get(language, templates["en"]).format(values=sep.join(values), quote=quote)


def rewrite_messages(history: Sequence[tuple[str, str]], question: str) -> list[dict[str, str]]:
    """Turn a follow-up into a standalone question: fixed instructions and examples, then the conversation."""
    messages = [{"role": "system", "content": read("rewrite_system.txt")}]
    for example in json.loads(read("rewrite_examples.json")):
        messages.append({"role": "user", "content": example["user"]})
        messages.append({"role": "assistant", "content": example["assistant"]})
    lines = "\n".join(f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in history)
    messages.append({"role": "user", "content": f"Conversation:\n{lines}\n\nLast question: {question}"})
    return messages
