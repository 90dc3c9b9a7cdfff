"""Several API workers (`chatbot serve --workers N`): when they are refused, what each worker's app serves, and
the one SQLite database they all write to."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatbot.api.keys import KeyStore
from chatbot.app import WORKER_HEADER, check_workers, create_worker_app
from chatbot.config import Settings
from chatbot.db import Database
from chatbot.errors import ChatbotError
from chatbot.schemas import Answer

REPO = Path(__file__).resolve().parents[2]


def test_several_workers_on_the_embedded_database_are_refused_with_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    result = subprocess.run([sys.executable, "-m", "chatbot.cli", "serve", "--workers", "2", "--index",
                             str(tmp_path / "index")], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**env, "CHATBOT_DB_PATH": str(tmp_path / "db.sqlite3")})
    assert result.returncode == 2, result.stderr
    assert "--workers 2 needs a Chroma server" in result.stderr
    assert "CHATBOT_CHROMA_HOST" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "index").exists()  # refused before anything was ingested or served


def test_what_several_workers_cost_is_said_before_they_start(tmp_path):
    server = Settings(index_dir=tmp_path, chroma_host="127.0.0.1")
    assert check_workers(server, 1) == []
    local = check_workers(server.model_copy(update={"llm_backend": "local"}), 3)
    assert any("Each of the 3 workers loads its own copy of the local model" in w for w in local)
    hosted = check_workers(server.model_copy(update={"llm_backend": "hosted"}), 3)
    assert len(hosted) == 1 and "chat page is not served" in hosted[0]
    with pytest.raises(ChatbotError, match="1 or more"):
        check_workers(server, 0)


def test_a_worker_app_serves_the_api_from_the_environment_and_says_which_process_answered(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATBOT_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("CHATBOT_DB_PATH", str(tmp_path / "db.sqlite3"))
    monkeypatch.setenv("CHATBOT_CHROMA_HOST", "127.0.0.1")
    app = create_worker_app()
    assert app.state.chat.settings.index_dir == tmp_path / "index"
    client = TestClient(app)  # no lifespan: the models are not loaded
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["worker"] == os.getpid()
    assert health.headers[WORKER_HEADER] == str(os.getpid())
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["worker"] == os.getpid()
    assert ready.headers[WORKER_HEADER] == str(os.getpid())
    root = client.get("/")
    assert root.status_code == 200 and "HTTP API only" in root.text  # no chat page: its sessions are per process
    assert client.get("/gradio_api/info").status_code == 404
    assert client.get("/openapi.json").json()["paths"]["/api/v1/ask"]


def _write_from_a_process(db_path: str, worker: int, n: int) -> int:
    db = Database(Path(db_path))
    keys = KeyStore(db)
    answer = Answer(question=f"q{worker}", answer="a [1].", refused=False, language="en")
    for i in range(n):
        db.add_feedback(answer, 1 if i % 2 else -1, f"worker {worker} #{i}", source="api")
    keys.create(f"worker-{worker}")
    return os.getpid()


def test_workers_in_separate_processes_write_one_database_and_lose_nothing(tmp_path):
    db_path = tmp_path / "shared.sqlite3"
    workers, n = 4, 40
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pids = list(pool.map(_write_from_a_process, [str(db_path)] * workers, range(workers), [n] * workers))
    assert len(set(pids)) > 1  # really several processes
    db = Database(db_path)
    comments = [f.comment for f in db.feedback()]
    assert sorted(comments) == sorted(f"worker {w} #{i}" for w in range(workers) for i in range(n))
    assert sorted(k.name for k in KeyStore(db).list()) == [f"worker-{w}" for w in range(workers)]
    with sqlite3.connect(db_path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


WRITER = r"""
import sys
from pathlib import Path
from chatbot.api.keys import KeyStore
from chatbot.db import Database
from chatbot.schemas import Answer

db = Database(Path(sys.argv[1]))
keys = KeyStore(db)
answer = Answer(question="q", answer="a [1].", refused=False, language="en")
with open(sys.argv[2], "w") as acks:
    for i in range(100000):
        db.add_feedback(answer, 1, f"note {i}", source="api")
        if i % 10 == 0:
            keys.create(f"key-{i}")
        acks.write(f"{i}\n")
        acks.flush()
"""


def test_feedback_and_keys_written_before_a_server_is_killed_survive_it(tmp_path):
    """A process writing feedback and keys is killed with SIGKILL mid-stream: every write it had finished is
    there, the database is intact, and the next process writes to it."""
    import signal
    import time

    db_path, acks = tmp_path / "chatbot.sqlite3", tmp_path / "acks.txt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), str(acks)], cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not acks.exists() or len(acks.read_text().splitlines()) < 200):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    finished = [int(x) for x in acks.read_text().splitlines() if x.strip()]
    assert len(finished) >= 200 and proc.returncode == -signal.SIGKILL
    with sqlite3.connect(db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db = Database(db_path)
    stored = {f.comment for f in db.feedback()}
    assert {f"note {i}" for i in finished} <= stored
    assert len(stored) <= len(finished) + 1  # at most the write that was under way
    names = {k.name for k in KeyStore(db).list()}
    assert {f"key-{i}" for i in finished if i % 10 == 0} <= names
    db.add_feedback(Answer(question="after", answer="b [1].", refused=False, language="en"), -1, "after the kill",
                    source="api")
    assert "after the kill" in {f.comment for f in Database(db_path).feedback()}
