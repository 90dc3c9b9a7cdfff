"""The embeddable chat widget: GET /widget.js (and the stylesheet it loads), served by the app, public."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent / "static"

EMBED = ('<script src="http://SERVER:7860/widget.js" data-server="http://SERVER:7860" data-key="cbk_…" '
         'data-title="Ask the AI+ documents"></script>')


def widget_router() -> APIRouter:
    router = APIRouter(tags=["widget"])

    @router.get("/widget.js", response_class=FileResponse, summary="The chat widget for portal pages",
                description=f"Add one tag to a page: `{EMBED}`. Attributes: `data-server` (default: where the "
                            "script came from), `data-key` (an API key, when keys are in use), `data-title`, "
                            "`data-lang` (`en`/`zh`: the widget's own labels), `data-open` (`true`: start "
                            "open). The page's origin must be in the server's `cors_origins` when it differs "
                            "from the server's.",
                responses={200: {"content": {"application/javascript": {"schema": {"type": "string"}}}}})
    def widget_js() -> FileResponse:
        return FileResponse(STATIC / "widget.js", media_type="application/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    @router.get("/widget.css", response_class=FileResponse, summary="The widget's stylesheet (widget.js loads it)",
                responses={200: {"content": {"text/css": {"schema": {"type": "string"}}}}})
    def widget_css() -> FileResponse:
        return FileResponse(STATIC / "widget.css", media_type="text/css; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    return router
