"""The service's blocking event stream, consumed from the event loop: each step in a worker thread, and the
generator closed whatever ends the response (done, error, client gone), which releases the model."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from typing import TypeVar

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent

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
    collection. A worker thread cannot be interrupted: cancellation takes effect when the current step
    returns (the next token, milliseconds), then the generator is closed in a thread, shielded."""
    try:
        while True:
            item = await anyio.to_thread.run_sync(_next, iterator)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(close)
                except Exception:  # noqa: BLE001 - closing must not hide why the stream ended
                    log.exception("closing the answer stream failed")


def event_source(events: AsyncGenerator[ServerSentEvent, None]) -> EventSourceResponse:
    """An SSE response (CRLF line ends, a ping comment every PING_S seconds). `events` is closed however the
    response ends, so the generators inside it (and the service stream) are closed too."""

    async def body() -> AsyncIterator[ServerSentEvent]:
        async with aclosing(events):
            async for event in events:
                yield event

    return EventSourceResponse(body(), ping=PING_S, headers={"Cache-Control": "no-cache"})
