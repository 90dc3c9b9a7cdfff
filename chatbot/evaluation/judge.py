"""Optional metrics judged by an LLM (correctness, faithfulness). Always labelled as judged by the LLM and never
used by the gate: a small local model grading answers is a rough second opinion, not a measurement."""

from __future__ import annotations

from chatbot import prompts
from chatbot.evaluation.models import Judged, QuestionRecord
from chatbot.llm import LLM


def _yes(llm: LLM, prompt: str) -> bool:
    reply = "".join(llm.stream([{"role": "user", "content": prompt}], max_tokens=3))
    return reply.strip().upper().startswith("YES")


def judge_run(llm: LLM, records: list[QuestionRecord], system: str) -> Judged:
    correct, faithful, n_faithful, n = 0, 0, 0, 0
    for q in records:
        row = q.results.get(system)
        if row is None:
            continue
        n += 1
        expected = "; ".join(" / ".join(alts[:2]) for alts in q.expected) or "(none: not answerable)"
        correct += _yes(llm, prompts.read("judge_correctness.txt").format(
            question=q.question, expected=expected, answer=row.answer))
        if row.citations and not row.refused:
            sources = "\n".join(f"[{c.n}] {c.text}" for c in row.citations)
            faithful += _yes(llm, prompts.read("judge_faithfulness.txt").format(sources=sources, answer=row.answer))
            n_faithful += 1
    return Judged(
        correctness=round(correct / n, 4) if n else None,
        faithfulness=round(faithful / n_faithful, 4) if n_faithful else None,
        note=f"judged by the LLM ({llm.name}), not measured; never used by the gate",
    )
