"""The gold set: loading, filtering and validating eval items against the corpus."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chatbot.corpus import load_corpus
from chatbot.evaluation.metrics import KINDS, LANGUAGES, Span

REQUIRED = ("id", "question", "language", "kind", "answers", "evidence")


@dataclass
class GoldItem:
    raw: dict
    spans: list[Span]

    @property
    def id(self) -> str:
        return self.raw["id"]


def read_items(path: Path) -> list[dict]:
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
    return items


def validate(items: list[dict], corpus_dir: Path) -> list[str]:
    """Every problem found: missing fields, duplicate ids, unknown kinds/languages, quotes not in the corpus."""
    docs = {d.doc_id: d.text for d in load_corpus(corpus_dir).documents}
    problems: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(items, 1):
        where = f"item {i} ({item.get('id', '?')})"
        missing = [f for f in REQUIRED if f not in item]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        if item["id"] in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(item["id"])
        if item["kind"] not in KINDS:
            problems.append(f"{where}: unknown kind {item['kind']!r}")
        if item["language"] not in LANGUAGES:
            problems.append(f"{where}: unknown language {item['language']!r}")
        if item["kind"] == "unanswerable" and (item["answers"] or item["evidence"]):
            problems.append(f"{where}: unanswerable items have no answers or evidence")
        if item["kind"] != "unanswerable" and not (item["answers"] and item["evidence"]):
            problems.append(f"{where}: answerable items need answers and evidence")
        if not all(isinstance(a, list) and a and all(isinstance(f, str) and f for f in a) for a in item["answers"]):
            problems.append(f"{where}: each answer must be a non-empty list of alternative strings")
        doc_id = item.get("doc_id")
        for quote in item["evidence"]:
            texts = [docs[doc_id]] if doc_id in docs else list(docs.values())
            if not any(quote in t for t in texts):
                problems.append(f"{where}: evidence not found in the corpus: {quote[:60]!r}")
    return problems


def load_gold(path: Path, corpus_dir: Path) -> list[GoldItem]:
    items = read_items(path)
    problems = validate(items, corpus_dir)
    if problems:
        raise ValueError("The gold set has problems:\n" + "\n".join(problems))
    docs = {d.doc_id: d.text for d in load_corpus(corpus_dir).documents}
    out = []
    for item in items:
        spans = []
        for quote in item["evidence"]:
            for doc_id, text in docs.items():
                if item.get("doc_id") not in (None, doc_id):
                    continue
                start = text.find(quote)
                if start >= 0:
                    spans.append(Span(doc_id, start, start + len(quote)))
                    break
        out.append(GoldItem(item, spans))
    return out
