"""The served process: one FastAPI app with the HTTP API, health checks and the Gradio chat mounted at /."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatbot.config import Settings
from chatbot.errors import ChatbotError
from chatbot.state import AppState

log = logging.getLogger(__name__)

WORKER_HEADER = "X-Chatbot-Worker"  # the id of the process that served a response (several workers: which one)


def _offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files served from the installed swagger-ui-bundle package, not from a CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} – API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def create_app(settings: Settings | None = None, *, state: AppState | None = None, ui: bool = True) -> FastAPI:
    """The FastAPI app. Routes are added before the chat is mounted at "/", which takes every other path."""
    settings = settings or (state.settings if state else Settings())
    state = state or AppState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start_loading()
        async with mcp_lifespan():
            yield

    app = FastAPI(title=f"{settings.title['en']} Q&A", version="1.0",
                  description="Cited answers from the indexed documents, offline.", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.chat = state
    _offline_docs(app)

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict:
        return {"status": "ok", "uptime_s": round(time.time() - state.started_at, 1), "worker": os.getpid()}

    @app.get("/readyz", tags=["health"], summary="Models and index are loaded and questions can be answered",
             responses={503: {"description": "Still loading, or loading failed (see `message`)"}})
    def readyz() -> JSONResponse:
        if state.ready:
            service = state.service
            return JSONResponse({"status": "ready", "documents": len(service.retriever.documents),
                                 "llm": service.model_name, "generating": service.gate.active,
                                 "waiting": service.gate.waiting, "worker": os.getpid()})
        if state.load_error is not None:
            return JSONResponse({"status": "failed", "code": state.load_error.code,
                                 "message": str(state.load_error), "worker": os.getpid()}, status_code=503)
        return JSONResponse({"status": "loading", "message": "Loading the index and models.", "worker": os.getpid()},
                            status_code=503, headers={"Retry-After": "5"})

    from chatbot.api import install_api

    install_api(app, state)
    from chatbot.mcp_server import mcp_http_app

    # MCP over streamable HTTP, behind the API's keys (the dependency is called directly: it is a plain function)
    mcp_endpoint, mcp_lifespan = mcp_http_app(state, lambda request: app.state.api.authenticated(request, None))
    app.add_route("/mcp", mcp_endpoint, include_in_schema=False)  # type: ignore[arg-type]  # an ASGI app: served as is
    if ui:
        import gradio as gr

        from chatbot.ui import build_ui

        # No Gradio footer: it follows the browser's language, not the chat's switch; the chat's own footer links
        # the API documentation instead.
        gr.mount_gradio_app(app, build_ui(state), path="/", footer_links=[])
    app.add_middleware(WorkerHeaderMiddleware)
    return app


class WorkerHeaderMiddleware:
    """Adds X-Chatbot-Worker (this process's id) to every response, so an operator running several workers
    can tell which one answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (WORKER_HEADER.lower().encode(), str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_worker(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_worker)


def check_workers(settings: Settings, workers: int) -> list[str]:
    """Refuse several workers where they cannot work; return warnings where they work at a cost.

    The embedded Chroma database is a folder that one process opens (chromadb does not support several
    processes on one persistent folder), so several workers need a Chroma server. A local model is loaded
    by every worker (its memory and CHATBOT_LLM_THREADS cores each), which only pays on a machine with
    cores to spare; a hosted LLM server is shared by all of them."""
    if workers < 1:
        raise ChatbotError(f"--workers {workers}: the number of worker processes is 1 or more.")
    if workers == 1:
        return []
    if settings.chroma_host is None:
        raise ChatbotError(
            f"--workers {workers} needs a Chroma server: the embedded Chroma database ({settings.index_dir}/chroma) "
            "cannot be opened by several processes at once. Start one with `chroma run --path DIR --host 127.0.0.1 "
            "--port 8000`, set CHATBOT_CHROMA_HOST and CHATBOT_CHROMA_PORT and run `chatbot ingest` (README: "
            "\"When one machine is not enough\"), or serve with one worker.")
    warnings = ["With several workers the chat page is not served (its sessions live in one process); these "
                "workers serve the HTTP API. Serve the chat with a one-worker `chatbot serve` beside them."]
    if settings.llm_backend == "local":
        warnings.append(
            f"Each of the {workers} workers loads its own copy of the local model ({settings.llm_model}, "
            f"{settings.llm_threads} threads each); a hosted LLM server (CHATBOT_LLM_BACKEND=hosted) is shared by "
            "all workers instead.")
    return warnings


def configure_logging() -> None:
    """INFO from the chatbot, with the process id (several workers log to one stream); not every HTTP request
    the Chroma and LLM clients make (httpx logs each at INFO, and a worker checks Chroma every few seconds)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


def create_worker_app() -> FastAPI:
    """The app of one of several workers (`chatbot serve --workers N`). uvicorn calls this factory in each worker
    process; the settings come from the CHATBOT_* environment the supervising `chatbot serve` passed on.

    The HTTP API only: Gradio keeps a chat's queue and session in the process that started it, and requests
    spread over workers would lose them."""
    configure_logging()
    app = create_app(Settings(), ui=False)

    @app.get("/", include_in_schema=False)
    def root() -> PlainTextResponse:
        return PlainTextResponse(
            "This server runs several workers and serves the HTTP API only: /docs describes it. The chat page is "
            "served by a one-worker `chatbot serve`.\n")

    return app
