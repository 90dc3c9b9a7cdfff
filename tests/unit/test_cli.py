import json
import os
import subprocess
import sys
from pathlib import Path

from chatbot.cli import render_answer
from chatbot.schemas import Answer, Citation

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "chatbot.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=120)


def test_ask_without_an_index_says_what_to_do_and_shows_no_trace(tmp_path):
    result = run_cli("ask", "--json", "How many enterprises?", env_extra={"CHATBOT_INDEX_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "Run `chatbot ingest` first" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_ingest_of_a_missing_corpus_folder_is_a_clear_error(tmp_path):
    result = run_cli("ingest", "--corpus", str(tmp_path / "none"), "--index", str(tmp_path / "i"))
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_jsonl_input_that_cannot_be_read_is_reported(tmp_path):
    result = run_cli("ask", "--jsonl", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2 and "Cannot read" in result.stderr


def test_terminal_rendering_lists_numbered_sources():
    a = Answer(question="q", answer="Eleven enterprises launched it [1].", refused=False, language="en",
               citations=[Citation(n=1, doc_id="d", source="corpus/d.txt", title="Doc", start=5, end=20,
                                   text="11 enterprises", score=0.5)])
    out = render_answer(a)
    assert "Sources:" in out and "[1] Doc (corpus/d.txt, characters 5-20)" in out and "“11 enterprises”" in out
    assert json.loads(a.model_dump_json())["citations"][0]["start"] == 5
