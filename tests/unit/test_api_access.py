"""Access to the API: hashed keys (store and CLI), 401s, what stays public, rate limit, CORS, exposure check,
metrics and the widget's assets."""

from __future__ import annotations

import sqlite3

import pytest

from chatbot.api import check_exposure
from chatbot.api.keys import KeyStore
from chatbot.cli import main as cli
from chatbot.config import Settings
from chatbot.db import Database
from chatbot.errors import ChatbotError
from tests.fakes import ScriptedLLM
from tests.unit.api_app import ANSWER, QUESTION, build_fake_index, serve_fake


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_fake_index(tmp_path_factory.mktemp("api-index"))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_are_stored_hashed_and_listed_without_the_key(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    store = KeyStore(db)
    record, key = store.create("intranet portal")
    assert key.startswith("cbk_") and len(key) > 40 and record.prefix == key[:12]
    raw = sqlite3.connect(tmp_path / "db.sqlite3").execute("SELECT * FROM api_keys").fetchall()
    assert raw and all(key not in str(value) for value in raw[0])  # only the hash is stored
    required, found = store.check(key)
    assert required and found is not None and found.id == record.id
    assert store.list()[0].last_used_at is not None
    assert store.check("cbk_wrong") == (True, None) and store.check(None) == (True, None)
    assert [k.name for k in store.list()] == ["intranet portal"]
    # the feedback table of the same database is untouched
    assert sqlite3.connect(tmp_path / "db.sqlite3").execute("SELECT COUNT(*) FROM feedback").fetchone() == (0,)


def test_revoke_by_id_prefix_name_or_key(tmp_path):
    store = KeyStore(Database(tmp_path / "db.sqlite3"))
    keys = [store.create(name)[1] for name in ("a", "b", "c", "d")]
    store.revoke("1")
    store.revoke(keys[1][:10])
    store.revoke("c")
    store.revoke(keys[3])
    assert not store.any_active() and store.check(keys[0]) == (False, None)
    with pytest.raises(ChatbotError, match="already revoked"):
        store.revoke("1")
    with pytest.raises(ChatbotError, match="No API key matches"):
        store.revoke("42")


def test_cli_keys_create_list_revoke(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHATBOT_DB_PATH", str(tmp_path / "db.sqlite3"))
    assert cli(["keys", "create", "--name", "hr-portal", "--rate-limit", "30"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("cbk_") and "shown only this once" in err
    assert cli(["keys", "list"]) == 0
    out, _ = capsys.readouterr()
    assert "hr-portal" in out and key[:12] in out and key not in out and "active" in out and "30/min" in out
    assert cli(["keys", "revoke", "hr-portal"]) == 0
    assert cli(["keys", "revoke", "hr-portal"]) == 2
    assert "already revoked" in capsys.readouterr().err
    assert cli(["keys", "list", "--json"]) == 0
    assert '"revoked_at": "20' in capsys.readouterr().out


def test_once_a_key_exists_every_api_request_needs_it(index, tmp_path):
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=1)))
    client = served.client
    assert client.get("/api/v1/documents").status_code == 200  # no key yet: open (loopback by default)
    store = KeyStore(served.state.db)
    _, key = store.create("portal")
    requests = [("GET", "/api/v1/documents", None), ("POST", "/api/v1/retrieve", {"question": QUESTION}),
                ("POST", "/api/v1/ask", {"question": QUESTION}), ("POST", "/api/v1/ask/stream", {"question": QUESTION}),
                ("GET", "/v1/models", None), ("GET", "/metrics", None),
                ("POST", "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": QUESTION}]})]
    for method, path, body in requests:
        r = client.request(method, path, json=body)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "invalid_api_key" and "Authorization: Bearer" in r.json()["error"]["message"]
        assert r.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, path, json=body, headers=bearer(key[:-2] + "xx"))
        assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]
        basic = client.request(method, path, json=body, headers={"Authorization": f"Basic {key}"})
        assert basic.status_code == 401
    assert client.get("/api/v1/documents", headers=bearer(key)).status_code == 200
    assert client.post("/api/v1/ask", json={"question": QUESTION}, headers=bearer(key)).status_code == 200
    # public: health, readiness, the widget's files
    for path in ("/healthz", "/readyz", "/widget.js", "/widget.css"):
        assert client.get(path).status_code == 200, path
    _, other = store.create("another portal")
    store.revoke("portal")
    revoked = client.get("/api/v1/documents", headers=bearer(key))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    assert client.get("/api/v1/documents", headers=bearer(other)).status_code == 200
    store.revoke("another portal")
    assert client.get("/api/v1/documents").status_code == 200  # no active key left: open again
    assert store.list()[0].last_used_at is not None


def test_rate_limit_per_key_is_429_with_retry_after(index, tmp_path):
    served = serve_fake(index, tmp_path, rate_limit_per_minute=3)
    client = served.client
    store = KeyStore(served.state.db)
    _, first = store.create("a")
    _, second = store.create("b")
    for _ in range(3):
        assert client.get("/api/v1/documents", headers=bearer(first)).status_code == 200
    r = client.post("/api/v1/retrieve", json={"question": QUESTION}, headers=bearer(first))
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited" and "3 per minute" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert client.get("/api/v1/documents", headers=bearer(second)).status_code == 200  # per key
    _, small = store.create("small", rate_limit=1)
    _, unlimited = store.create("batch", rate_limit=0)
    assert [client.get("/v1/models", headers=bearer(small)).status_code for _ in range(2)] == [200, 429]
    assert {client.get("/v1/models", headers=bearer(unlimited)).status_code for _ in range(5)} == {200}
    assert client.get("/healthz").status_code == 200 and client.get("/metrics", headers=bearer(first)).status_code == 200


