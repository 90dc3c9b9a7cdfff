"""Request limits of the API: header and body size (before anything parses them), requests per key per minute."""

from __future__ import annotations

import threading
import time
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatbot.api.errors import API_PREFIXES, BodyTooLarge, HeadersTooLarge, RateLimited, chatbot_error_response

WINDOW_S = 60.0
# Apache's default field count and nginx's default total (4 buffers of 8 KiB): no real client comes near them.
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024


class HeaderLimitMiddleware:
    """431 for an API request with more than `max_count` headers or more than `max_bytes` of names and values.
    uvicorn's default HTTP parser (httptools) sets no limit of its own and hands any headers to the app."""

    def __init__(self, app: ASGIApp, max_count: int = MAX_HEADERS, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_count = max_count
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
            headers = scope.get("headers", [])
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > self.max_count or size > self.max_bytes:
                error = HeadersTooLarge(len(headers), size, self.max_count, self.max_bytes)
                await chatbot_error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for an API request whose body is larger than `max_bytes`, whether it says so in Content-Length or
    not (chunked, or a Content-Length that lies). The body is read here, bounded, and replayed to the app."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIXES) or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await chatbot_error_response(BodyTooLarge(self.max_bytes))(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        disconnected: Message | None = None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = message
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await chatbot_error_response(BodyTooLarge(self.max_bytes))(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if disconnected is not None:
                    return disconnected
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the client to go away (streams watch for it)

        await self.app(scope, replay, send)


class RateLimiter:
    """At most `per_minute` requests per caller in any 60 s (a sliding window); 0 means no limit. Only
    requests that are let through count."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, caller: str, who: str, limit: int | None = None) -> None:
        """Count one request of `caller`, or raise RateLimited (with the seconds until one is allowed).
        `limit` overrides the default for this caller (a key's own limit)."""
        per_minute = self.per_minute if limit is None else limit
        if per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault(caller, deque())
            while times and times[0] <= now - WINDOW_S:
                times.popleft()
            if len(times) >= per_minute:
                raise RateLimited(per_minute, who, times[0] + WINDOW_S - now)
            times.append(now)
            if len(self._seen) > 10_000:  # forget callers idle for a minute, so memory stays bounded
                for name in [c for c, t in self._seen.items() if not t or t[-1] <= now - WINDOW_S]:
                    del self._seen[name]
