"""The demo corpus: a small corpus in the real dump format of each of the seven LLaMA sources.

`write_demo_corpus(out_dir, seed, scale)` writes

    commoncrawl/CC-MAIN-demo-0000{0..3}.warc.gz      WARC/1.0 warcinfo/request/response/metadata records
    c4/c4-train.0000{0,1}-of-00002.json.gz           {"text", "timestamp", "url"} lines
    github/github-0000{0,1}.jsonl.gz                  {"content", "repo_name", "path", "license", "language"}
    wikipedia/enwiki-20240601-pages-articles.xml.bz2  MediaWiki export XML (schema 0.10)
    books/pg<NNNNN>.txt                               Project Gutenberg plain text (UTF-8, CRLF)
    arxiv/<yymm.nnnnn>.tar.gz and <id>.gz             LaTeX sources (tarball, or one gzipped .tex)
    stackexchange/<site>.stackexchange.com/Posts.xml  Stack Exchange dump rows
    evals/demo_eval.jsonl                             a small evaluation set (`evals.py`), some of whose
                                                      text a few C4 documents copy (decontamination)
    plants.json                                       what was planted, by category

One writer module per format (`commoncrawl`, `c4`, `github`, `wikipedia`, `books`, `arxiv`,
`stackexchange`); the sites and pages of the two web sources in `web`, what they all share (counts at a
scale, seeded draws, `Plants`) in `common`. All text comes from `text.py` (templates and word lists
written for this project). The output is a pure function of (seed, scale): every draw comes from a
`random.Random` seeded from them, gzip headers carry mtime 0, tar members fixed times, and WARC dates and
record ids come from the rng.

Each document is generated from its own small seed when it is written, so memory stays flat at large
scales; a duplicate regenerates its original from the original's seed.

`plants.json` names every planted item by `source` and `id` (the document id the reader emits:
`commoncrawl:<uuid>`, `c4:<file>:<line>`, `github:<repo>/<path>`, `wikipedia:en/<page id>`,
`books:pg<N>`, `arxiv:<id>`, `stackexchange:<site host>/<question id>`), plus `url` where the source has
one (CommonCrawl pages are most easily matched by URL). Pairs (duplicates) are lists of two items.
`normal_english` lists the CommonCrawl pages and C4 documents that every quality filter should keep.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from llamapipe.sources.demo.arxiv import ArxivWriter
from llamapipe.sources.demo.books import BooksWriter
from llamapipe.sources.demo.c4 import C4Writer
from llamapipe.sources.demo.common import Plants
from llamapipe.sources.demo.commoncrawl import CommonCrawlWriter
from llamapipe.sources.demo.github import GithubWriter
from llamapipe.sources.demo.stackexchange import StackExchangeWriter
from llamapipe.sources.demo.wikipedia import WikipediaWriter

# --- entry point ------------------------------------------------------------------------------------------

# Files this module writes; those left by an earlier run (another seed or scale) are removed first, so
# the readers' globs never mix two corpora.
OUTPUT_PATTERNS = {
    "commoncrawl": ("CC-MAIN-demo-*.warc.gz",), "c4": ("c4-train.*.json.gz",),
    "github": ("github-*.jsonl.gz",), "wikipedia": ("enwiki-*-pages-articles.xml.bz2",),
    "books": ("pg*.txt",), "arxiv": ("*.tar.gz", "*.gz"),
    "stackexchange": ("*.stackexchange.com/Posts.xml",),
}

def make_writers(seed: int, scale: float, plants: Plants) -> dict:
    """Each source's writer, planned: one random stream per source (sources do not shift each other), the
    crawl planned after C4 (it copies some C4 pages), Wikipedia citing the crawl's pages and Stack Exchange
    linking to them. `benchmarks/make_corpus.py` makes them the same way to write a corpus in parallel."""

    def rng_for(source: str) -> random.Random:
        return random.Random(f"llamapipe-demo:{seed}:{source}")

    c4 = C4Writer(rng_for("c4"), scale, plants, evals_rng=rng_for("evals"))
    commoncrawl = CommonCrawlWriter(rng_for("commoncrawl"), scale, plants)
    commoncrawl.plan(c4.cross_source)
    return {
        "commoncrawl": commoncrawl,
        "c4": c4,
        "github": GithubWriter(rng_for("github"), scale, plants),
        "wikipedia": WikipediaWriter(rng_for("wikipedia"), scale, plants, commoncrawl.cited_pages()),
        "books": BooksWriter(rng_for("books"), scale, plants),
        "arxiv": ArxivWriter(rng_for("arxiv"), scale, plants),
        "stackexchange": StackExchangeWriter(rng_for("stackexchange"), scale, plants,
                                             commoncrawl.normal_urls()[:50]),
    }


def write_demo_corpus(out_dir: str | Path, seed: int = 0, scale: float = 1.0) -> dict:
    """Write the demo corpus under `out_dir` and its `plants.json`.

    Returns {"documents": {source: count as the readers count them}, "total": n, "seed", "scale"}.
    `scale` multiplies the number of documents (at least one of every planted kind is kept).
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plants = Plants()
    writers = make_writers(seed, scale, plants)
    for source, patterns in OUTPUT_PATTERNS.items():
        for pattern in patterns:
            for stale in (out / source).glob(pattern):
                stale.unlink()
    documents = {source: writer.write(out / source) for source, writer in writers.items()}
    summary = {"documents": documents, "total": sum(documents.values()), "seed": seed, "scale": scale}
    manifest = {**summary, **plants.to_json()}
    (out / "plants.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    return summary
