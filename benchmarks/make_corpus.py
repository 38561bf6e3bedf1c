"""The demo corpus scaled to about N documents, in the seven sources' real formats.

    python benchmarks/make_corpus.py --docs 20000 --out /tmp/corpus-20k

The demo corpus (`llamapipe demo-data`) is a pure function of (seed, scale) with about 2,130 documents
at scale 1; this picks the scale for N, writes it and prints the documents per source and the bytes on
disk. Its duplicates, foreign pages and rule breakers scale with it, so every stage has the same kind of
work at every size.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from llamapipe.sources.demo import write_demo_corpus

DOCS_AT_SCALE_ONE = 2130


def corpus_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "plants.json")


def make_corpus(docs: int, out: str, seed: int = 0) -> dict:
    scale = docs / DOCS_AT_SCALE_ONE
    summary = write_demo_corpus(out, seed=seed, scale=scale)
    return {"scale": round(scale, 4), "documents": summary["total"], "bytes": corpus_bytes(Path(out)),
            "per_source": summary["documents"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, required=True, help="documents wanted (about)")
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    info = make_corpus(args.docs, args.out, args.seed)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
