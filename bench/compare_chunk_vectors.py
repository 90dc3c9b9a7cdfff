"""Retrieval with chunk vectors embedded from each chunk's text vs made from its sentences' vectors.

Indexes the initiative corpus and the second corpus (eval/corpora/other) both ways into a temporary folder and
retrieves every `dev` question of eval/gold.jsonl and every question of the second corpus (no LLM; the question
is not translated). Prints and writes to bench/results/chunk-vectors.json: texts embedded, hit@1/hit@3 of the
gold evidence among the retrieved chunks, evidence hits (a gold evidence string in the evidence given to the
model), relevance decisions, and how many questions got the same chunks, evidence and relevance both ways.
Usage: python bench/compare_chunk_vectors.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatbot.config import Settings  # noqa: E402
from chatbot.embeddings import load_embedders  # noqa: E402
from chatbot.ingest import build_index  # noqa: E402
from chatbot.query import analyse_question  # noqa: E402
from chatbot.retrieval import HybridRetriever  # noqa: E402


def gold(path: Path, split: str | None) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [g for g in rows if split is None or g.get("split") == split]


def main() -> int:
    sets = [("initiative", REPO / "corpus", gold(REPO / "eval" / "gold.jsonl", "dev")),
            ("other", REPO / "eval" / "corpora" / "other" / "corpus",
             gold(REPO / "eval" / "corpora" / "other" / "gold.jsonl", None))]
    embedders = load_embedders(Settings())
    runs: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="chunk-vectors-") as tmp:
        for mode in ("text", "sentences"):
            for name, corpus, questions in sets:
                s = Settings(index_dir=Path(tmp) / f"{name}-{mode}", chunk_vectors=mode, query_translation=False)
                summary = build_index(s, corpus_dir=corpus, embedders=embedders, progress=False)
                retriever = HybridRetriever(s, embedders)
                rows = []
                for g in questions:
                    got = retriever.retrieve(analyse_question(g["question"]))
                    ev = g.get("evidence") or []
                    rows.append({"id": g["id"], "answerable": bool(ev), "relevant": got.relevant,
                                 "chunks": [c.chunk.chunk_id for c in got.chunks],
                                 "hit": [any(e in c.chunk.text for e in ev) for c in got.chunks],
                                 "evidence": [(x.start, x.end) for x in got.evidence],
                                 "evidence_hit": any(e in x.context_text or e in x.text or x.text in e
                                                     for e in ev for x in got.evidence)})
                runs[(name, mode)] = {"texts_embedded": summary.embedded_texts, "rows": rows}
    out: dict[str, dict] = {}
    for name, _, _ in sets:
        report: dict[str, dict] = {}
        for mode in ("text", "sentences"):
            rows = runs[(name, mode)]["rows"]
            ans = [r for r in rows if r["answerable"]]
            report[mode] = {"texts_embedded": runs[(name, mode)]["texts_embedded"], "answerable": len(ans),
                            "hit_at_1": sum(r["hit"][:1] == [True] for r in ans),
                            "hit_at_3": sum(any(r["hit"][:3]) for r in ans),
                            "evidence_hit": sum(r["evidence_hit"] for r in ans),
                            "relevant_answerable": sum(r["relevant"] for r in ans),
                            "relevant_unanswerable": sum(r["relevant"] for r in rows if not r["answerable"]),
                            "unanswerable": len(rows) - len(ans)}
            print(f"{name:10s} {mode:9s} " + ", ".join(f"{k} {v}" for k, v in report[mode].items()))
        a, b = runs[(name, "text")]["rows"], runs[(name, "sentences")]["rows"]
        report["same"] = {"questions": len(a), "chunks": sum(x["chunks"] == y["chunks"] for x, y in zip(a, b)),
                          "evidence": sum(x["evidence"] == y["evidence"] for x, y in zip(a, b)),
                          "relevance": sum(x["relevant"] == y["relevant"] for x, y in zip(a, b))}
        print(f"{name:10s} same both ways: " + ", ".join(f"{k} {v}" for k, v in report["same"].items()))
        out[name] = report
    path = REPO / "bench" / "results" / "chunk-vectors.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"Written {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
