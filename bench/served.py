"""`chatbot serve` for the HTTP benchmarks: a subprocess on a free loopback port with its own database, no rate
limit and no analytics; the benchmark adds its own settings and arguments."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CHATBOT = Path(sys.executable).parent / "chatbot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path, *, args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "CHATBOT_DB_PATH": str(root / "chatbot.sqlite3"),
                    "CHATBOT_RATE_LIMIT_PER_MINUTE": "0", "GRADIO_ANALYTICS_ENABLED": "False",
                    "ANONYMIZED_TELEMETRY": "False", **(env or {})}
        self.log = root / "server.log"
        self.process = subprocess.Popen([str(CHATBOT), "serve", *args, "--port", str(self.port)], env=full_env,
                                        stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=root)

    def wait_ready(self, timeout: float = 600) -> float:
        """Seconds until /readyz said ready; exits with the server's log when it died or could not load."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.process.poll() is not None:
                raise SystemExit(f"chatbot serve exited:\n{self.log.read_text(errors='replace')[-2000:]}")
            try:
                r = httpx.get(self.url + "/readyz", timeout=2)
                if r.status_code == 200:
                    return time.monotonic() - t0
                if r.json().get("status") == "failed":
                    raise SystemExit(f"chatbot serve could not load (run `chatbot ingest` first?): {r.text}")
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise SystemExit("chatbot serve was not ready in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
