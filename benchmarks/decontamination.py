"""Benchmark decontamination: the index's build time and size for about 1M n-grams, and the stage's
documents/s on one core with that index.

    python benchmarks/decontamination.py                     # 1M n-grams, 2,000 documents
    python benchmarks/decontamination.py --ngrams 4000000 --chunk 1000000

The evaluation set is made of the demo generator's English paragraphs (`sources/demo/text.py`), about
100 words per example, written as jsonl; the documents are other paragraphs of the same generator (about
600 words each), a tenth of them holding a passage of the set. Both in one process: the build's peak RSS
is read from `resource` before and after (the process's high-water mark), the stage is
`DecontaminateDoFn` itself (setup, then process per document), timed on CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from llamapipe.pipeline.config import DecontaminationConfig, decontamination_files
from llamapipe.pipeline.plumbing.drops import DROPPED
from llamapipe.pipeline.stages.decontamination import (
    CHUNK_NGRAMS,
    PARTITIONS,
    DecontaminateDoFn,
    build_index,
)
from llamapipe.sources.demo.text import EnglishWriter


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ngrams", type=int, default=1_000_000, help="about this many n-grams in the set")
    parser.add_argument("--documents", type=int, default=2_000)
    parser.add_argument("--chunk", type=int, default=CHUNK_NGRAMS)
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    args = parser.parse_args()

    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="llamapipe-decon-bench-") as work:
        evals = Path(work) / "set.jsonl"
        passages, ngrams = [], 0
        started = time.perf_counter()
        with open(evals, "w", encoding="utf-8") as f:
            while ngrams < args.ngrams:
                writer = EnglishWriter(rng, register="formal")
                passage = " ".join(writer.paragraph(3) for _ in range(2))
                words = len(passage.split())
                ngrams += max(1, words - 12)
                passages.append(passage) if len(passages) < 1000 else None
                f.write(json.dumps({"ctx": passage, "choices": ["a", "b", "c", "d"]}) + "\n")
        made = time.perf_counter() - started
        options = DecontaminationConfig(sets={"bench": [str(evals)]})
        before = peak_rss_mb()
        started, started_cpu = time.perf_counter(), time.process_time()
        meta = build_index(options, decontamination_files(options), str(Path(work) / "index"),
                           chunk=args.chunk, partitions=args.partitions)
        build_seconds, build_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        after = peak_rss_mb()
        print(f"evaluation set: {evals.stat().st_size / 1e6:.1f} MB, {meta['examples']:,} examples "
              f"(written in {made:.1f} s)")
        print(f"index: {meta['ngrams']:,} distinct 13-grams ({meta['ngrams_with_repeats']:,} with repeats), "
              f"{meta['bytes']:,} bytes = {meta['bytes'] / meta['ngrams']:.1f} bytes per n-gram "
              f"({meta['bytes'] / meta['ngrams']:.0f} MB per million)")
        print(f"build: {build_cpu:.1f} CPU s, {build_seconds:.1f} s wall "
              f"({meta['ngrams_with_repeats'] / build_cpu:,.0f} n-grams per CPU second), "
              f"chunk {args.chunk:,} n-grams, {args.partitions} partitions; peak RSS {before:.0f} MB before, "
              f"{after:.0f} MB after (+{after - before:.0f} MB)")

        docs = []
        for i in range(args.documents):
            writer = EnglishWriter(rng)
            text = "\n\n".join(writer.paragraphs(6, 4, 7))
            if i % 10 == 0:
                text += " " + rng.choice(passages)
            docs.append({"id": f"d{i}", "source": "c4", "text": text})
        words = sum(len(d["text"].split()) for d in docs)
        dofn = DecontaminateDoFn(str(Path(work) / "index"), None)
        dofn.setup()
        started_cpu, started = time.process_time(), time.perf_counter()
        dropped = 0
        for doc in docs:
            for out in dofn.process(doc):
                dropped += not isinstance(out, dict) and out.tag == DROPPED
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
        print(f"stage: {len(docs):,} documents ({words / len(docs):.0f} words each), {dropped} dropped "
              f"(planted: {len(range(0, args.documents, 10))}); {len(docs) / cpu:,.0f} documents/s per core "
              f"({words / cpu / 1e6:.2f} M words/s; {cpu:.2f} CPU s, {wall:.2f} s wall); peak RSS "
              f"{peak_rss_mb():.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
