"""`chatbot mcp` over the fake service, for the MCP stdio tests: python -m tests.mcp_fake_stdio DIR builds a fake
index in DIR and serves MCP on stdin/stdout (the real command loads the real models)."""

from __future__ import annotations

import sys
from pathlib import Path

from chatbot.mcp_server import run_stdio
from chatbot.state import AppState
from tests.fakes import ScriptedLLM
from tests.unit.api_app import ANSWER, QUESTION, build_fake_index, serve_fake


def main(root: Path) -> None:
    index = build_fake_index(root / "fake")
    n = index.evidence_number(QUESTION, "11 municipal")
    served = serve_fake(index, root, ScriptedLLM(ANSWER.format(n=n)))
    run_stdio(AppState(served.state.settings, service=served.service))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
