"""The embeddable chat widget: GET /widget.js (and the stylesheet it loads), served by the app, public."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from chatbot.config import DEFAULTS

STATIC = Path(__file__).resolve().parent / "static"

EMBED = ('<script src="http://SERVER:7860/widget.js" data-server="http://SERVER:7860" data-key="cbk_…" '
         'data-title="Ask the AI+ documents"></script>')


def widget_script(titles: Mapping[str, str]) -> str:
    """widget.js with its header title per language (settings.widget_title) in place of the packaged ones."""
    script = (STATIC / "widget.js").read_text(encoding="utf-8")
    for lang, packaged in DEFAULTS.widget_title.items():
        title = titles.get(lang) or titles["en"]
        script = script.replace(f"title: {json.dumps(packaged, ensure_ascii=False)},",
                                f"title: {json.dumps(title, ensure_ascii=False)},", 1)
    return script


def widget_router(titles: Mapping[str, str] = DEFAULTS.widget_title) -> APIRouter:
    """The widget's routes; `titles`: its header per language (settings.widget_title; a page's data-title wins)."""
    router = APIRouter(tags=["widget"])
    # The packaged titles: the file as it is on disk; others: the script with them written in, built once.
    configured = None if dict(titles) == DEFAULTS.widget_title else widget_script(titles)

    @router.get("/widget.js", response_class=FileResponse, summary="The chat widget for portal pages",
                description=f"Add one tag to a page: `{EMBED}`. Attributes: `data-server` (default: where the "
                            "script came from), `data-key` (an API key, when keys are in use), `data-title`, "
                            "`data-lang` (`en`/`zh`: the widget's own labels), `data-open` (`true`: start "
                            "open). The page's origin must be in the server's `cors_origins` when it differs "
                            "from the server's.",
                responses={200: {"content": {"application/javascript": {"schema": {"type": "string"}}}}})
    def widget_js() -> Response:
        if configured is not None:
            return Response(configured, media_type="application/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})
        return FileResponse(STATIC / "widget.js", media_type="application/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    @router.get("/widget.css", response_class=FileResponse, summary="The widget's stylesheet (widget.js loads it)",
                responses={200: {"content": {"text/css": {"schema": {"type": "string"}}}}})
    def widget_css() -> FileResponse:
        return FileResponse(STATIC / "widget.css", media_type="text/css; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    return router
