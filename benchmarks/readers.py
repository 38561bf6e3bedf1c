"""Throughput of each source reader on one worker: documents/s and MB/s of input.

    python benchmarks/readers.py --scale 20            # writes the demo corpus at that scale first
    python benchmarks/readers.py --data demo-data      # or reads an existing corpus

Each reader's DoFn is called directly (no runner): every input file is planned into splits
(`plan`) and each split read (`process`), all in this process, so the figures are one core's. With
`--pipeline` the whole `Read` transform also runs on Beam's DirectRunner (one worker, in memory), which
adds the runner's own cost and the source's later steps (GitHub cleaning and dedup, Stack Exchange
grouping). MB are of the input files as stored (compressed where they are). Plain (uncompressed)
copies of the C4 and Common Crawl files are also timed, split at --split-mb, with their planning
pass timed apart. The table is printed and saved as JSON (default benchmarks/results/readers.json).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from llamapipe.sources import SOURCE_NAMES, source_module

READERS = {  # source -> (reader DoFn class name, input globs relative to the corpus folder)
    "commoncrawl": ("ReadWarcFileDoFn", ["commoncrawl/*.warc*"]),
    "c4": ("ReadC4FileDoFn", ["c4/*.json*"]),
    "github": ("ReadCodeFileDoFn", ["github/*.jsonl*", "github/*.parquet"]),
    "wikipedia": ("ReadDumpFile", ["wikipedia/*.bz2"]),
    "books": ("ReadBookFile", ["books/*.txt*", "books/*.jsonl*"]),
    "arxiv": ("ReadPaperSource", ["arxiv/*.gz", "arxiv/*.tgz", "arxiv/*.tar", "arxiv/*.zip"]),
    "stackexchange": ("ReadPostsDoFn", ["stackexchange/*/Posts.xml*", "stackexchange/*Posts.xml*"]),
}


def input_files(root: Path, globs: list[str]) -> list[Path]:
    return sorted({path for pattern in globs for path in root.glob(pattern) if path.is_file()})


def make_reader(source: str, options):
    module = source_module(source)
    reader_class = getattr(module, READERS[source][0])
    if source == "stackexchange":  # its file reader takes the decompression limit, not the options
        return reader_class(options.max_decompressed_bytes)
    try:
        return reader_class(options)
    except TypeError:  # readers without options
        return reader_class()


def time_reader(source: str, files: list[Path], split_bytes: int) -> dict:
    """Plan and read every file with the source's DoFn in this process."""
    options = source_module(source).Options(split_bytes=split_bytes)
    reader = make_reader(source, options)
    documents = drops = splits = 0
    plan_seconds = read_seconds = 0.0
    for path in files:
        started = time.perf_counter()
        parts = list(reader.plan(str(path), path.stat().st_size, split_bytes))
        plan_seconds += time.perf_counter() - started
        splits += len(parts)
        started = time.perf_counter()
        for part in parts:
            for item in reader.process(part):
                if isinstance(item, dict | tuple):  # a document (Stack Exchange: a keyed post)
                    documents += 1
                else:
                    drops += 1
        read_seconds += time.perf_counter() - started
    size = sum(path.stat().st_size for path in files)
    seconds = plan_seconds + read_seconds
    return {
        "files": len(files), "splits": splits, "input_mb": round(size / 1e6, 2),
        "documents": documents, "drops": drops,
        "plan_s": round(plan_seconds, 3), "read_s": round(read_seconds, 3),
        "docs_per_s": round(documents / seconds, 1) if seconds else None,
        "mb_per_s": round(size / 1e6 / seconds, 2) if seconds else None,
    }


def time_pipeline(source: str, files: list[Path], split_bytes: int) -> dict:
    """The source's whole Read transform on the DirectRunner, one worker."""
    options = source_module(source).Options(inputs=[str(path) for path in files], split_bytes=split_bytes)
    started = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--direct_num_workers=1"])) as pipeline:
        out = pipeline | source_module(source).Read(options)
        out["documents"] | "CountDocuments" >> beam.combiners.Count.Globally()
    seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path in files)
    return {"pipeline_s": round(seconds, 2), "pipeline_mb_per_s": round(size / 1e6 / seconds, 2)}


