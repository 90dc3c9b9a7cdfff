"""Numbers in English and Chinese text, normalised: "1.05 million" = "1,050,000" = "105万"; "三成" = "30%"."""

from __future__ import annotations

import re
from dataclasses import dataclass

EN_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "dozen": 12,
}
EN_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
ZH_BIG = {"万": 1e4, "亿": 1e8, "万亿": 1e12}

GT = ("more than", "over", "above", "exceeding", "exceeds", "at least", "upwards of", "超过", "逾", "多于", "超", "至少")
LT = ("less than", "under", "below", "fewer than", "up to", "不到", "少于", "低于", "不足")
APPROX = ("about", "around", "approximately", "roughly", "nearly", "almost", "约", "近", "大约", "将近")
GT_AFTER = ("以上", "多")
LT_AFTER = ("以下", "以内")

# Words that say how large a number is, not what it counts ("2 million people" counts people).
NUMBER_WORDS = frozenset("million billion thousand trillion percent hundred dozen".split())

_NUM = re.compile(
    r"(?P<num>\d+(?:,\d{3})*(?:\.\d+)?)\s*(?P<scale>thousand|million|billion|trillion|万亿|万|亿|千)?\s*(?P<pct>%|percent|per cent)?",
    re.IGNORECASE,
)
_ZH_NUM = re.compile(r"(?P<num>[零〇一二两三四五六七八九十百千]+)(?P<big>万亿|万|亿)?(?P<cheng>成)?")
_EN_WORD = re.compile(r"\b(?P<w>" + "|".join(EN_WORDS) + r")(?:\s+(?P<scale>thousand|million|billion|trillion))?\b", re.I)
_EN_SCALE_ALONE = re.compile(r"\b(?P<scale>thousand|million|billion)\b", re.I)
MONTH = re.compile(r"\b(" + "|".join(MONTHS) + r")\b", re.IGNORECASE)  # an English month name
_ZH_SCALE_ALONE = re.compile(r"(?<![\d零〇一二两三四五六七八九十百])(千亿|百亿|万亿|亿)")
# Citation markers ("[1]", "[1, 2]") are not quantities.
_MARKER = re.compile(r"\[\s*\d+(?:\s*[,，]\s*\d+)*\s*\]")
# A lone Chinese numeral is a quantity only before a measure word ("三大", "两项", "一家"), not inside an
# ordinary word ("一起", "统一", "一号工程", "哪一天", "第三"). 一 also means "a": it needs a counting unit.
_ZH_MEASURE = frozenset("个家项条名位种大类层级年月日天周次倍元座只支批所台件场届期轮份张部组套款亿万千百%")
_ZH_MEASURE_ONE = frozenset("家名位年月日天周次倍元座条亿万千百%")
_ZH_NOT_AFTER = frozenset("第每哪这那同统进唯之万某任")
# English "one" as a pronoun or in a phrase ("the one who", "one of them", "no one") is not a quantity.
_EN_ONE_NOT_AFTER = re.compile(r"\b(the|this|that|which|each|every|any|no|a|another|its|their|such)\s+$", re.I)
_EN_ONE_NOT_BEFORE = re.compile(r"^(\s+(of|another|by)\b|-)", re.I)


@dataclass(frozen=True)
class Quantity:
    value: float
    percent: bool
    qualifier: str | None  # "gt", "lt", "approx" or None
    start: int
    end: int


def _zh_to_int(s: str) -> int | None:
    total, section, digit = 0, 0, None
    for ch in s:
        if ch in ZH_DIGITS:
            digit = ZH_DIGITS[ch]
        elif ch in ZH_UNITS:
            section += (digit if digit is not None else 1) * ZH_UNITS[ch]
            digit = None
        else:
            return None
    total = section + (digit or 0)
    return total


