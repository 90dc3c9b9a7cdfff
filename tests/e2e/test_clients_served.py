"""Real clients against `chatbot serve` with the real models: LangChain's ChatOpenAI (invoke and stream, usage
counted by the model's own tokenizer), and the official MCP client over streamable HTTP at /mcp."""

from __future__ import annotations

import anyio
import pytest
from langchain_openai import ChatOpenAI
from mcp import Client

from tests.e2e.test_api_served import MARKER, QUESTION, assert_cited

pytestmark = pytest.mark.e2e


def test_langchain_invoke_and_stream_with_the_real_model(served):
    chat = ChatOpenAI(base_url=served.url + "/v1", api_key="unused", model="soe-ai-plus-qa",  # type: ignore[arg-type]
                      timeout=180, max_retries=0, stream_usage=True)
    reply = chat.invoke(QUESTION)
    assert "11" in str(reply.content)
    assert MARKER.search(str(reply.content))  # LangChain keeps the text; the citations are in the raw response
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 5 and usage["output_tokens"] > 5
    total = None
    for part in chat.stream(QUESTION):
        total = part if total is None else total + part
    assert total is not None and total.content == reply.content
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == usage["output_tokens"]


def test_mcp_ask_and_search_over_http_with_the_real_model(served):
    async def run() -> None:
        async with Client(served.url + "/mcp") as client:
            answer = (await client.call_tool("ask", {"question": QUESTION})).structured_content
            assert "11" in answer["answer"] and answer["refused"] is False
            assert_cited(served.url, answer["answer"], answer["citations"])
            found = (await client.call_tool("search", {"question": QUESTION})).structured_content
            assert any("11 municipal" in p["text"] for p in found["passages"])

    anyio.run(run)
