"""Reading the eval suite's TOML files (entity lists, thresholds) with one clear error for each failure."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def load_toml(path: Path, error: type[Exception], what: str) -> dict[str, Any]:
    """The file's tables; `error` (the caller's own ChatbotError) names `what` the file is when it cannot be read."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise error(f"Cannot read the {what} {path}: {exc.strerror or exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path} is not valid TOML: {exc}.") from exc
