"""Real texts for the quality rules' tests, made at run time from the dump samples of ../shared/realdata
(see its SOURCES.md) by the project's own readers, as the pipeline would see them: C4 pages, the text
trafilatura extracts from real web pages (the 110 HTML pages of trafilatura's evaluation set and the
HTML responses of the WARC samples), the plain text of a WET record, Wikipedia articles, Stack Exchange
threads, Gutenberg books and arXiv LaTeX bodies. Nothing of their text is stored in the repository.

`real_texts(realdata)` returns `RealText(kind, id, text)` tuples, in a fixed order; it is computed once
per process (extraction takes some seconds)."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from llamapipe.pipeline.stages.extract_subprocess import PageExtractor
from llamapipe.sources import books, c4, commoncrawl, stackexchange, wikipedia


class RealText(NamedTuple):
    kind: str  # c4, web (extracted HTML), wet, wikipedia, stackexchange, books, arxiv
    id: str
    text: str


def _documents(outputs) -> list[dict]:
    return [item for item in outputs if isinstance(item, dict)]


def c4_pages(realdata: Path) -> list[RealText]:
    """The 20 real C4 (en) documents, as the C4 reader gives them."""
    reader = c4.ReadC4FileDoFn(c4.Options())
    return [RealText("c4", doc["id"], doc["text"])
            for path in sorted((realdata / "c4").glob("*.json.gz"))
            for doc in _documents(reader.process(str(path)))]


def _web_pages(realdata: Path) -> list[RealText]:
    extract = PageExtractor(favor_precision=False, favor_recall=False, include_tables=False)
    texts = []
    html_folder = realdata / "html_extraction" / "trafilatura" / "html"
    for path in sorted(html_folder.glob("*.html")):
        result = extract(path.read_bytes())
        if result.text:
            texts.append(RealText("web", f"trafilatura:{path.name}", result.text))
    reader = commoncrawl.ReadWarcFileDoFn(commoncrawl.Options())
    for path in sorted((realdata / "commoncrawl").glob("*.warc*")):
        for doc in _documents(reader.process(str(path))):
            if "html" in doc:
                result = extract(doc["html"], doc["url"])
                if result.text:
                    texts.append(RealText("web", doc["id"], result.text))
            elif doc["text"].strip():
                texts.append(RealText("wet", doc["id"], doc["text"]))
    return texts


def _wikipedia_articles(realdata: Path) -> list[RealText]:
    reader = wikipedia.ReadDumpFile(wikipedia.Options())
    return [RealText("wikipedia", doc["id"], doc["text"])
            for path in sorted((realdata / "wikipedia").glob("*.bz2"))
            for doc in _documents(reader.process(str(path)))]


def _stackexchange_threads(realdata: Path) -> list[RealText]:
    path = realdata / "stackexchange" / "coffee.stackexchange.com_Posts.xml"
    groups = defaultdict(list)
    for item in stackexchange.ReadPostsDoFn().process(str(path)):
        if isinstance(item, tuple):
            groups[item[0]].append(item[1])
    assemble = stackexchange.AssembleThreadDoFn(stackexchange.Options())
    threads = [doc for keyed in groups.items() for doc in _documents(assemble.process(keyed))]
    threads.sort(key=lambda doc: doc["id"])
    return [RealText("stackexchange", doc["id"], doc["text"]) for doc in threads]


def _books(realdata: Path) -> list[RealText]:
    reader = books.ReadBookFile(books.Options())
    return [RealText("books", doc["id"], doc["text"])
            for path in sorted((realdata / "books").glob("*.txt"))
            for doc in _documents(reader.process(str(path)))]


def _arxiv_bodies(realdata: Path) -> list[RealText]:
    """RedPajama-cleaned LaTeX bodies (the sample's own output format)."""
    path = realdata / "arxiv" / "llm-foundry_redpajama-arxiv-format_example.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [RealText("arxiv", f"arxiv:{row['meta']['arxiv_id']}", row["text"]) for row in rows]


@lru_cache(maxsize=2)
def real_texts(realdata: Path) -> tuple[RealText, ...]:
    return tuple(c4_pages(realdata) + _web_pages(realdata) + _wikipedia_articles(realdata)
                 + _stackexchange_threads(realdata) + _books(realdata) + _arxiv_bodies(realdata))
