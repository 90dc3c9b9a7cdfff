"""Prometheus metrics of the served process (prometheus_client, one registry per app): requests, latency,
answer stages, errors and the generation queue."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatbot.schemas import Answer

if TYPE_CHECKING:
    from chatbot.state import AppState

OWN_PATHS = ("/api/", "/v1/", "/metrics", "/healthz", "/readyz", "/widget.")
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


class ApiMetrics:
    def __init__(self, state: AppState) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("chatbot_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("chatbot_http_request_duration_seconds",
                                 "Time from request to the end of the response (a stream: its last event)",
                                 ["method", "route"], buckets=SECONDS, registry=r)
        self.stages = Histogram("chatbot_answer_stage_seconds",
                                "Answer time per stage (rewrite, retrieve, first_token, generate, verify, "
                                "translate_answer, total) of API answers", ["stage"], buckets=SECONDS, registry=r)
        self.answers = Counter("chatbot_answers", "API answers by outcome", ["outcome"], registry=r)
        self.errors = Counter("chatbot_errors", "Errors returned by the API, by code", ["code"], registry=r)
        waiting = Gauge("chatbot_queue_waiting", "Questions waiting for the model", registry=r)
        waiting.set_function(lambda: float(state.service.gate.waiting) if state.ready else 0.0)
        active = Gauge("chatbot_generations_active", "Generations holding the model now", registry=r)
        active.set_function(lambda: float(state.service.gate.active) if state.ready else 0.0)
        ready = Gauge("chatbot_ready", "1 once the models are loaded", registry=r)
        ready.set_function(lambda: 1.0 if state.ready else 0.0)

    def observe_answer(self, answer: Answer) -> None:
        outcome = "refused" if answer.refused else "extractive" if answer.mode == "extractive" else "answered"
        self.answers.labels(outcome).inc()
        for stage, ms in answer.timings_ms.items():
            self.stages.labels(stage).observe(ms / 1000.0)

    def count_error(self, code: str) -> None:
        self.errors.labels(code).inc()


class MetricsMiddleware:
    """Counts every request and its duration, labelled by route template (the chat UI's paths as `ui`)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            if not scope["path"].startswith(OWN_PATHS):
                label = "ui"
            elif isinstance(path, str) and path:
                label = path
            else:
                label = "unmatched"
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            self.metrics.latency.labels(scope["method"], label).observe(time.perf_counter() - started)
