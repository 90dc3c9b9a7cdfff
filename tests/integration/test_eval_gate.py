"""The CI eval gate: the fixed dev subset through `chatbot eval`, failing past eval/thresholds.toml."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.eval

REPO = Path(__file__).resolve().parents[2]


def test_eval_gate_subset_meets_the_thresholds(real_settings, tmp_path):
    env = {**os.environ, "CHATBOT_INDEX_DIR": str(real_settings.index_dir),
           "CHATBOT_CORPUS_DIR": str(real_settings.corpus_dir)}
    env.pop("CHATBOT_LLM_MODEL", None)  # the gate runs the default model, the one the thresholds are set for
    result = subprocess.run(
        [sys.executable, "-m", "chatbot.cli", "eval", "--split", "test", "--subset", str(REPO / "eval" / "gate_subset.txt"),
         "--gate", str(REPO / "eval" / "thresholds.toml"), "--out", str(tmp_path), "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    print(result.stdout)
    reports = sorted(tmp_path.iterdir())
    assert reports, result.stderr[-2000:]
    report = json.loads((reports[-1] / "report.json").read_text(encoding="utf-8"))
    wanted = [x.split("#")[0].strip() for x in (REPO / "eval" / "gate_subset.txt").read_text().splitlines()]
    assert [q["id"] for q in report["questions"]] == [w for w in wanted if w]
    assert {q["split"] for q in report["questions"]} == {"test"}
    checked = {(c["scope"], c["metric"]) for c in report["gate"]["checks"]}
    assert {("zh", "answer_accuracy"), ("zh", "answered_in_language"), ("zh", "unanswerable_accuracy"),
            ("zh", "citation_precision"), ("gap", "max_language_gap")} <= checked
    assert (reports[-1] / "report.html").is_file() and (reports[-1] / "report.md").is_file()
    assert result.returncode == 0, "eval gate failed: " + result.stderr[-1500:]
