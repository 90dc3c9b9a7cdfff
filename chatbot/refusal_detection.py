"""Refusal detection: does a generated text say that the sources do not answer the question?"""

from __future__ import annotations

import re

REFUSAL_PATTERNS = re.compile(
    r"(documents? (do|does) not (say|mention|contain|specify|state|provide)|not (mentioned|stated|specified) in the "
    r"(documents?|sources?)|sources? (do|does) not (say|mention|contain|specify|state|provide)|^i don'?t know|"
    r"no information|none of the (provided )?sources|not provided in the (given )?(context|sources)|"
    r"文件中?没有|文件未(提及|说明|提到)|没有相关信息|未提及|没有提到|无法回答|资料中没有|来源中?没有|未说明)",
    re.IGNORECASE,
)


def is_refusal(text: str) -> bool:
    return bool(REFUSAL_PATTERNS.search(text.strip()))
