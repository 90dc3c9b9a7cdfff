"""Capitalised names in English text ("Guotai Junan Securities", "Lin Mei"), without the capitalised function
words that start sentences. General English only."""

from __future__ import annotations

import re

COMMON_CAPS = frozenset(
    "The A An It Its This That These Those In On At By For From To With As He She They Their There Yes No "
    "According Both Each All And But Or So Also However Not Only One Two Three Four Five Some Many Most Our "
    "We Our I You Your His Her If When While Since After Before During Under Over Of Into Then Than What "
    "Which Who Whom Whose Where Why How Is Are Was Were Do Does Did Has Have Had Can Could Will Would".split()
)
# A pronoun directly followed by another capitalised word cannot be a pronoun (a verb would follow it), so
# "He Qing" or "It Works Ltd" keep their first word; "The Airport Group" drops its article.
_PRONOUNS = frozenset("He She It We I You They".split())
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9+\-]*(?:['’]s)?")
NAME_RUN = re.compile(r"\b[A-Z][A-Za-z0-9+\-]*(?:\s+[A-Z][A-Za-z0-9+\-]*)*")


def names_in(sentence: str) -> list[str]:
    """Capitalised words that are names rather than sentence-initial function words or numbers ("Eleven")."""
    from chatbot.numbers import EN_WORDS

    out = []
    for run in name_runs(sentence):
        for word in run.split():
            word = re.sub(r"['’]s$", "", word)
            if word.lower() in EN_WORDS:
                continue
            if len(word) >= 2 and (word not in COMMON_CAPS or word in _PRONOUNS):
                out.append(word)
    return out


def name_runs(text: str) -> list[str]:
    """Runs of capitalised words with leading function words removed: "The Airport Group" -> "Airport Group"."""
    runs = []
    for m in NAME_RUN.finditer(text):
        parts = m.group(0).split()
        while parts and parts[0] in COMMON_CAPS and not (parts[0] in _PRONOUNS and len(parts) > 1):
            parts = parts[1:]
        if len(parts) == 1 and parts[0] in COMMON_CAPS:
            continue
        if parts:
            runs.append(" ".join(parts))
    return runs


def name_run_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of name_runs() in text."""
    spans = []
    for m in NAME_RUN.finditer(text):
        parts = m.group(0).split()
        start = m.start()
        while parts and parts[0] in COMMON_CAPS and not (parts[0] in _PRONOUNS and len(parts) > 1):
            start = text.index(parts[1], start + len(parts[0])) if len(parts) > 1 else m.end()
            parts = parts[1:]
        if parts and not (len(parts) == 1 and parts[0] in COMMON_CAPS):
            spans.append((start, m.end()))
    return spans


_CJK = re.compile(r"[\u3400-\u9fff]+")


def pinyin_glosses(question: str, sources: list[str], common_words: frozenset[str],
                   max_chars: int = 6) -> list[tuple[str, str]]:
    """(characters, English name) for each name a Chinese question writes in characters that the sources write
    in pinyin: 贺青 -> "He Qing", 国泰君安 -> "Guotai Junan", 太平 -> "Taiping". English names are pairs of
    capitalised words and whole runs of capitalised words that are no English words (not in common_words), so
    "Guotai" alone (half of a name) or "Group" never match. The longest match wins. General: it reads only
    the question and the passages."""
    from chatbot.keyword import name_pairs

    runs = _CJK.findall(question)
    if not runs:
        return []
    text = " ".join(sources)
    names: dict[str, str] = {}
    for a, b in name_pairs(text):
        names.setdefault((a + b).lower(), f"{a} {b}")
    for run in name_runs(text):  # runs of words that are no English words: "Guotai Junan", "Taiping", "Zhiji"
        group: list[str] = []
        for word in [*run.split(), ""]:
            if word.isalpha() and word.lower() not in common_words:
                group.append(word)
                continue
            if len(group) > 1 or (group and len(group[0]) >= 4):
                names.setdefault("".join(group).lower(), " ".join(group))
            group = []
    if not names:
        return []
    from pypinyin import lazy_pinyin

    out: list[tuple[str, str]] = []
    for run in runs:
        syllables = lazy_pinyin(run)
        i = 0
        while i < len(run) - 1:
            for n in range(min(max_chars, len(run) - i), 1, -1):
                name = names.get("".join(syllables[i : i + n]).lower())
                if name is not None:
                    if (run[i : i + n], name) not in out:
                        out.append((run[i : i + n], name))
                    i += n
                    break
            else:
                i += 1
    return out


def glossed(question: str, glosses: list[tuple[str, str]]) -> str:
    """The question with each gloss's English name after its first occurrence: 贺青（He Qing）担任什么职务？"""
    for chinese, english in glosses:
        at = question.find(chinese)
        if at >= 0 and f"{chinese}（" not in question:
            at += len(chinese)
            question = f"{question[:at]}（{english}）{question[at:]}"
    return question


_ECHO = re.compile(r"([A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)*)\s*[（(]\1[）)]")


def unglossed(answer: str, glosses: list[tuple[str, str]]) -> str:
    """An answer without the glosses the model copied from the question (中国太平（Taiping） -> 中国太平) or echoed
    after the English name (Cheng Peng（Cheng Peng） -> Cheng Peng)."""
    for chinese, english in glosses:
        answer = answer.replace(f"{chinese}（{english}）", chinese).replace(f"{chinese}({english})", chinese)
    return _ECHO.sub(r"\1", answer)