def test_rate_limit_per_client_address_without_keys(index, tmp_path):
    client = serve_fake(index, tmp_path, rate_limit_per_minute=2).client
    assert [client.get("/v1/models").status_code for _ in range(3)] == [200, 200, 429]


def test_cors_allows_only_the_configured_origins(index, tmp_path):
    portal = "http://portal.example:8080"
    client = serve_fake(index, tmp_path, cors_origins=[portal]).client
    preflight = client.options("/api/v1/ask/stream", headers={
        "Origin": portal, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == portal
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    r = client.get("/api/v1/documents", headers={"Origin": portal})
    assert r.headers["access-control-allow-origin"] == portal
    too_big = client.post("/api/v1/ask", content=b"x" * 70000, headers={"Origin": portal})
    assert too_big.status_code == 413 and too_big.headers["access-control-allow-origin"] == portal
    other = client.get("/api/v1/documents", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    denied = client.options("/api/v1/ask", headers={"Origin": "http://evil.example",
                                                    "Access-Control-Request-Method": "POST"})
    assert denied.status_code == 400 and "access-control-allow-origin" not in denied.headers


def test_no_origin_is_allowed_by_default(index, tmp_path):
    assert Settings().cors_origins == []
    client = serve_fake(index, tmp_path).client
    r = client.get("/api/v1/documents", headers={"Origin": "http://portal.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_origins_setting_reads_a_list_or_commas(monkeypatch):
    monkeypatch.setenv("CHATBOT_CORS_ORIGINS", "http://a.example, https://b.example/")
    assert Settings().cors_origins == ["http://a.example", "https://b.example"]
    monkeypatch.setenv("CHATBOT_CORS_ORIGINS", '["http://c.example"]')
    assert Settings().cors_origins == ["http://c.example"]


def test_serving_beyond_loopback_needs_a_key_or_open_api(tmp_path):
    settings = Settings(db_path=tmp_path / "db.sqlite3")
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_exposure(settings, host, open_api=False)
    with pytest.raises(ChatbotError) as refused:
        check_exposure(settings, "0.0.0.0", open_api=False)
    assert "--open-api" in str(refused.value) and "chatbot keys create" in str(refused.value)
    with pytest.raises(ChatbotError):
        check_exposure(settings, "10.1.2.3", open_api=False)
    check_exposure(settings, "0.0.0.0", open_api=True)
    store = KeyStore(Database(settings.db_path))
    store.create("portal")
    check_exposure(settings, "0.0.0.0", open_api=False)
    store.revoke("portal")
    with pytest.raises(ChatbotError):
        check_exposure(settings, "0.0.0.0", open_api=False)


def test_cli_serve_refuses_a_public_address_without_a_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHATBOT_DB_PATH", str(tmp_path / "db.sqlite3"))
    monkeypatch.setenv("CHATBOT_INDEX_DIR", str(tmp_path / "index"))
    assert cli(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "Refusing to serve on 0.0.0.0" in err and "--open-api" in err and "Traceback" not in err


def test_metrics_count_requests_stages_errors_and_the_queue(index, tmp_path):
    served = serve_fake(index, tmp_path, ScriptedLLM(ANSWER.format(n=1)))
    client = served.client
    client.post("/api/v1/ask", json={"question": QUESTION})
    client.post("/api/v1/ask", json={"question": "x" * 2000})
    client.get("/api/v1/documents/nope")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'chatbot_http_requests_total{method="POST",route="/api/v1/ask",status="200"} 1.0' in text
    assert 'chatbot_http_requests_total{method="POST",route="/api/v1/ask",status="413"} 1.0' in text
    assert 'chatbot_http_requests_total{method="GET",route="/api/v1/documents/{doc_id}",status="404"} 1.0' in text
    assert 'chatbot_answer_stage_seconds_count{stage="generate"} 1.0' in text
    assert 'chatbot_answer_stage_seconds_count{stage="retrieve"} 1.0' in text
    assert 'chatbot_errors_total{code="question_too_long"} 1.0' in text
    assert 'chatbot_errors_total{code="document_not_found"} 1.0' in text
    assert "chatbot_queue_waiting 0.0" in text and "chatbot_ready 1.0" in text
    assert 'chatbot_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/api/v1/ask"}' in text


def test_widget_assets_are_served_by_the_app(index, tmp_path):
    client = serve_fake(index, tmp_path).client
    js = client.get("/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("application/javascript")
    assert "/api/v1/ask/stream" in js.text and "getReader" in js.text and "data-key" in js.text
    assert "http://" not in js.text.replace("http://SERVER", "")  # nothing from a CDN
    css = client.get("/widget.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@import" not in css.text and "url(" not in css.text


def test_the_widget_header_is_the_deployments_setting(index, tmp_path):
    client = serve_fake(index, tmp_path, widget_title={"en": "Ask the harbour manuals", "zh": "港口手册问答"}).client
    js = client.get("/widget.js").text
    assert 'title: "Ask the harbour manuals",' in js and 'title: "港口手册问答",' in js
    assert "AI+" not in js.split("var L =")[1].split("}[lang]")[0]  # the packaged titles are gone
