"""The gold set and the conversations: loading, validating against the corpus, selecting a split or subset.
A bad file is a GoldError with every problem listed, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from chatbot.corpus import load_corpus
from chatbot.errors import ChatbotError
from chatbot.evaluation.models import GoldItem, Span


class GoldError(ChatbotError):
    code = "bad_gold"


def read_items(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GoldError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except UnicodeDecodeError as exc:
        raise GoldError(f"{path} is not UTF-8 text.") from exc
    items = []
    problems = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{lineno}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(item, dict):
            problems.append(f"{path}:{lineno}: each line must be a JSON object")
            continue
        items.append(item)
    if problems:
        raise GoldError("\n".join(problems))
    return items


def _documents(corpus_dir: Path) -> dict[str, str]:
    return {d.doc_id: d.text for d in load_corpus(corpus_dir).documents}


def validate(items: list[dict], corpus_dir: Path, *, conversations: bool = False,
             documents: dict[str, str] | None = None) -> list[str]:
    """Every problem found: fields and their types, duplicate ids, answers/evidence per kind, the false premise,
    conversation turns, and evidence quotes that are not exact substrings of the corpus."""
    docs = documents if documents is not None else _documents(corpus_dir)
    problems: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(items, 1):
        where = f"item {i} ({raw.get('id', '?')})"
        if raw.get("id") in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(raw.get("id", ""))
        evidence = raw.get("evidence")
        if isinstance(evidence, list):
            texts = [docs[raw["doc_id"]]] if raw.get("doc_id") in docs else list(docs.values())
            for quote in evidence:
                if isinstance(quote, str) and not any(quote in t for t in texts):
                    problems.append(f"{where}: evidence not found in the corpus: {quote[:60]!r}")
        try:
            item = GoldItem.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "item"
                problems.append(f"{where}: {loc}: {err['msg']}")
            continue
        if item.kind == "unanswerable" and (item.answers or item.evidence):
            problems.append(f"{where}: unanswerable items have no answers or evidence")
        if item.kind != "unanswerable" and not (item.answers and item.evidence):
            problems.append(f"{where}: answerable items need answers and evidence")
        if not all(alts and all(f.strip() for f in alts) for alts in item.answers):
            problems.append(f"{where}: each answer must be a non-empty list of alternative strings")
        if item.kind == "false_premise" and not item.premise:
            problems.append(f"{where}: false_premise items name the false value(s) in 'premise'")
        if item.kind != "false_premise" and item.premise:
            problems.append(f"{where}: only false_premise items have a 'premise'")
        if conversations and not 1 <= len(item.history) <= 2:
            problems.append(f"{where}: a conversation has one or two earlier questions in 'history'")
        if not conversations and item.history:
            problems.append(f"{where}: single questions have no 'history' (conversations go in their own file)")
        if item.doc_id is not None and item.doc_id not in docs:
            problems.append(f"{where}: unknown doc_id {item.doc_id!r}")
    return problems


def load_gold(path: Path, corpus_dir: Path, *, conversations: bool = False) -> list[GoldItem]:
    docs = _documents(corpus_dir)
    raw = read_items(path)
    problems = validate(raw, corpus_dir, conversations=conversations, documents=docs)
    if problems:
        raise GoldError(f"{path} has problems:\n" + "\n".join(problems))
    out = []
    for entry in raw:
        item = GoldItem.model_validate(entry)
        for quote in item.evidence:
            for doc_id, text in docs.items():
                if item.doc_id not in (None, doc_id):
                    continue
                start = text.find(quote)
                if start >= 0:
                    item.spans.append(Span(doc_id=doc_id, start=start, end=start + len(quote)))
                    break
        out.append(item)
    return out


def read_subset(path: Path, items: list[GoldItem]) -> list[GoldItem]:
    """The items a subset file names (one id a line, # comments), in the file's order."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GoldError(f"Cannot read the subset file {path}: {exc.strerror or exc}.") from exc
    wanted = [w for w in (line.split("#")[0].strip() for line in lines) if w]
    by_id = {i.id: i for i in items}
    unknown = [w for w in wanted if w not in by_id]
    if unknown:
        raise GoldError(f"{path}: ids not in the gold set: {', '.join(unknown)}")
    if len(set(wanted)) != len(wanted):
        raise GoldError(f"{path}: an id is listed twice")
    return [by_id[w] for w in wanted]


def select_split(items: list[GoldItem], split: str) -> list[GoldItem]:
    if split == "all":
        return items
    return [i for i in items if i.split == split]