def _qualifier(text: str, start: int, end: int) -> str | None:
    before = text[max(0, start - 14) : start].lower().rstrip()
    after = text[end : end + 5].lstrip(" 元家个条名项位只座亿万")
    if before.endswith(GT) or after.startswith(GT_AFTER):
        return "gt"
    if before.endswith(LT) or after.startswith(LT_AFTER):
        return "lt"
    if before.endswith(APPROX):
        return "approx"
    return None


def extract_quantities(text: str) -> list[Quantity]:
    """Every number in the text with its normalised value; month names count as their number."""
    found: list[Quantity] = []
    taken: list[tuple[int, int]] = [(m.start(), m.end()) for m in _MARKER.finditer(text)]

    def add(value: float, percent: bool, start: int, end: int) -> None:
        if any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append(Quantity(round(value, 6), percent, _qualifier(text, start, end), start, end))

    for m in _NUM.finditer(text):
        value = float(m.group("num").replace(",", ""))
        scale = (m.group("scale") or "").lower()
        if scale in EN_SCALE:
            value *= EN_SCALE[scale]
        elif scale in ZH_BIG:
            value *= ZH_BIG[scale]
        elif scale == "千":
            value *= 1000
        add(value, bool(m.group("pct")), m.start(), m.start() + len(m.group(0).rstrip()))
    for m in _ZH_NUM.finditer(text):
        n = _zh_to_int(m.group("num"))
        if n is None:
            continue
        if len(m.group("num")) == 1 and not (m.group("big") or m.group("cheng")):
            after = text[m.end() : m.end() + 1]
            before = text[m.start() - 1 : m.start()]
            measures = _ZH_MEASURE_ONE if m.group("num") == "一" else _ZH_MEASURE
            if after not in measures or (before and before in _ZH_NOT_AFTER):
                continue
        if m.group("cheng"):
            add(n * 10, True, m.start(), m.end())
        else:
            add(n * ZH_BIG.get(m.group("big") or "", 1), False, m.start(), m.end())
    for m in _ZH_SCALE_ALONE.finditer(text):
        add({"千亿": 1e11, "百亿": 1e10, "万亿": 1e12, "亿": 1e8}[m.group(1)], False, m.start(), m.end())
    for m in _EN_WORD.finditer(text):
        value = EN_WORDS[m.group("w").lower()]
        if value == 1 and not m.group("scale") and (
            _EN_ONE_NOT_AFTER.search(text[max(0, m.start() - 12) : m.start()])
            or _EN_ONE_NOT_BEFORE.search(text[m.end() : m.end() + 9])
        ):
            continue
        scale = (m.group("scale") or "").lower()
        add(value * EN_SCALE.get(scale, 1), False, m.start(), m.end())
    for m in MONTH.finditer(text):
        if m.group(1).lower() == "may" and not re.search(r"\d", text[m.end() : m.end() + 4]):
            continue
        add(MONTHS[m.group(1).lower()], False, m.start(), m.end())
    return sorted(found, key=lambda q: q.start)


def same_value(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def values_in(text: str) -> set[float]:
    return {q.value for q in extract_quantities(text)}


def chinese_number(q: Quantity) -> str:
    """A quantity written the way a Chinese text writes it: 1,050,000 -> 105万, 1e11 -> 1000亿, 30 -> 30%."""
    v = q.value
    if q.percent:
        return f"{v:g}%"
    for unit, size in (("亿", 1e8), ("万", 1e4)):
        if abs(v) >= size and abs(v) >= 10 * size or (abs(v) >= size and (v / size) == int(v / size)):
            return f"{v / size:g}{unit}"
    return f"{v:g}"


def is_digits(token: str) -> bool:
    """A token written in digits ("49", "1,050,000", "1.05")."""
    return token.replace(".", "").replace(",", "").isdigit()


def is_numeric(token: str) -> bool:
    """A token that is part of how a number is written: digits or a scale word ("million", "percent")."""
    return is_digits(token) or token in NUMBER_WORDS
