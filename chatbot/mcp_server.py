"""The MCP server (the `mcp` package; its only importer): tools `ask`, `search`, `list_documents` and the documents
as resources, over stdio (`chatbot mcp`) or streamable HTTP (mounted at /mcp on the served app, behind the API keys).
An adapter like the HTTP API: each tool calls one ChatService method."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import Resource as MCPResource
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from chatbot.api.errors import chatbot_error_response, error_response
from chatbot.api.models import DocumentList, RetrieveResponse
from chatbot.api.routes import refuse_when_full, resolve_doc_ids, retrieve_passages, with_retry_after
from chatbot.errors import ChatbotError
from chatbot.schemas import Answer, Turn

if TYPE_CHECKING:
    from chatbot.api.auth import Caller
    from chatbot.service import ChatService
    from chatbot.state import AppState

DOCUMENT_URI = "document://{doc_id}"
INSTRUCTIONS = ("Answers questions from an indexed set of documents, with citations. Use `ask` for an answer "
                "whose [n] markers point into `citations` (document, character span, quoted text); `search` for "
                "the passages alone; `list_documents` for what is indexed. A `refused: true` answer means the "
                "documents do not contain the answer: do not answer it from elsewhere in their name.")


class ChatbotMCP(MCPServer):
    """An MCPServer whose resource list is the documents indexed now (the index can change while it runs)."""

    def __init__(self, state: AppState, wait_ready_s: float) -> None:
        super().__init__(name="chatbot", title=f"{state.settings.title['en']} Q&A", instructions=INSTRUCTIONS,
                         version=_version(), log_level="WARNING")
        self.state = state
        self.wait_ready_s = wait_ready_s

    async def service(self) -> ChatService:
        """The service; a tool call that comes while the models load waits up to `wait_ready_s` for them."""
        if self.wait_ready_s > 0 and not self.state.ready:
            await anyio.to_thread.run_sync(self.state.wait_ready, self.wait_ready_s)
        try:
            return self.state.service
        except ChatbotError as exc:
            raise ToolError(str(exc)) from exc

    async def list_resources(self) -> list[MCPResource]:
        listed = await super().list_resources()
        if not self.state.ready:
            return listed
        return listed + [MCPResource(uri=DOCUMENT_URI.format(doc_id=d.doc_id), name=d.doc_id, title=d.title,
                                     description=", ".join(x for x in (d.outlet, d.date, d.language) if x),
                                     mime_type="text/plain")
                         for d in self.state.service.documents()]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chatbot")
    except PackageNotFoundError:
        return ""


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A blocking service call off the event loop; the project's errors become the tool's error message."""
    try:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
    except ChatbotError as exc:
        raise ToolError(str(exc)) from exc


def build_mcp_server(state: AppState, *, wait_ready_s: float = 0.0) -> ChatbotMCP:
    server = ChatbotMCP(state, wait_ready_s)

    @server.tool(description="Answer a question from the indexed documents. `answer` carries [n] markers; "
                             "`citations[n]` gives the document, the character span (start, end) and the quoted "
                             "text. `refused: true`: the documents don't contain the answer. `mode: extractive`: "
                             "the answer quotes the documents (the model did not answer).")
    async def ask(question: str = Field(description="English or Chinese"),
                  history: list[Turn] | None = Field(None, description="earlier messages, oldest first, for a "
                                                                       "follow-up question"),
                  doc_ids: list[str] | None = Field(None, description="answer only from these documents "
                                                                      "(ids from list_documents)"),
                  ) -> Answer:
        service = await server.service()

        def answer() -> Answer:
            wanted = resolve_doc_ids(service, doc_ids, None)
            refuse_when_full(service)
            try:
                return service.ask(question, history=history or [], doc_ids=wanted)
            except ChatbotError as exc:
                raise with_retry_after(exc, service) from None

        result: Answer = await _call(answer)
        return result

    @server.tool(description="The passages retrieval finds for a question, without generating an answer: each "
                             "with its document, character offsets (start, end), text and score; `evidence` lists "
                             "the sentences an answer would cite.")
    async def search(question: str = Field(description="English or Chinese"),
                     top_k: int | None = Field(None, ge=1, le=20, description="chunks to retrieve"),
                     doc_ids: list[str] | None = Field(None, description="search only these documents"),
                     ) -> RetrieveResponse:
        service = await server.service()
        result: RetrieveResponse = await _call(retrieve_passages, service, question, top_k=top_k, doc_ids=doc_ids)
        return result

    @server.tool(description="The indexed documents: id, title, outlet, date, language and length. Read one as "
                             "the resource document://{doc_id}.")
    async def list_documents() -> DocumentList:
        service = await server.service()
        return DocumentList(documents=service.documents())

    @server.resource(DOCUMENT_URI, name="document", mime_type="text/plain",
                     description="A document's extracted text: the text citation offsets point into")
    async def document(doc_id: str) -> str:
        service = await server.service()
        text: str = await _call(service.document_text, doc_id)
        return text

    return server


def run_stdio(state: AppState, *, wait_ready_s: float = 600.0) -> None:
    """Serve MCP over stdin/stdout (what a desktop assistant launches); the models load in the background."""
    state.start_loading()
    anyio.run(build_mcp_server(state, wait_ready_s=wait_ready_s).run_stdio_async)


class KeyCheck:
    """The API's Bearer key check in front of an ASGI app (the MCP endpoint): 401 in the API's error shape while
    keys exist and the request has no valid one. A browser page from an origin the CORS settings do not allow is
    refused (403): the MCP endpoint is not meant for web pages."""

    def __init__(self, app: ASGIApp, caller: Any, allowed_origins: list[str]) -> None:
        self.app = app
        self.caller = caller  # Request -> Caller, raises Unauthorized
        self.allowed_origins = set(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            origin = request.headers.get("origin")
            if origin and origin not in self.allowed_origins and "*" not in self.allowed_origins:
                await error_response(403, "origin_not_allowed",
                                     f"Requests from {origin[:200]} may not use the MCP endpoint.")(scope, receive, send)
                return
            try:
                caller: Caller = await run_in_threadpool(self.caller, request)
            except ChatbotError as exc:
                await chatbot_error_response(exc)(scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = caller.who
        await self.app(scope, receive, send)


def mcp_http_app(state: AppState, caller: Any) -> tuple[ASGIApp, Any]:
    """(the streamable-HTTP MCP endpoint behind the key check, its session manager's lifespan). Host headers are
    not checked (the SDK's DNS-rebinding guard allows loopback names only, and the server may be reached by any
    name); the key and the Origin check guard it instead."""
    server = build_mcp_server(state)
    server.streamable_http_app(transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    manager = server.session_manager

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with manager.run():
            yield

    endpoint = KeyCheck(StreamableHTTPASGIApp(manager), caller, state.settings.cors_origins)
    return endpoint, lifespan

