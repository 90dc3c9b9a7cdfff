"""The project's SQLite database (embedded, WAL): answer feedback, and the API keys table's home."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from chatbot.errors import ChatbotError
from chatbot.schemas import Answer

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    standalone_question TEXT,
    answer TEXT NOT NULL,
    refused INTEGER NOT NULL,
    language TEXT NOT NULL,
    citations TEXT NOT NULL,
    settings TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'chat'
);
"""


class Feedback(BaseModel):
    id: int
    created_at: str
    rating: Literal[-1, 1]
    comment: str = ""
    question: str
    standalone_question: str | None = None
    answer: str
    refused: bool
    language: str
    citations: list[dict[str, Any]] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    source: str = "chat"


class Database:
    """One SQLite file; a short connection per operation, so any thread (Gradio's, uvicorn's) may use it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ChatbotError(f"Cannot open the database {self.path}: {exc}. Check CHATBOT_DB_PATH.") from exc

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=10.0)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA synchronous=NORMAL")
            with con:  # one transaction: committed on success, rolled back on error
                yield con
        finally:
            con.close()

    def add_feedback(self, answer: Answer, rating: int, comment: str = "", *, settings: dict[str, Any] | None = None,
                     source: str = "chat") -> int:
        if rating not in (-1, 1):
            raise ChatbotError("A rating is 1 (helpful) or -1 (not helpful).")
        row = (
            dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), rating, comment.strip()[:4000],
            answer.question, answer.standalone_question, answer.answer, int(answer.refused), answer.language,
            json.dumps([c.model_dump() for c in answer.citations], ensure_ascii=False),
            json.dumps(settings or {}, ensure_ascii=False, default=str), source,
        )
        with self._lock, self.connect() as con:
            cur = con.execute(
                "INSERT INTO feedback (created_at, rating, comment, question, standalone_question, answer, refused,"
                " language, citations, settings, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
            return int(cur.lastrowid or 0)

    def update_comment(self, feedback_id: int, comment: str) -> None:
        with self._lock, self.connect() as con:
            con.execute("UPDATE feedback SET comment = ? WHERE id = ?", (comment.strip()[:4000], feedback_id))

    def feedback(self) -> list[Feedback]:
        with self.connect() as con:
            rows = con.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        return [Feedback(**{**dict(r), "refused": bool(r["refused"]), "citations": json.loads(r["citations"]),
                            "settings": json.loads(r["settings"])}) for r in rows]

    def export_feedback(self, fmt: Literal["csv", "jsonl"] = "jsonl") -> str:
        items = self.feedback()
        if fmt == "jsonl":
            return "".join(item.model_dump_json() + "\n" for item in items)
        out = io.StringIO()
        fields = list(Feedback.model_fields)
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        for item in items:
            row = item.model_dump()
            row["citations"] = json.dumps(row["citations"], ensure_ascii=False)
            row["settings"] = json.dumps(row["settings"], ensure_ascii=False)
            writer.writerow(row)
        return out.getvalue()
