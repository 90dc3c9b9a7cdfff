"""The HTTP API for portals: routes call the ChatService and nothing else.

Modules: routes (/api/v1), openai_compat (/v1), models (bodies), errors (one JSON error shape), keys (hashed
API keys in SQLite), auth (Bearer check and rate limit as dependencies), limits (header and body size,
requests per minute), metrics (Prometheus), sse (the blocking stream on the event loop), widget (/widget.js)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chatbot.api.auth import dependencies
from chatbot.api.errors import (
    ERROR_RESPONSES, MethodNotAllowedMiddleware, install_error_handlers, unmatched_api_router,
)
from chatbot.api.keys import KeyStore
from chatbot.api.limits import BodyLimitMiddleware, HeaderLimitMiddleware, RateLimiter
from chatbot.api.metrics import ApiMetrics, MetricsMiddleware
from chatbot.api.openai_compat import ChatCompletionChunk, openai_router
from chatbot.api.openapi import add_components
from chatbot.api.routes import ApiContext, native_router
from chatbot.api.widget import widget_router
from chatbot.config import Settings
from chatbot.db import Database
from chatbot.errors import ChatbotError
from chatbot.schemas import StreamEvent

if TYPE_CHECKING:
    from chatbot.state import AppState


def install_api(app: FastAPI, state: AppState) -> None:
    """Add the /api/v1 routes, the OpenAI-compatible /v1 ones, /metrics and /widget.js to the app, with the JSON
    error handlers (also for unknown API paths), the header and body limits, the metrics and CORS (outermost, so
    errors carry CORS headers too)."""
    settings = state.settings
    keys = KeyStore(state.db)
    metrics = ApiMetrics(state)
    authenticated, counted = dependencies(keys, RateLimiter(settings.rate_limit_per_minute))
    ctx = ApiContext(state=state, metrics=metrics, counted=counted, authenticated=authenticated)
    app.state.api = ctx
    install_error_handlers(app, count=metrics.count_error)

    api_routers = [native_router(ctx), openai_router(ctx)]
    for router in api_routers:
        app.include_router(router)
    app.include_router(widget_router(state.settings.widget_title))

    ops = APIRouter(tags=["health"], dependencies=[Depends(authenticated)], responses=ERROR_RESPONSES)

    @ops.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(ops)
    app.include_router(unmatched_api_router(*api_routers))  # after every API route, before the UI takes "/"
    add_components(app, {"StreamEvent": StreamEvent, "ChatCompletionChunk": ChatCompletionChunk})

    app.add_middleware(MethodNotAllowedMiddleware, openapi=app.openapi)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeaderLimitMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type"], expose_headers=["Retry-After"],
                       max_age=600)


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str, *, open_api: bool) -> None:
    """Refuse to serve beyond this machine with no API key unless the user says the API is open."""
    if open_api or is_loopback(host):
        return
    if KeyStore(Database(settings.db_path)).any_active():
        return
    raise ChatbotError(
        f"Refusing to serve on {host}: no API key exists, so the HTTP API would answer anyone who can reach this "
        f"address. Create a key first with `chatbot keys create --name <portal>` (then every API request needs "
        f"`Authorization: Bearer <key>`), or pass --open-api to serve the API open on purpose.")
