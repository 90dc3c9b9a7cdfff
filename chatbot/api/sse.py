"""The service's blocking event stream, consumed from the event loop: each step in a worker thread, and the
generator closed whatever ends the response (done, error, client gone), which releases the model."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import TypeVar

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent

from chatbot.gate import abandon_when

log = logging.getLogger(__name__)

T = TypeVar("T")
PING_S = 10  # a comment line this often keeps proxies from closing a stream while the question waits its turn

_DONE = object()


def _next(iterator: Iterator[T]) -> object:
    try:
        return next(iterator)
    except StopIteration:
        return _DONE


async def iterate_closing(iterator: Iterator[T]) -> AsyncGenerator[T, None]:
    """Yield the items of a blocking generator without blocking the event loop, and always close it.

    Starlette's iterate_in_threadpool does not close the generator when the response is cancelled (a client
    that disconnects), so the service's `finally` (the GenerationGate release) would wait for garbage
    collection. A worker thread cannot be interrupted, so a cancelled step is left to finish in its thread: a
    generation step returns with the next token (milliseconds), and a question still waiting in the gate's line
    leaves it within GONE_POLL_S (abandon_when), instead of keeping its place until its turn. Then the generator
    is closed in a thread, shielded."""
    gone = threading.Event()
    running = threading.Lock()  # held while a step runs: the generator is closed only after it

    def step() -> object:
        with running, abandon_when(gone.is_set):
            return _next(iterator)

    try:
        while True:
            item = await anyio.to_thread.run_sync(step, abandon_on_cancel=True)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        gone.set()
        close = getattr(iterator, "close", None)
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(_close_after, running, close)
            except Exception:  # noqa: BLE001 - closing must not hide why the stream ended
                log.exception("closing the answer stream failed")


def _close_after(running: threading.Lock, close: Callable[[], object] | None) -> None:
    with running:
        if close is not None:
            close()


def event_source(events: AsyncGenerator[ServerSentEvent, None]) -> EventSourceResponse:
    """An SSE response (CRLF line ends, a ping comment every PING_S seconds). `events` is closed however the
    response ends, so the generators inside it (and the service stream) are closed too."""

    async def body() -> AsyncIterator[ServerSentEvent]:
        async with aclosing(events):
            async for event in events:
                yield event

    return EventSourceResponse(body(), ping=PING_S, headers={"Cache-Control": "no-cache"})
