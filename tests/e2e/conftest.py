"""The served app (`chatbot serve`) on loopback, as a user starts it, for real clients to drive."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CHATBOT = Path(sys.executable).parent / "chatbot"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    root: Path  # corpus/, index/, the database and the server log live here
    process: subprocess.Popen
    env: dict[str, str]

    @property
    def db_path(self) -> Path:
        return self.root / "chatbot.sqlite3"

    def log(self) -> str:
        return (self.root / "server.log").read_text(encoding="utf-8", errors="replace")

    def chatbot(self, *args: str) -> subprocess.CompletedProcess:
        """Run the `chatbot` CLI against this server's settings (same index and database)."""
        return subprocess.run([str(CHATBOT), *args], env=self.env, capture_output=True, text=True, timeout=120)


def start_server(root: Path, *, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                 wait_ready: bool = True, timeout: float = 300.0) -> Served:
    """`chatbot serve --ingest` on a free loopback port with its own corpus copy, index and database."""
    corpus = root / "corpus"
    if not corpus.exists():
        shutil.copytree(REPO / "corpus", corpus)
    port = free_port()
    env = {**os.environ, "CHATBOT_CORPUS_DIR": str(corpus), "CHATBOT_INDEX_DIR": str(root / "index"),
           "CHATBOT_DB_PATH": str(root / "chatbot.sqlite3"), "GRADIO_ANALYTICS_ENABLED": "False",
           "ANONYMIZED_TELEMETRY": "False", "CHATBOT_RATE_LIMIT_PER_MINUTE": "0", **(extra_env or {})}
    log = (root / "server.log").open("ab")
    process = subprocess.Popen([str(CHATBOT), "serve", "--ingest", "--port", str(port), *args], env=env,
                               stdout=log, stderr=subprocess.STDOUT, cwd=root)
    served = Served(f"http://127.0.0.1:{port}", root, process, env)
    if wait_ready:
        wait_until_ready(served, timeout)
    return served


def wait_until_ready(served: Served, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(f"chatbot serve exited with {served.process.returncode}:\n{served.log()[-3000:]}")
        try:
            r = httpx.get(served.url + "/readyz", timeout=2)
            if r.status_code == 200:
                return
            if r.json().get("status") == "failed":
                raise RuntimeError(f"chatbot serve failed to load: {r.text}")
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"chatbot serve not ready after {timeout} s:\n{served.log()[-3000:]}")


def stop_server(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(timeout=10)


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Iterator[Served]:
    """One served app for the e2e tests of a session (loading the models once). Tests must leave it as they
    found it: no API key left active, since a key makes every API request need one."""
    s = start_server(tmp_path_factory.mktemp("served"))
    yield s
    stop_server(s)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
