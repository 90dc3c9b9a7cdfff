"""The instruction detector on every corpus the project has: false flags on the two real corpora (target 0), and
the injected lines of the injection and adversarial sets it finds (dev and test apart). Prints the sentences of
the real corpora closest to an instruction prototype, which is where `instruction_similarity` was set.
Writes bench/results/instruction-flags.json. Loads only the multilingual embedder (no LLM, no index)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatbot.chunking import split_sentences  # noqa: E402
from chatbot.config import Settings  # noqa: E402
from chatbot.corpus import load_corpus  # noqa: E402
from chatbot.embeddings import USEEmbedder  # noqa: E402
from chatbot.instructions import InstructionDetector, hidden_instructions, visible  # noqa: E402

REAL = {"initiative": REPO / "corpus", "other": REPO / "eval" / "corpora" / "other" / "corpus"}
ADVERSARIAL = REPO / "eval" / "corpora" / "adversarial"
INJECTION = REPO / "eval" / "corpora" / "injection"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patterns-only", action="store_true", help="no embedder: the patterns alone")
    parser.add_argument("--closest", type=int, default=8, help="benign sentences to print, closest first")
    parser.add_argument("--held-out", action="store_true",
                        help="also the held-out documents (all their questions in the test split): the final "
                             "measurement, never used for tuning")
    args = parser.parse_args()
    settings = Settings()
    embedder = None if args.patterns_only else USEEmbedder(threads=settings.llm_threads)
    detector = InstructionDetector(embedder, min_similarity=settings.instruction_similarity,
                                   min_similarity_hidden=settings.instruction_similarity_hidden,
                                   block_sentences=settings.instruction_block_sentences)
    result: dict = {"settings": {"instruction_similarity": settings.instruction_similarity,
                                 "instruction_similarity_hidden": settings.instruction_similarity_hidden,
                                 "embedder": None if embedder is None else "use"}}
    for name, folder in REAL.items():
        scan = load_corpus(folder)
        flags, closest = [], []
        for doc in scan.documents:
            for f in detector.flags(doc.text):
                flags.append({"doc": doc.doc_id, "text": doc.text[f.start : f.end], "reason": f.reason})
            sentences = [doc.text[s.start : s.end] for s in split_sentences(doc.text)]
            sims = detector.similarities(sentences)
            if sims is not None:
                closest += [(float(x), doc.doc_id, s) for x, s in zip(sims, sentences, strict=True)]
        closest.sort(reverse=True)
        sentences_n = sum(len(split_sentences(d.text)) for d in scan.documents)
        result[name] = {"documents": len(scan.documents), "sentences": sentences_n, "false_flags": len(flags),
                        "flags": flags, "closest": [{"similarity": round(x, 3), "doc": d, "text": s}
                                                    for x, d, s in closest[: args.closest]]}
        print(f"{name}: {len(scan.documents)} documents, {sentences_n} sentences, {len(flags)} false flags")
        for f in flags:
            print(f"  FLAG {f['doc']}: {f['reason']}: {f['text'][:100]}")
        for x, d, s in closest[: args.closest]:
            print(f"  {x:.3f} {d}: {s[:100]}")
    for name, folder in {"injection": INJECTION, "adversarial": ADVERSARIAL}.items():
        items = [json.loads(line) for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
        scan = load_corpus(folder / "corpus")
        by_file = {Path(d.source).name: d for d in scan.documents}
        # A document is held out when every question about it is in the test split.
        doc_split = {i["doc"]: "dev" for i in items if i.get("split", "dev") == "dev"}
        doc_split.update({i["doc"]: "held-out" for i in items if i["doc"] not in doc_split})
        seen: set[tuple[str, str]] = set()
        rows = []
        for item in items:
            if not item.get("injected") or (item["doc"], item["injected"]) in seen:
                continue
            if doc_split[item["doc"]] == "held-out" and not args.held_out:
                continue
            seen.add((item["doc"], item["injected"]))
            doc = by_file[item["doc"]]
            text = visible(doc.text)
            at = text.find(visible(item["injected"]))
            flags = detector.flags(text)
            hidden = hidden_instructions(folder / "corpus" / item["doc"], detector)
            found = (at >= 0 and any(f.start <= at < f.end for f in flags)) or (
                at < 0 and any(visible(item["injected"]) in visible(h) for h, _ in hidden))
            rows.append({"doc": item["doc"], "split": doc_split[item["doc"]], "injected": item["injected"],
                         "in_text": at >= 0, "found": found})
        found_by = {split: f"{sum(r['found'] for r in rows if r['split'] == split)}/"
                           f"{sum(r['split'] == split for r in rows)}" for split in sorted({r["split"] for r in rows})}
        result[name] = {"injected_lines": found_by, "missed": [r for r in rows if not r["found"]]}
        print(f"{name}: injected lines found {found_by}")
        for r in rows:
            if not r["found"]:
                print(f"  MISSED {r['split']} {r['doc']}: {r['injected']}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "instruction-flags.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