def plain_copies(files: list[Path], folder: Path) -> list[Path]:
    """Decompressed copies of gzip files (to time the split path of formats that split when plain)."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in files:
        target = folder / path.name.removesuffix(".gz")
        with gzip.open(path, "rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        copies.append(target)
    return copies


def corpus(args) -> tuple[Path, Path | None]:
    """The corpus folder, written first when --data is not given (and a temporary folder to remove)."""
    if args.data:
        return Path(args.data), None
    try:
        from llamapipe.sources.demo import write_demo_corpus
    except ImportError:
        sys.exit("the demo corpus generator (llamapipe.sources.demo.write_demo_corpus) is not installed: "
                 "pass --data with a corpus written by `llamapipe demo-data`")
    folder = Path(tempfile.mkdtemp(prefix="llamapipe-bench-"))
    started = time.perf_counter()
    write_demo_corpus(str(folder), seed=0, scale=args.scale)
    print(f"demo corpus at scale {args.scale} written to {folder} in {time.perf_counter() - started:.0f} s")
    return folder, folder


def print_table(rows: list[dict]) -> None:
    columns = [("reader", "reader", 30), ("files", "files", 6), ("splits", "splits", 7),
               ("input_mb", "MB in", 8), ("documents", "docs", 8), ("drops", "drops", 6),
               ("plan_s", "plan s", 7), ("read_s", "read s", 7), ("docs_per_s", "docs/s", 9),
               ("mb_per_s", "MB/s", 7), ("pipeline_mb_per_s", "pipe MB/s", 10)]
    print(" ".join(f"{title:<{width}}" if key == "reader" else f"{title:>{width}}"
                   for key, title, width in columns))
    for row in rows:
        cells = []
        for key, _, width in columns:
            value = row.get(key, "")
            cells.append(f"{value!s:<{width}}" if key == "reader" else f"{value!s:>{width}}")
        print(" ".join(cells))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="an existing demo corpus folder (else one is written at --scale)")
    parser.add_argument("--scale", type=float, default=20.0, help="demo corpus scale (default 20)")
    parser.add_argument("--split-mb", type=float, default=4.0,
                        help="split size for the plain-file runs, small enough to split the demo files")
    parser.add_argument("--sources", default=",".join(SOURCE_NAMES))
    parser.add_argument("--pipeline", action="store_true", help="also time Read on the DirectRunner")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "readers.json"))
    args = parser.parse_args(argv)

    root, temporary = corpus(args)
    split_bytes = int(args.split_mb * 1024**2)
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="llamapipe-bench-plain-"))
    try:
        for source in args.sources.split(","):
            files = input_files(root, READERS[source][1])
            if not files:
                print(f"{source}: no input under {root}, skipped")
                continue
            row = {"reader": source, **time_reader(source, files, split_bytes)}
            if args.pipeline:
                row.update(time_pipeline(source, files, split_bytes))
            rows.append(row)
            gzipped = [path for path in files if path.suffix == ".gz" and source in ("c4", "commoncrawl")]
            if gzipped:
                plain = plain_copies(gzipped, scratch / source)
                row = {"reader": f"{source} (plain, split)", **time_reader(source, plain, split_bytes)}
                if args.pipeline:
                    row.update(time_pipeline(source, plain, split_bytes))
                rows.append(row)
            print(f"{source}: done", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if temporary is not None and not args.data:
            shutil.rmtree(temporary, ignore_errors=True)

    print_table(rows)
    result = {"corpus": str(root) if args.data else f"demo scale {args.scale}", "split_mb": args.split_mb,
              "cpu": os.cpu_count(), "python": sys.version.split()[0], "readers": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
