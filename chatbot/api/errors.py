"""JSON errors of the API: one shape ({"error": {code, message, status, ...}}) for every failure a client sees."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from chatbot.api.models import ErrorResponse
from chatbot.errors import ChatbotError

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/v1/", "/metrics")

ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
               429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "service_unavailable"}


class Unauthorized(ChatbotError):
    status_code = 401
    code = "invalid_api_key"


class RateLimited(ChatbotError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, limit: int, who: str, retry_after: float) -> None:
        super().__init__(f"Too many requests for {who}: the limit is {limit} per minute. "
                         f"Retry in {math.ceil(retry_after)} s.")
        self.retry_after = retry_after


class BodyTooLarge(ChatbotError):
    status_code = 413
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes. Send a shorter question or history.")


class HeadersTooLarge(ChatbotError):
    status_code = 431
    code = "headers_too_large"

    def __init__(self, count: int, size: int, max_count: int, max_bytes: int) -> None:
        super().__init__(f"The request has {count} headers of {size} bytes in all; the limit is {max_count} headers "
                         f"and {max_bytes} bytes. Send fewer or shorter headers.")


def error_body(status: int, code: str, message: str, *, retry_after: float | None = None,
               details: list[dict[str, Any]] | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status,
                             "type": ERROR_TYPES.get(status, "invalid_request_error"), "param": param}
    if retry_after is not None:
        error["retry_after"] = retry_after
    if details:
        error["details"] = details
    return ErrorResponse.model_validate({"error": error}).model_dump(exclude_none=True)


def error_headers(status: int, retry_after: float | None) -> dict[str, str]:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def error_response(status: int, code: str, message: str, *, retry_after: float | None = None,
                   details: list[dict[str, Any]] | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, retry_after=retry_after, details=details, param=param),
                        status_code=status, headers={**error_headers(status, retry_after), **(headers or {})})


def chatbot_error_response(exc: ChatbotError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, str(exc), retry_after=exc.retry_after,
                          param=getattr(exc, "param", None))


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """One readable sentence for every invalid field, plus the same as a list for programs."""
    details: list[dict[str, Any]] = []
    for err in errors:
        kind = err.get("type", "")
        if kind == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "")
            msg = f"The request body is not valid JSON ({reason})." if reason else "The request body is not valid JSON."
            details.append({"field": "body", "message": msg, "type": kind})
        elif kind == "missing" and tuple(err.get("loc", ())) == ("body",):
            details.append({"field": "body", "message": "A JSON body is required.", "type": kind})
        elif kind in ("model_attributes_type", "dict_type") and tuple(err.get("loc", ())) == ("body",):
            details.append({"field": "body", "type": kind, "message": "The request body must be a JSON object "
                            "(sent with Content-Type: application/json)."})
        elif kind == "extra_forbidden":
            details.append({"field": _field(tuple(err.get("loc", ()))), "type": kind,
                            "message": "unknown field (see /docs for the fields this endpoint takes)"})
        else:
            details.append({"field": _field(tuple(err.get("loc", ()))), "message": str(err.get("msg", "invalid")),
                            "type": kind})
    parts = [d["message"] if d["field"] == "body" else f"{d['field']}: {d['message']}" for d in details]
    return "Invalid request: " + "; ".join(parts) + ("" if parts and parts[-1].endswith(".") else "."), details


def install_error_handlers(app: FastAPI, count: Callable[[str], None] = lambda code: None) -> None:
    """JSON errors for the API; `count` is told each error code (the metrics)."""

    async def on_chatbot_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ChatbotError)
        count(exc.code)
        return chatbot_error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        count("invalid_request")
        message, details = validation_message(list(exc.errors()))
        return error_response(422, "invalid_request", message, details=details)

    async def on_http_error(request: Request, exc: Exception):  # noqa: ANN202
        assert isinstance(exc, StarletteHTTPException)
        if not request.url.path.startswith(API_PREFIXES):
            return await http_exception_handler(request, exc)
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
        path = request.url.path if len(request.url.path) <= 200 else request.url.path[:200] + "…"
        # FastAPI's 400 is a body json.loads could not take: not UTF-8, or nested too deep (RecursionError)
        message = {400: "The request body could not be read as JSON: it must be UTF-8 and not nested hundreds deep.",
                   404: f"No API endpoint at {path}; see /docs.",
                   405: f"{request.method} is not allowed on {path}; see /docs."}.get(
            exc.status_code, str(exc.detail))
        response = error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        count("internal")
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "Something went wrong on the server. The error was logged; "
                                               "please try again.")

    app.add_exception_handler(ChatbotError, on_chatbot_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


class MethodNotAllowedMiddleware:
    """405 with `Allow` for a method the OpenAPI document does not declare at a path it declares (TRACE /healthz,
    QUERY /v1/models …), before the chat UI mounted at "/" would answer it with its own 404. CORS preflights are
    answered further out, by the CORS middleware."""

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.openapi = openapi
        self._paths: list[tuple[re.Pattern[str], set[str]]] | None = None

    def allowed(self, path: str) -> set[str]:
        if self._paths is None:
            self._paths = declared_methods(self.openapi())
        return next((methods for pattern, methods in self._paths if pattern.fullmatch(path)), set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = self.allowed(scope["path"])
            if allowed and scope["method"] not in allowed:
                path = scope["path"] if len(scope["path"]) <= 200 else scope["path"][:200] + "…"
                response = error_response(405, "method_not_allowed",
                                          f"{scope['method']} is not allowed on {path}; see /docs.",
                                          headers={"Allow": ", ".join(sorted(allowed))})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def declared_methods(spec: dict[str, Any]) -> list[tuple[re.Pattern[str], set[str]]]:
    """(path pattern, methods) for every path of an OpenAPI document; a GET path also takes HEAD."""
    paths = []
    for template, operations in spec.get("paths", {}).items():
        methods = {m.upper() for m in operations if m in ("get", "put", "post", "delete", "options", "head",
                                                         "patch", "trace")}
        if "GET" in methods:
            methods.add("HEAD")
        pattern = re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part)
                                     for part in re.split(r"(\{[^}]+\})", template)))
        paths.append((pattern, methods))
    return paths


def unmatched_api_router(*api_routers: APIRouter) -> APIRouter:
    """Answers every /api/ and /v1/ path that none of `api_routers` has, in the JSON error shape: 405 where one
    has the path but not the method, else 404. Without it the chat UI mounted at "/" would answer them with its
    own 404."""
    routes = [route for router in api_routers for route in router.routes if isinstance(route, APIRoute)]
    router = APIRouter(include_in_schema=False)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]

    @router.api_route("/api/{rest:path}", methods=methods)
    @router.api_route("/v1/{rest:path}", methods=methods)
    def unmatched(request: Request) -> None:
        path = request.scope["path"]
        allowed = sorted({method for route in routes if route.path_regex.match(path) for method in route.methods or ()})
        if allowed:
            raise StarletteHTTPException(405, headers={"Allow": ", ".join(allowed)})
        raise StarletteHTTPException(404)

    return router


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in {
        400: "Bad input (`code` says which: `empty_question`, `bad_request`, …)",
        401: "Keys are in use and this request has no valid `Authorization: Bearer <key>`",
        404: "Unknown document (`document_not_found`)",
        413: "Question, history or body too long (`question_too_long`, `history_too_long`, `body_too_large`)",
        431: "More than 100 headers, or more than 32 KiB of them (`headers_too_large`)",
        422: "Wrong types or values (`invalid_request`; `details` lists each field)",
        429: "Too many requests for this key per minute (`rate_limited`; see Retry-After)",
        503: "Still loading (`not_ready`) or the waiting line is full (`busy`); see Retry-After",
    }.items()
}
