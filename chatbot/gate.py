"""GenerationGate: the LLM serves a bounded, first-come-first-served line of generations, a few at a time."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chatbot.errors import Abandoned, Busy

# How often a question waiting in line checks whether its client is still there (see abandon_when).
GONE_POLL_S = 0.2
_thread = threading.local()


@contextmanager
def abandon_when(gone: Callable[[], bool]) -> Iterator[None]:
    """In this thread, until exit: a wait in any gate's line ends with Abandoned as soon as gone() is true (the
    client of an API stream disconnected), so the question leaves the line instead of keeping its place."""
    previous = getattr(_thread, "gone", None)
    _thread.gone = gone
    try:
        yield
    finally:
        _thread.gone = previous


class GenerationGate:
    """At most `slots` generations at once (1 for a llama.cpp context, which must never serve two), the rest
    wait in arrival order; when `max_waiting` are already waiting, a new request is refused with Busy at once
    rather than left hanging. A waiting request whose client goes away leaves the line (abandon_when). The holder releases on exit, including when the consumer of a stream goes away
    (closing a generator runs its `finally`)."""

    def __init__(self, slots: int = 1, max_waiting: int = 8, wait_timeout_s: float = 300.0) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self.wait_timeout_s = wait_timeout_s
        self._cond = threading.Condition()
        self._line: deque[object] = deque()
        self._active = 0
        self._durations: deque[float] = deque(maxlen=20)

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._line)

    def retry_after(self) -> float:
        """Seconds a refused client should wait: the typical generation time times the line ahead of it."""
        typical = sorted(self._durations)[len(self._durations) // 2] if self._durations else 5.0
        return round(max(1.0, typical * (1 + len(self._line)) / self.slots), 1)

    @contextmanager
    def hold(self) -> Iterator[None]:
        ticket = object()
        gone: Callable[[], bool] | None = getattr(_thread, "gone", None)
        with self._cond:
            if self._active >= self.slots and len(self._line) >= self.max_waiting:
                raise Busy(len(self._line), self.retry_after())
            self._line.append(ticket)
            deadline = time.monotonic() + self.wait_timeout_s
            try:
                while self._active >= self.slots or self._line[0] is not ticket:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Busy(len(self._line), self.retry_after())
                    if gone is not None and gone():
                        raise Abandoned("The client went away while its question waited for the model.")
                    self._cond.wait(left if gone is None else min(left, GONE_POLL_S))
            except BaseException:
                self._line.remove(ticket)
                self._cond.notify_all()
                raise
            self._line.popleft()
            self._active += 1
            self._cond.notify_all()
        started = time.monotonic()
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._durations.append(time.monotonic() - started)
                self._cond.notify_all()
