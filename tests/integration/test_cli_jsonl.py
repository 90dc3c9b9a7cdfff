"""`chatbot ask --jsonl`: one JSON object per input line, ids kept, models loaded once, bad lines reported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_jsonl_batch_keeps_ids_and_reports_bad_lines(real_settings, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "a", "question": "How many municipal state-owned enterprises launched the initiative?"})
        + "\nnot json\n" + json.dumps({"id": 7, "question": ""}, ensure_ascii=False) + "\n"
        + json.dumps({"id": "c", "question": "上海电气聚焦什么方向？"}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    env = {**os.environ, "CHATBOT_INDEX_DIR": str(real_settings.index_dir), "CHATBOT_LLM_MODEL": real_settings.llm_model}
    result = subprocess.run([sys.executable, "-m", "chatbot.cli", "ask", "--jsonl", str(questions)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-1500:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("id") for r in rows] == ["a", None, 7, "c"]
    assert "11" in rows[0]["answer"] and rows[0]["citations"] and rows[0]["refused"] is False
    assert "error" in rows[1] and "error" in rows[2] and "empty" in rows[2]["error"]
    assert rows[3]["language"] == "zh" and set(rows[3]) >= {"answer", "refused", "citations", "timings_ms"}
    assert "Traceback" not in result.stderr
