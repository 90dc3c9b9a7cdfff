"""Deterministic stand-ins for the heavy models, for unit tests only."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from chatbot.errors import LLMUnavailable
from chatbot.keyword import tokenize


class FakeEmbedder:
    """Bag-of-words vectors (hashed, L2-normalised): texts sharing words are close, as with a real model."""

    def __init__(self, name: str, dim: int = 256) -> None:
        self.name = name
        self.dim = dim

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in tokenize(text):
            v[int(hashlib.md5(tok.encode()).hexdigest(), 16) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


class ScriptedLLM:
    """Returns queued replies in order and records the prompts it was given."""

    name = "scripted"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[list[dict[str, str]]] = []

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int) -> Iterator[str]:
        self.prompts.append(messages)
        reply = self.replies.pop(0) if self.replies else "The documents do not say."
        for word in reply.split(" "):
            yield word + " "


class FakeUnreachableLLM(ScriptedLLM):
    """An LLM that never answers: every stream raises LLMUnavailable before its first piece, as HostedLLM does
    once its tries are used up. Records the prompts it was given."""

    name = "unreachable"

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int) -> Iterator[str]:
        self.prompts.append(messages)
        raise LLMUnavailable("Cannot reach the hosted LLM at http://127.0.0.1:9/v1 (3 tries).")
        yield ""  # a generator, as a real stream is


class ScriptedSlowLLM(ScriptedLLM):
    """A ScriptedLLM that writes one word per `delay` seconds, can go on for ever (`endless`) or raise `fail`
    after its first word, and counts the streams closed before their end (their consumer went away)."""

    def __init__(self, *replies: str, delay: float = 0.05, endless: bool = False,
                 fail: Exception | None = None) -> None:
        super().__init__(*replies)
        self.delay = delay
        self.endless = endless
        self.fail = fail
        self.closed_early = 0
        self.finished = 0

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int) -> Iterator[str]:
        self.prompts.append(messages)
        words = (self.replies.pop(0) if self.replies else "The documents do not say.").split(" ")
        done = False
        try:
            i = 0
            while self.endless or i < len(words):
                if self.fail is not None and i == 1:
                    raise self.fail
                time.sleep(self.delay)
                yield words[i % len(words)] + " "
                i += 1
            done = True
        finally:
            if done:
                self.finished += 1
            else:
                self.closed_early += 1


@dataclass
class FakeReply:
    """One scripted reply of FakeOpenAIServer: an HTTP error `status` (with `headers`), or a 200 event stream of
    `tokens`, optionally after `stall` seconds of silence (once the headers are sent), or cut off (`drop`) after
    its tokens without the final `[DONE]`."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    stall: float = 0.0
    drop: bool = False


class FakeOpenAIServer:
    """A tiny OpenAI-compatible /v1/chat/completions on loopback (http.server) that plays scripted replies in
    order (the last one again when they run out) and records each request body. For HostedLLM's retry tests."""

    def __init__(self, *replies: FakeReply) -> None:
        self.replies = list(replies) or [FakeReply(tokens=["Hello."])]
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                server.requests.append(json.loads(body or b"{}"))
                reply = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
                if reply.status != 200:
                    data = json.dumps({"error": {"message": f"scripted {reply.status}", "type": "server_error"}})
                    self.send_response(reply.status)
                    for name, value in {"content-type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data.encode())
                    return
                try:
                    self._stream(reply)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its read timeout)
                    self.close_connection = True

            def _stream(self, reply: FakeReply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                time.sleep(reply.stall)
                for token in reply.tokens:
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                             "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}
                    self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                self.close_connection = True
                if not reply.drop:  # a dropped stream ends without its last chunk: the client sees it cut off
                    self._chunk(b"data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
