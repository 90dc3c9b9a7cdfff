"""API keys: created once and shown once, stored only as SHA-256 hashes in the project's SQLite database."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time

from pydantic import BaseModel

from chatbot.db import Database
from chatbot.errors import ChatbotError

KEY_PREFIX = "cbk_"
SHOWN_CHARS = 12  # the part of a key kept in clear, so a listing can tell keys apart
LAST_USED_EVERY_S = 60.0  # last_used_at is written at most this often per key (a write per request would not scale)

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    last_used_at TEXT,
    rate_limit INTEGER
);
"""


class ApiKey(BaseModel):
    """A key as listed: never the key itself, only its first characters."""

    id: int
    name: str
    prefix: str
    created_at: str
    revoked_at: str | None = None
    last_used_at: str | None = None
    rate_limit: int | None = None  # requests per minute for this key; None: the server's rate_limit_per_minute

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyNotFound(ChatbotError):
    status_code = 404
    code = "key_not_found"

    def __init__(self, ref: str) -> None:
        super().__init__(f"No API key matches {ref!r}. `chatbot keys list` shows the ids and prefixes.")


def hash_key(key: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 cannot be brute-forced; a slow password hash is not needed.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class KeyStore:
    """The api_keys table of a Database. Every check reads the table, so a key created or revoked by the CLI
    (another process) counts from the next request on."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.connect() as con:
            con.executescript(SCHEMA)
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()

    def create(self, name: str = "", *, rate_limit: int | None = None) -> tuple[ApiKey, str]:
        """A new key: returns its record and the key itself, which is not stored and cannot be shown again."""
        if rate_limit is not None and rate_limit < 0:
            raise ChatbotError("A key's rate limit is a number of requests per minute (0: no limit).")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        name = name.strip()[:100]
        with self.db.connect() as con:
            cur = con.execute(
                "INSERT INTO api_keys (name, prefix, key_hash, created_at, rate_limit) VALUES (?, ?, ?, ?, ?)",
                (name, key[:SHOWN_CHARS], hash_key(key), _now(), rate_limit))
            row = con.execute("SELECT * FROM api_keys WHERE id = ?", (cur.lastrowid,)).fetchone()
        return ApiKey(**dict(row)), key

    def list(self) -> list[ApiKey]:
        with self.db.connect() as con:
            rows = con.execute("SELECT * FROM api_keys ORDER BY id").fetchall()
        return [ApiKey(**dict(r)) for r in rows]

    def revoke(self, ref: str) -> ApiKey:
        """Revoke by id, name, shown prefix or the whole key (which must match exactly one active key)."""
        every = self.list()
        ref = ref.strip()
        if ref.startswith(KEY_PREFIX) and len(ref) > SHOWN_CHARS:  # the whole key
            digest = hash_key(ref)
            with self.db.connect() as con:
                row = con.execute("SELECT id FROM api_keys WHERE key_hash = ?", (digest,)).fetchone()
            ref = str(row["id"]) if row else ref
        by_prefix = ref.startswith(KEY_PREFIX) and len(ref) > len(KEY_PREFIX)
        matches = [k for k in every if str(k.id) == ref] or [k for k in every if ref and k.name == ref] \
            or [k for k in every if by_prefix and (k.prefix.startswith(ref) or ref.startswith(k.prefix))]
        active = [k for k in matches if k.active]
        if not active:
            if matches:
                raise ChatbotError(f"API key {matches[0].id} ({matches[0].prefix}…) is already revoked.")
            raise KeyNotFound(ref)
        if len(active) > 1:
            ids = ", ".join(str(k.id) for k in active)
            raise ChatbotError(f"{ref!r} matches several active keys (ids {ids}); revoke one by its id.")
        key = active[0]
        revoked_at = _now()
        with self.db.connect() as con:
            con.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (revoked_at, key.id))
        return key.model_copy(update={"revoked_at": revoked_at})

    def any_active(self) -> bool:
        with self.db.connect() as con:
            return con.execute("SELECT EXISTS(SELECT 1 FROM api_keys WHERE revoked_at IS NULL)").fetchone()[0] == 1

    def check(self, key: str | None) -> tuple[bool, ApiKey | None]:
        """(keys_required, the active key matching `key`). One read of the table per request."""
        with self.db.connect() as con:
            rows = con.execute("SELECT * FROM api_keys WHERE revoked_at IS NULL").fetchall()
        if not rows:
            return False, None
        if not key:
            return True, None
        digest = hash_key(key)
        match = None
        for row in rows:  # compare every hash in constant time, so timing does not tell how much matched
            if hmac.compare_digest(row["key_hash"], digest):
                match = ApiKey(**dict(row))
        if match is not None:
            self._touch(match.id)
        return True, match

    def find(self, key: str) -> ApiKey | None:
        """The record of `key`, active or revoked."""
        with self.db.connect() as con:
            row = con.execute("SELECT * FROM api_keys WHERE key_hash = ?", (hash_key(key),)).fetchone()
        return ApiKey(**dict(row)) if row else None

    def _touch(self, key_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(key_id, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
                return
            self._touched[key_id] = now
        with self.db.connect() as con:
            con.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (_now(), key_id))
