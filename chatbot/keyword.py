"""BM25 keyword index over chunks: an inverted index with numpy postings, built at ingest, cached in index/."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chatbot.text import CJK_RUN

STOPWORDS = frozenset(
    """a an the of and or in on at to for by with from as is are was were be been being this that these
    those it its which who whom what when where why how does do did has have had will would can could
    should may might than then there their they them such into about over under also not no yes
    i you he she we our your his her my me us any all some many much more most other same so very
    just only own each both few""".split()
)
_LATIN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


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


def name_pairs(text: str) -> list[tuple[str, str]]:
    """Every pair of adjacent capitalised words, overlapping ("Guotai Junan Securities": both pairs)."""
    return _CAPS_PAIR.findall(text)


def tokenize(text: str) -> list[str]:
    """English words (stemmed, no stopwords) plus Chinese character bigrams; see bridge_tokens."""
    low = text.lower()
    tokens = [stem(w) for w in _LATIN.findall(low) if w not in STOPWORDS]
    for run in CJK_RUN.findall(low):
        tokens.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    return tokens


def bridge_tokens(text: str) -> list[str]:
    """Tokens that let a Chinese question match an English passage in BM25:
    - Chinese runs as joined pinyin syllable n-grams (国泰君安 -> guotai, junan, guotaijunan), and English
      capitalised word pairs joined (He Qing -> heqing), so transliterated names meet;
    - every number as its normalised value (千亿 and 100 billion -> #1e+11)."""
    from chatbot.numbers import extract_quantities

    out = [f"#{q.value:g}{'%' if q.percent else ''}" for q in extract_quantities(text)]
    out.extend((a + b).lower() for a, b in name_pairs(text))
    runs = CJK_RUN.findall(text)
    if runs:
        from pypinyin import lazy_pinyin

        for run in runs:
            syl = lazy_pinyin(run)
            for n in (2, 3, 4):
                out.extend("".join(syl[i : i + n]) for i in range(len(syl) - n + 1))
    return out


class BM25Index:
    """Okapi BM25 over chunks. Postings are numpy arrays per term (chunk rows, term frequency, precomputed
    BM25 weight), so a query touches only the chunks that contain its terms."""

    def __init__(self, ids: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75,
                 doc_ids: Sequence[str] | None = None) -> None:
        counts = [Counter(d) for d in docs]
        vocab: dict[str, int] = {}
        rows: list[int] = []
        terms: list[int] = []
        tfs: list[int] = []
        for row, tf in enumerate(counts):
            for term, n in tf.items():
                rows.append(row)
                terms.append(vocab.setdefault(term, len(vocab)))
                tfs.append(n)
        self._setup(ids, list(vocab), np.asarray(rows, np.int32), np.asarray(terms, np.int32),
                    np.asarray(tfs, np.int32), np.asarray([len(d) for d in docs], np.int64), k1, b, doc_ids)

    def _setup(self, ids: list[str], vocab: list[str], rows: np.ndarray, terms: np.ndarray, tfs: np.ndarray,
               lengths: np.ndarray, k1: float, b: float, doc_ids: Sequence[str] | None) -> None:
        self.ids = list(ids)
        self.k1, self.b = k1, b
        self.doc_ids = list(doc_ids) if doc_ids is not None else [""] * len(self.ids)
        self.lengths = lengths
        self.avg_len = float(lengths.mean()) if len(lengths) else 0.0
        self.vocab = vocab
        self.term_id = {t: i for i, t in enumerate(vocab)}
        # Forward index (row-major): a chunk's terms. Inverted index (term-major): a term's postings.
        self._f_rows, self._f_terms, self._f_tfs = rows, terms, tfs
        self._f_ptr = np.searchsorted(rows, np.arange(len(self.ids) + 1)) if len(rows) else np.zeros(
            len(self.ids) + 1, np.int64)
        order = np.argsort(terms, kind="stable")
        self._p_rows = rows[order]
        p_terms = terms[order]
        self._p_ptr = np.searchsorted(p_terms, np.arange(len(vocab) + 1))
        n = len(self.ids)
        df = np.diff(self._p_ptr).astype(np.float64)
        self.idf_array = np.log(1 + (n - df + 0.5) / (df + 0.5))
        f = tfs[order].astype(np.float64)
        norm = f + k1 * (1 - b + b * lengths[self._p_rows] / (self.avg_len or 1))
        self._p_weight = self.idf_array[p_terms] * f * (k1 + 1) / norm
        by_doc: dict[str, list[int]] = {}
        for row, d in enumerate(self.doc_ids):
            by_doc.setdefault(d, []).append(row)
        self._doc_rows = {d: np.asarray(rows_, dtype=np.int64) for d, rows_ in by_doc.items()}
        self._row_of = {cid: i for i, cid in enumerate(self.ids)}
        self.extra: dict[str, int | str] = {}

    def chunk_share(self, term: str) -> float:
        """The share of indexed chunks that contain the term (0 when none does)."""
        i = self.term_id.get(term)
        return 0.0 if i is None or not self.ids else float(self._p_ptr[i + 1] - self._p_ptr[i]) / len(self.ids)

    @property
    def idf(self) -> dict[str, float]:
        return {t: float(self.idf_array[i]) for i, t in enumerate(self.vocab)}

    @classmethod
    def build(cls, ids: list[str], texts: list[str], doc_ids: Sequence[str] | None = None) -> BM25Index:
        return cls(ids, [tokenize(t) + bridge_tokens(t) for t in texts], doc_ids=doc_ids)

    def _score_array(self, query: str) -> np.ndarray:
        scores = np.zeros(len(self.ids), dtype=np.float64)
        for t in set(tokenize(query) + bridge_tokens(query)):
            i = self.term_id.get(t)
            if i is not None:
                lo, hi = self._p_ptr[i], self._p_ptr[i + 1]
                scores[self._p_rows[lo:hi]] += self._p_weight[lo:hi]  # a term's rows are distinct
        return scores

    def scores(self, query: str) -> dict[str, float]:
        """chunk id -> BM25 score, for the chunks that match at all."""
        scores = self._score_array(query)
        return {self.ids[i]: float(scores[i]) for i in np.flatnonzero(scores > 0)}

    def top(self, query: str, k: int, doc_ids: frozenset[str] | None = None) -> list[tuple[str, float]]:
        """The k best-scoring chunks (only of doc_ids when given), best first; ties in index order."""
        scores = self._score_array(query)
        if doc_ids is not None:
            mask = np.zeros(len(self.ids), dtype=bool)
            for d in doc_ids:
                if d in self._doc_rows:
                    mask[self._doc_rows[d]] = True
            scores[~mask] = 0.0
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
            # argpartition cuts ties arbitrarily at the k-th score: take every chunk with that score, then cut
            kth = scores[hits].min()
            hits = np.flatnonzero(scores >= kth) if kth > 0 else hits
        hits = hits[np.lexsort((hits, -scores[hits]))][:k]
        return [(self.ids[i], float(scores[i])) for i in hits]

    def terms(self, row: int) -> frozenset[str]:
        """A chunk's distinct terms (its words and bridge tokens)."""
        lo, hi = self._f_ptr[row], self._f_ptr[row + 1]
        return frozenset(self.vocab[t] for t in self._f_terms[lo:hi])

    def row(self, chunk_id: str) -> int | None:
        return self._row_of.get(chunk_id)

    def tokens_of(self, chunk_id: str) -> frozenset[str] | None:
        """A chunk's distinct terms by chunk id (None: not in this index)."""
        row = self._row_of.get(chunk_id)
        return None if row is None else self.terms(row)

    def term_counts(self, row: int) -> list[str]:
        """A chunk's tokens with repeats (order lost): what it was built from, to rebuild an index."""
        lo, hi = self._f_ptr[row], self._f_ptr[row + 1]
        return [self.vocab[t] for t, n in zip(self._f_terms[lo:hi], self._f_tfs[lo:hi]) for _ in range(n)]

    def save(self, path: Path, **extra: int | str) -> None:
        """To path (an .npz), written under a temporary name and renamed: readers never see half a file."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, ids=np.asarray(self.ids, dtype=str), doc_ids=np.asarray(self.doc_ids, dtype=str),
                 vocab=np.asarray(self.vocab, dtype=str), rows=self._f_rows, terms=self._f_terms, tfs=self._f_tfs,
                 lengths=self.lengths, params=np.asarray([self.k1, self.b]),
                 **{f"extra_{k}": np.asarray(v) for k, v in extra.items()})  # type: ignore[arg-type]
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        with np.load(path, allow_pickle=False) as data:
            index = cls.__new__(cls)
            k1, b = (float(x) for x in data["params"])
            index._setup([str(x) for x in data["ids"]], [str(x) for x in data["vocab"]], data["rows"],
                         data["terms"], data["tfs"], data["lengths"], k1, b, [str(x) for x in data["doc_ids"]])
            index.extra = {k.removeprefix("extra_"): data[k].item() for k in data.files if k.startswith("extra_")}
        return index
