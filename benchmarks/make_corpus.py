"""The demo corpus scaled to about N documents, in the seven sources' real formats.

    python benchmarks/make_corpus.py --docs 20000 --out /tmp/corpus-20k
    python benchmarks/make_corpus.py --docs 1000000 --out /tmp/corpus-1m --jobs 2
    python benchmarks/make_corpus.py --check --docs 4000 --jobs 2   # --jobs writes the same bytes as one

The demo corpus (`llamapipe demo-data`) is a pure function of (seed, scale) with about 2,130 documents
at scale 1; this picks the scale for N, writes it and prints the documents per source and the bytes on
disk. Its duplicates, foreign pages and rule breakers scale with it, so every stage has the same kind of
work at every size.

One process writes about 700 documents/s (20,000 in 30 s, a million in about 25 minutes). `--jobs N`
writes the same files with N processes (about 1.7x faster with 2): each plans the whole corpus as
`write_demo_corpus` does (a few percent of the work), then they share out the sources and the Common
Crawl WARC files (more than half of the work). A process goes through the WARC files it does not write
without pages or records: each file's record ids and headers draw from one random stream, which the
pages do not touch, so it is then where it would be after writing them. `plants.json` is put together
from what each process planted. This follows the insides of `sources/demo/` (`corpus.py` and its writers,
one module per format; the WARC file names and sizes of `commoncrawl.py`): `--check` writes a corpus both
ways and compares every file, to be run after a change there.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

from llamapipe.sources.demo import commoncrawl as demo_crawl  # whose WARCWriter a skipped file swaps out
from llamapipe.sources.demo import write_demo_corpus
from llamapipe.sources.demo.common import WARC_FILES, Plants, scaled_files
from llamapipe.sources.demo.corpus import OUTPUT_PATTERNS, make_writers

DOCS_AT_SCALE_ONE = 2130
# Relative cost of writing each source but Common Crawl (seconds per 20,000 documents, one process):
# the larger ones go first, then the Common Crawl files fill the processes up evenly.
SOURCE_COST = {"c4": 2.9, "wikipedia": 2.4, "books": 2.1, "stackexchange": 1.7, "arxiv": 1.4, "github": 0.2}
CC_CHUNKS_PER_JOB = 8
SOURCES = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")  # as written


def corpus_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "plants.json")


def make_corpus(docs: int, out: str, seed: int = 0, jobs: int = 1) -> dict:
    scale = docs / DOCS_AT_SCALE_ONE
    started = time.perf_counter()
    summary = (write_demo_corpus(out, seed=seed, scale=scale) if jobs <= 1
               else write_corpus_parallel(out, seed, scale, jobs))
    return {"scale": round(scale, 4), "documents": summary["total"], "bytes": corpus_bytes(Path(out)),
            "per_source": summary["documents"], "seconds": round(time.perf_counter() - started, 1),
            "jobs": max(jobs, 1)}


# --- --jobs: write_demo_corpus shared out over processes ---------------------------------------------------

class _Plants(Plants):
    """The demo's Plants, also telling what one task planted: the entries added since `mark()` (by
    category, in the order the categories were first added to) and the planned entries' refs of a source
    (a reader's id is set when its source is written)."""

    def __init__(self) -> None:
        super().__init__()
        self.mark()

    def mark(self) -> None:
        self._lengths = {category: len(entries) for category, entries in self._entries.items()}
        self._touched: dict[str, None] = {}

    def add(self, category: str, ref, **details) -> None:
        self._touched[category] = None
        super().add(category, ref, **details)

    def pair(self, category: str, first, second) -> None:
        self._touched[category] = None
        super().pair(category, first, second)

    def added(self) -> dict[str, list]:
        return _as_json({category: self._entries[category][self._lengths.get(category, 0):]
                         for category in self._touched})

    def planned(self) -> dict[str, list]:
        return _as_json({category: entries[:self._planned[category]]
                         for category, entries in self._entries.items() if category in self._planned})

    def planned_refs(self, source: str) -> list[tuple]:
        """(category, entry, position in a pair or None, the entry's JSON there) of the planned entries
        whose ref is from `source`."""
        found = []
        for category, count in self._planned.items():
            for index, entry in enumerate(self._entries[category][:count]):
                if isinstance(entry, list):
                    found += [(category, index, position, item) for position, item in
                              enumerate(_as_json({category: [entry]})[category][0])
                              if entry[position].source == source]
                elif entry[0].source == source:
                    found.append((category, index, None, _as_json({category: [entry]})[category][0]))
        return found


def _as_json(entries: dict[str, list]) -> dict[str, list]:
    plants = Plants()
    plants._entries.update(entries)
    return plants.to_json()


def _plan(seed: int, scale: float) -> tuple[dict, _Plants]:
    """write_demo_corpus's writers, made by its own `make_writers` (same random streams, same order)."""
    plants = _Plants()
    writers = make_writers(seed, scale, plants)
    plants._planned = {category: len(entries) for category, entries in plants._entries.items()}
    return writers, plants


_WORKER: dict = {}
_WARCWriter = demo_crawl.WARCWriter


class _NoRecords:
    """A WARC writer that writes nothing: a skipped file's records (their random draws are made before)."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def create_warc_record(self, *args, **kwargs) -> None:
        return None

    def write_record(self, record) -> None:
        pass


def _run_task(job: tuple) -> dict:
    """One task of a process: one source written whole, ("commoncrawl", first file, end file), or
    ("plan",). The process plans the corpus at its first (in a task, so that a failure is raised)."""
    (out, seed, scale), task = job
    w, source = _WORKER, task[0]
    if not w:
        writers, plants = _plan(seed, scale)
        w.update(out=Path(out), scale=scale, writers=writers, plants=plants, captures=None, next_file=0)
    plants = w["plants"]
    if source == "plan":
        return {"source": "plan", "planned": plants.planned()}
    if source != "commoncrawl":
        plants.mark()
        documents = w["writers"][source].write(w["out"] / source)
        return {"source": source, "documents": documents, "added": plants.added(),
                "refs": plants.planned_refs(source)}
    # CommonCrawlWriter.write, for files [first, end) only
    crawl, (first, end), result = w["writers"]["commoncrawl"], task[1:], {"source": source, "documents": 0}
    folder = w["out"] / "commoncrawl"
    if w["captures"] is None:
        folder.mkdir(parents=True, exist_ok=True)
        plants.mark()
        w["captures"] = crawl._captures()
        result.update(added=plants.added(), refs=plants.planned_refs(source))
        w["files"] = scaled_files(WARC_FILES, w["scale"])
        w["per_file"] = -(-len(w["captures"]) // w["files"])
    per_file = w["per_file"]
    for index in range(w["next_file"], end):
        name = f"CC-MAIN-demo-{index:05d}.warc.gz"
        captures = w["captures"][index * per_file:(index + 1) * per_file]
        if index < first:  # another process writes it: only its random draws (no page, no record)
            crawl._page_bytes, demo_crawl.WARCWriter = (lambda page: (b"", "text/html")), _NoRecords
            try:
                crawl._write_file(None, name, captures)
            finally:
                del crawl._page_bytes
                demo_crawl.WARCWriter = _WARCWriter
        else:
            with open(folder / name, "wb") as handle:
                result["documents"] += crawl._write_file(handle, name, captures)
    w["next_file"] = end
    return result


def write_corpus_parallel(out_dir: str | Path, seed: int, scale: float, jobs: int) -> dict:
    """write_demo_corpus(out_dir, seed, scale) with `jobs` processes: the same files, the same summary."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for source, patterns in OUTPUT_PATTERNS.items():
        for pattern in patterns:
            for stale in (out / source).glob(pattern):
                stale.unlink()
    files = scaled_files(WARC_FILES, scale)
    step = max(1, -(-files // (jobs * CC_CHUNKS_PER_JOB)))
    # in this order, each process gets the Common Crawl files in increasing order (it only skips forward)
    tasks = [("plan",), *((s,) for s in sorted(SOURCE_COST, key=lambda s: -SOURCE_COST[s])),
             *(("commoncrawl", a, min(a + step, files)) for a in range(0, files, step))]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        results = pool.map(_run_task, [((str(out), seed, scale), task) for task in tasks], chunksize=1)
    plan = next(r for r in results if r["source"] == "plan")
    entries = plan["planned"]
    documents: dict[str, int] = {}
    for source in SOURCES:
        mine = [r for r in results if r["source"] == source]
        documents[source] = sum(r["documents"] for r in mine)
        first = next(r for r in mine if "added" in r)  # every Common Crawl process plants the same
        for category, index, position, item in first["refs"]:
            if position is None:
                entries[category][index] = item
            else:
                entries[category][index][position] = item
        for category, added in first["added"].items():
            entries.setdefault(category, []).extend(added)
    summary = {"documents": documents, "total": sum(documents.values()), "seed": seed, "scale": scale}
    (out / "plants.json").write_text(json.dumps({**summary, **entries}, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    return summary


def check_jobs(docs: int, jobs: int, seed: int = 0) -> bool:
    """Write the corpus with one process and with `jobs`, and compare every file."""
    with tempfile.TemporaryDirectory(prefix="llamapipe-corpus-check-") as work:
        one, many = Path(work) / "one", Path(work) / "many"
        timed = [make_corpus(docs, str(one), seed), make_corpus(docs, str(many), seed, jobs)]
        names = sorted(str(p.relative_to(one)) for p in one.rglob("*") if p.is_file())
        others = sorted(str(p.relative_to(many)) for p in many.rglob("*") if p.is_file())
        differ = [n for n in names if n in others and not filecmp.cmp(one / n, many / n, shallow=False)]
        print(f"{timed[0]['documents']} documents, {len(names)} files: 1 process {timed[0]['seconds']} s, "
              f"{jobs} processes {timed[1]['seconds']} s")
        if names != others or differ:
            print(f"DIFFERENT: only with 1 process {sorted(set(names) - set(others))[:10]}, only with {jobs} "
                  f"{sorted(set(others) - set(names))[:10]}, different bytes {differ[:10]}")
            return False
        print("the same bytes")
        return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, required=True, help="documents wanted (about)")
    parser.add_argument("--out", help="folder to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="processes writing it (default 1)")
    parser.add_argument("--check", action="store_true",
                        help="write --docs with 1 process and with --jobs in a temporary folder, compare")
    args = parser.parse_args(argv)
    if args.check:
        sys.exit(0 if check_jobs(args.docs, max(args.jobs, 2), args.seed) else 1)
    if not args.out:
        parser.error("--out is required")
    os.makedirs(args.out, exist_ok=True)
    info = make_corpus(args.docs, args.out, args.seed, args.jobs)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
