"""AppState: what every adapter of the served process shares (settings, database, the one ChatService)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

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
