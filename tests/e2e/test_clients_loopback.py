"""Real OpenAI-compatible clients we did not write, against the served app on loopback (uvicorn, the fake service):
the openai SDK over real HTTP, LangChain's ChatOpenAI, simonw's `llm` CLI and llama-index's OpenAILike (each of the
last two in a venv of its own under .venv-tools/, made by `make tools`; skipped, with the reason, where missing).
Each plain and streamed, reading the citations where the client exposes extra fields."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from langchain_openai import ChatOpenAI

from chatbot.api.openai_compat import MODEL_ID
from tests.fakes import ScriptedLLM
from tests.loopback import serve_on_loopback
from tests.unit.api_app import ANSWER, DOC_ID, QUESTION, build_fake_index, serve_fake

pytestmark = pytest.mark.e2e  # the served app on loopback, driven by real client libraries (a scripted model)

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("CHATBOT_TOOLS_DIR", REPO / ".venv-tools"))
LLM_CLI = TOOLS / "llm" / "bin" / "llm"
LLAMA_INDEX_PY = TOOLS / "llamaindex" / "bin" / "python"
EXPECTED = ANSWER.format(n=1)


class AnswerEveryTime(ScriptedLLM):
    """The cited answer to the question, however often it is asked (the cache keeps repeats from the LLM)."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int) -> Iterator[str]:
        yield from self.reply.split(" ")[:1]
        for word in self.reply.split(" ")[1:]:
            yield " " + word


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("clients")
    index = build_fake_index(root / "index")
    n = index.evidence_number(QUESTION, "11 municipal")
    served = serve_fake(index, root, AnswerEveryTime(ANSWER.format(n=n)), rate_limit_per_minute=0)
    with serve_on_loopback(served.app) as url:
        yield f"{url}/v1"


def test_openai_sdk_over_http_reads_usage_plain_and_streamed(base_url):
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    plain = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}])
    assert plain.choices[0].message.content == EXPECTED
    assert plain.usage is not None and plain.usage.completion_tokens > 0
    assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens
    chunks = list(client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == EXPECTED
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage


def test_langchain_chat_openai_invoke_and_stream(base_url):
    chat = ChatOpenAI(base_url=base_url, api_key="unused", model=MODEL_ID, max_retries=0)  # type: ignore[arg-type]
    reply = chat.invoke(QUESTION)
    assert reply.content == EXPECTED
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0
    parts = list(chat.stream(QUESTION))
    assert "".join(str(p.content) for p in parts) == EXPECTED


def test_langchain_stream_usage(base_url):
    chat = ChatOpenAI(base_url=base_url, api_key="unused", model=MODEL_ID, max_retries=0,  # type: ignore[arg-type]
                      stream_usage=True)
    total = None
    for part in chat.stream(QUESTION):
        total = part if total is None else total + part
    assert total is not None and total.content == EXPECTED
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] > 0


def llm_cli(base_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not LLM_CLI.exists():
        pytest.skip(f"the `llm` CLI is not installed at {LLM_CLI}: run `make tools`")
    home = tmp_path / "llm-home"
    home.mkdir(exist_ok=True)
    (home / "extra-openai-models.yaml").write_text(
        f"- model_id: chatbot\n  model_name: {MODEL_ID}\n  api_base: \"{base_url}\"\n", encoding="utf-8")
    env = {**os.environ, "LLM_USER_PATH": str(home), "OPENAI_API_KEY": "unused"}
    return subprocess.run([str(LLM_CLI), "-m", "chatbot", *args, QUESTION], env=env, capture_output=True,
                          text=True, timeout=120)


def test_llm_cli_plain_and_streamed(base_url, tmp_path):
    plain = llm_cli(base_url, tmp_path, "--no-stream")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == EXPECTED
    streamed = llm_cli(base_url, tmp_path)
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.strip() == EXPECTED


def test_llm_cli_logs_the_usage(base_url, tmp_path):
    assert llm_cli(base_url, tmp_path, "--no-stream").returncode == 0
    if not LLM_CLI.exists():
        pytest.skip("no llm CLI")
    logs = subprocess.run([str(LLM_CLI), "logs", "--json", "-n", "1"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LLM_USER_PATH": str(tmp_path / "llm-home")})
    [entry] = json.loads(logs.stdout)
    assert entry["response"] == EXPECTED and entry["output_tokens"] > 0


LLAMA_INDEX_SCRIPT = """
import json, sys
from llama_index.llms.openai_like import OpenAILike
from llama_index.core.llms import ChatMessage
llm = OpenAILike(api_base=sys.argv[1], api_key="unused", model=sys.argv[2], is_chat_model=True, max_retries=0)
messages = [ChatMessage(role="user", content=sys.argv[3])]
plain = llm.chat(messages)
streamed = "".join(r.delta or "" for r in llm.stream_chat(messages))
print(json.dumps({"plain": plain.message.content, "streamed": streamed,
                  "citations": plain.raw.model_dump()["citations"] if plain.raw is not None else None}))
"""


def test_llama_index_openai_like_chat_and_stream(base_url):
    if not LLAMA_INDEX_PY.exists():
        pytest.skip(f"llama-index-llms-openai-like is not installed at {LLAMA_INDEX_PY}: run `make tools` (it "
                    "needs openai<3, so it lives in a venv of its own)")
    done = subprocess.run([str(LLAMA_INDEX_PY), "-c", LLAMA_INDEX_SCRIPT, base_url, MODEL_ID, QUESTION],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["plain"] == EXPECTED and result["streamed"] == EXPECTED
    assert result["citations"][0]["doc_id"] == DOC_ID
