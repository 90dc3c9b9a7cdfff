"""The MCP server, driven by the official MCP Python client over both transports: streamable HTTP at /mcp on the
served app (on loopback, behind the API keys) and stdio (the server as a subprocess, over the fake service)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from chatbot.api.keys import KeyStore
from tests.fakes import ScriptedLLM
from tests.loopback import serve_on_loopback
from tests.unit.api_app import ANSWER, DOC_ID, QUESTION, build_fake_index, serve_fake

pytestmark = pytest.mark.e2e  # the served app on loopback, driven by real client libraries (a scripted model)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("mcp-index"))


def answered(index, tmp_path):
    n = index.evidence_number(QUESTION, "11 municipal")
    return serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=n)))


async def exercise(client: Client, text: str) -> None:
    """What a desktop assistant does: list the tools and documents, ask, search, read a document."""
    assert sorted(t.name for t in (await client.list_tools()).tools) == ["ask", "list_documents", "search"]

    result = await client.call_tool("ask", {"question": QUESTION})
    assert not result.is_error
    answer = result.structured_content
    assert answer["answer"] == ANSWER.format(n=1) and answer["refused"] is False
    [citation] = answer["citations"]
    assert citation["doc_id"] == DOC_ID and text[citation["start"]:citation["end"]] == citation["text"]
    assert json.loads(result.content[0].text)["answer"] == answer["answer"]  # clients that read text only

    found = (await client.call_tool("search", {"question": QUESTION, "top_k": 2})).structured_content
    assert len(found["passages"]) == 2
    assert all(text[p["start"]:p["end"]] == p["text"] for p in found["passages"])

    docs = (await client.call_tool("list_documents", {})).structured_content["documents"]
    assert [d["doc_id"] for d in docs] == [DOC_ID] and docs[0]["chars"] == len(text)

    [resource] = (await client.list_resources()).resources
    assert str(resource.uri) == f"document://{DOC_ID}"
    contents = (await client.read_resource(f"document://{DOC_ID}")).contents
    assert contents[0].text == text

    refused = await client.call_tool("ask", {"question": "   "})
    assert refused.is_error and "empty" in refused.content[0].text


def test_mcp_over_streamable_http(index, tmp_path):
    served = answered(index, tmp_path)
    with serve_on_loopback(served.app) as url:
        anyio.run(lambda: exercise_client(Client(f"{url}/mcp"), index.text))


async def exercise_client(client: Client, text: str) -> None:
    async with client:
        await exercise(client, text)


def test_mcp_over_http_needs_the_key_once_keys_exist(index, tmp_path):
    served = answered(index, tmp_path)
    _, key = KeyStore(served.state.db).create("desktop")
    with serve_on_loopback(served.app) as url:
        refused = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                             headers={"Accept": "application/json, text/event-stream"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        wrong = httpx.post(f"{url}/mcp", json={}, headers={"Authorization": "Bearer cbk_nope"})
        assert wrong.status_code == 401
        page = httpx.post(f"{url}/mcp", json={}, headers={"Authorization": f"Bearer {key}",
                                                          "Origin": "http://evil.example"})
        assert page.status_code == 403

        async def with_key() -> None:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
            async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
                await exercise(client, index.text)

        anyio.run(with_key)


def test_mcp_over_stdio_as_a_desktop_assistant_launches_it(tmp_path, index):
    params = StdioServerParameters(command=sys.executable, args=["-m", "tests.mcp_fake_stdio", str(tmp_path)],
                                   cwd=str(REPO))

    async def run() -> None:
        async with Client(params, mode="legacy") as client:  # the initialize handshake desktop assistants use
            await exercise(client, index.text)

    anyio.run(run)
