"""The HTTP API for portals: routes call the ChatService and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from chatbot.app import AppState


def install_api(app: FastAPI, state: AppState) -> None:
    """Add the /api/v1 routes (and the OpenAI-compatible /v1 ones) to the app."""


def check_exposure(settings, host: str, *, open_api: bool) -> None:  # noqa: ANN001
    """Refuse to serve beyond this machine with no API key unless the user says the API is open."""
