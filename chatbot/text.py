"""The Chinese (CJK) character range every stage tells Chinese text from Latin text with."""

from __future__ import annotations

import re

CJK_RANGE = "\u3400-\u9fff"  # CJK Unified Ideographs and Extension A: the characters of Chinese text
CJK = re.compile(f"[{CJK_RANGE}]")
CJK_RUN = re.compile(f"[{CJK_RANGE}]+")


def is_cjk(ch: str) -> bool:
    """Is the character (one) a Chinese character?"""
    return "\u3400" <= ch <= "\u9fff"


def cjk_count(text: str) -> int:
    """How many Chinese characters the text has."""
    return len(CJK.findall(text))
