"""The served process: one FastAPI app with the HTTP API, health checks and the Gradio chat mounted at /."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from chatbot.config import Settings
from chatbot.db import Database
from chatbot.errors import ChatbotError, NotReady

if TYPE_CHECKING:
    from chatbot.service import ChatService

log = logging.getLogger(__name__)


class AppState:
    """What every adapter of the served process shares: the settings, the database and the one ChatService,
    which loads in the background so /healthz answers (and the page shows "loading") from the first second."""

    def __init__(self, settings: Settings, service: ChatService | None = None, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_path)
        self._service = service
        self.load_error: ChatbotError | None = None
        self.started_at = time.time()
        self.ready_at: float | None = time.time() if service is not None else None
        self._loading: threading.Thread | None = None

    def start_loading(self, warmup: bool = True) -> None:
        if self._service is not None or self._loading is not None:
            return
        self._loading = threading.Thread(target=self._load, args=(warmup,), name="load-service", daemon=True)
        self._loading.start()

    def _load(self, warmup: bool) -> None:
        from chatbot.service import ChatService

        try:
            service = ChatService.from_settings(self.settings)
            if warmup:
                service.warmup()
            self._service = service
            self.ready_at = time.time()
            log.info("ready in %.1f s", self.ready_at - self.started_at)
        except ChatbotError as exc:
            self.load_error = exc
            log.error("cannot start answering: %s", exc)
        except Exception as exc:  # noqa: BLE001 - reported on /readyz and in the chat, traced in the log
            log.exception("loading the service failed")
            self.load_error = ChatbotError(f"The models could not be loaded ({type(exc).__name__}: {exc}).")

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._service is None and self.load_error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return self._service is not None

    @property
    def ready(self) -> bool:
        return self._service is not None

    @property
    def service(self) -> ChatService:
        """The service, or a clear error while it loads or when it could not load."""
        if self._service is not None:
            return self._service
        if self.load_error is not None:
            raise self.load_error
        raise NotReady("The chatbot is still loading its models; try again in a few seconds.")


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
        yield

    app = FastAPI(title="Shanghai SOE AI+ Initiative Q&A", version="1.0",
                  description="Cited answers from the indexed documents, offline.", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.chat = state
    _offline_docs(app)

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict:
        return {"status": "ok", "uptime_s": round(time.time() - state.started_at, 1)}

    @app.get("/readyz", tags=["health"], summary="Models and index are loaded and questions can be answered",
             responses={503: {"description": "Still loading, or loading failed (see `message`)"}})
    def readyz() -> JSONResponse:
        if state.ready:
            service = state.service
            return JSONResponse({"status": "ready", "documents": len(service.retriever.documents),
                                 "llm": getattr(service.llm, "name", ""), "generating": service.gate.active,
                                 "waiting": service.gate.waiting})
        if state.load_error is not None:
            return JSONResponse({"status": "failed", "code": state.load_error.code,
                                 "message": str(state.load_error)}, status_code=503)
        return JSONResponse({"status": "loading", "message": "Loading the index and models."}, status_code=503,
                            headers={"Retry-After": "5"})

    from chatbot.api import install_api

    install_api(app, state)
    if ui:
        import gradio as gr

        from chatbot.ui import build_ui

        gr.mount_gradio_app(app, build_ui(state), path="/")
    return app
