from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS_FILE = REPO / "corpus" / "shanghai-soe-ai-plus-initiative.txt"


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A copy of the real corpus (document + manifest) that a test may change."""
    d = tmp_path / "corpus"
    d.mkdir()
    shutil.copy(CORPUS_FILE, d)
    shutil.copy(REPO / "corpus" / "manifest.toml", d)
    return d
