"""Our own OpenAPI document holds: schemathesis (every check) against the served app on loopback, with the fake
service, the API open (no key) with the chat UI mounted, and with a key required."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chatbot.api.keys import KeyStore
from chatbot.app import create_app
from tests.fakes import ScriptedLLM
from tests.loopback import serve_on_loopback
from tests.unit.api_app import ANSWER, build_fake_index, serve_fake

pytestmark = pytest.mark.e2e  # the served app on loopback, driven by real client libraries (a scripted model)

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"


class RepeatingLLM(ScriptedLLM):
    """The same cited answer to every question the fuzzer asks."""

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int):  # noqa: ANN201
        yield ANSWER.format(n=1)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("fuzz-index"))


def schemathesis(url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run", f"{url}/openapi.json",
         "--checks", "all", "--max-examples", "12", "--seed", "21", "--generation-deterministic", *extra],
        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("keyed", [False, True], ids=["open", "keyed"])
def test_schemathesis_finds_no_failure(index, tmp_path, keyed):
    served = serve_fake(index, tmp_path, RepeatingLLM(), rate_limit_per_minute=0)
    app = served.app if keyed else create_app(served.state.settings, state=served.state, ui=True)
    extra: tuple[str, ...] = ()
    if keyed:
        _, key = KeyStore(served.state.db).create("fuzz")
        extra = ("-H", f"Authorization: Bearer {key}")
    with serve_on_loopback(app) as url:
        result = schemathesis(url, *extra)
    assert result.returncode == 0 and "No issues found" in result.stdout, result.stdout[-6000:]


def test_the_key_is_one_way_in_not_the_only_one(index, tmp_path):
    spec = serve_fake(index, tmp_path).client.get("/openapi.json").json()
    ask = spec["paths"]["/api/v1/ask"]["post"]
    assert ask["security"] == [{"ApiKey": []}, {}]


def test_undeclared_methods_are_405_even_where_the_chat_ui_takes_every_path(index, tmp_path):
    served = serve_fake(index, tmp_path)
    app = create_app(served.state.settings, state=served.state, ui=True)
    with serve_on_loopback(app) as url:
        for method, path, allow in [("TRACE", "/healthz", "GET, HEAD"), ("QUERY", "/v1/models", "GET, HEAD"),
                                    ("PUT", "/api/v1/documents/x", "GET, HEAD"), ("GET", "/v1/chat/completions", "POST")]:
            r = httpx.request(method, url + path)
            assert (r.status_code, r.headers["allow"]) == (405, allow), (method, path, r.text)
            assert r.json()["error"]["code"] == "method_not_allowed"
        assert httpx.get(url + "/healthz").status_code == 200
