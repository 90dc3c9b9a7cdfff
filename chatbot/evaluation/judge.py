"""Optional LLM-judged metrics (correctness, faithfulness). Labelled as judged; never used by the gate."""

from __future__ import annotations

from chatbot import prompts
from chatbot.llm import LLM


def _yes(llm: LLM, prompt: str) -> bool:
    reply = "".join(llm.stream([{"role": "user", "content": prompt}], max_tokens=3))
    return reply.strip().upper().startswith("YES")


def judge_run(llm: LLM, questions: list[dict], system: str) -> dict:
    correct, faithful, n_faithful = 0, 0, 0
    for q in questions:
        row = q[system]
        expected = "; ".join(" / ".join(alts[:2]) for alts in q["expected"]) or "(none: not answerable)"
        correct += _yes(llm, prompts.read("judge_correctness.txt").format(
            question=q["question"], expected=expected, answer=row["answer"]))
        if row["citations"] and not row["refused"]:
            sources = "\n".join(f"[{c['n']}] {c['text']}" for c in row["citations"])
            faithful += _yes(llm, prompts.read("judge_faithfulness.txt").format(sources=sources, answer=row["answer"]))
            n_faithful += 1
    return {
        "correctness": round(correct / len(questions), 4) if questions else None,
        "faithfulness": round(faithful / n_faithful, 4) if n_faithful else None,
        "note": f"judged by the configured LLM ({getattr(llm, 'name', 'llm')}); not used by the gate",
    }
