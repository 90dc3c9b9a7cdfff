"""BM25 keyword index over chunks, built at ingest and saved beside the Chroma data."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

STOPWORDS = frozenset(
    """a an the of and or in on at to for by with from as is are was were be been being this that these
    those it its which who whom what when where why how does do did has have had will would can could
    should may might than then there their they them such into about over under also not no yes
    i you he she we our your his her my me us any all some many much more most other same so very
    just only own each both few""".split()
)
_LATIN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")


IRREGULAR = {"said": "say", "says": "say", "made": "make", "built": "build", "held": "hold", "took": "take",
             "gave": "give", "went": "go", "led": "lead", "set": "set", "began": "begin", "brought": "bring",
             "chose": "choose", "chosen": "choose", "spent": "spend", "won": "win", "met": "meet"}


def stem(word: str) -> str:
    """A light English stemmer: enough to match plurals and verb forms."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + repl
    return word


_CAPS_PAIR = re.compile(r"\b([A-Z][a-z]+)\s+(?=([A-Z][a-z]+)\b)")


def tokenize(text: str) -> list[str]:
    """English words (stemmed, no stopwords) plus Chinese character bigrams; see bridge_tokens."""
    low = text.lower()
    tokens = [stem(w) for w in _LATIN.findall(low) if w not in STOPWORDS]
    for run in _CJK_RUN.findall(low):
        tokens.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    return tokens


def bridge_tokens(text: str) -> list[str]:
    """Tokens that let a Chinese question match an English passage in BM25:
    - Chinese runs as joined pinyin syllable n-grams (国泰君安 -> guotai, junan, guotaijunan), and English
      capitalised word pairs joined (He Qing -> heqing), so transliterated names meet;
    - every number as its normalised value (千亿 and 100 billion -> #1e+11)."""
    from chatbot.numbers import extract_quantities

    out = [f"#{q.value:g}{'%' if q.percent else ''}" for q in extract_quantities(text)]
    out.extend((a + b).lower() for a, b in _CAPS_PAIR.findall(text))
    runs = _CJK_RUN.findall(text)
    if runs:
        from pypinyin import lazy_pinyin

        for run in runs:
            syl = lazy_pinyin(run)
            for n in (2, 3, 4):
                out.extend("".join(syl[i : i + n]) for i in range(len(syl) - n + 1))
    return out


class BM25Index:
    def __init__(self, ids: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.ids = ids
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lengths = [len(d) for d in docs]
        self.avg_len = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    @classmethod
    def build(cls, ids: list[str], texts: list[str]) -> BM25Index:
        return cls(ids, [tokenize(t) + bridge_tokens(t) for t in texts])

    def scores(self, query: str) -> dict[str, float]:
        terms = set(tokenize(query) + bridge_tokens(query))
        out: dict[str, float] = {}
        for cid, tf, length in zip(self.ids, self.tfs, self.lengths):
            s = 0.0
            for t in terms:
                f = tf.get(t)
                if f:
                    norm = f + self.k1 * (1 - self.b + self.b * length / (self.avg_len or 1))
                    s += self.idf[t] * f * (self.k1 + 1) / norm
            if s > 0:
                out[cid] = s
        return out

    def save(self, path: Path) -> None:
        data = {"k1": self.k1, "b": self.b, "ids": self.ids, "tfs": [dict(tf) for tf in self.tfs]}
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        data = json.loads(path.read_text(encoding="utf-8"))
        docs = [[t for t, n in tf.items() for _ in range(n)] for tf in data["tfs"]]
        return cls(data["ids"], docs, data["k1"], data["b"])
