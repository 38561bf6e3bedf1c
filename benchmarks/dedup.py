"""The dedup stage on a corpus with planted near duplicates of known true Jaccard similarity.

    python benchmarks/dedup.py                      # 1,500 base documents (1x) and 4x for memory
    python benchmarks/dedup.py --base-docs 500 --skip-4x

1. Corpus: base documents of English prose in four registers (the demo corpus's writer,
   sources/demo/text.py), each given a random source of the seven. Planted near duplicates of some of
   them: word edits, inserted sentences and paragraphs, shuffled paragraphs, mixes of the three, and
   exact copies (case and punctuation changed); plus unrelated short documents that share one of a few
   boilerplate blocks (a header and a footer). True Jaccard similarity is computed exactly on the
   stage's shingle sets (word 5-grams of the normalised text).
2. Quality: the Deduplicate stage (default config: 128 permutations, threshold 0.8, global scope) runs
   on the DirectRunner in a subprocess; clusters are read back from its drop records. Printed: recall
   on planted pairs with true J >= 0.85 (pairs that ended in one cluster), recall per J band, and the
   share of merged pairs (every two documents of one cluster) whose true J is < 0.6.
3. Speed, one core, in this process: signatures/s and MB/s of text of the stage's MinHasher (xxhash-32
   shingle hash, permutations built once) against datasketch's default usage (`MinHash(num_perm=128)`
   per document, SHA-1 `hashfunc`) on the same texts and shingles, and against the stage's own path
   with only the hash function swapped back to SHA-1. Best of --repeats passes, interleaved, so load
   from other processes hits all three alike.
4. Memory: the stage runs in a subprocess on 1x and 4x input, on the multi-process DirectRunner (2
   workers) and in memory (one process); /proc is sampled every 50 ms for every process of its tree.
   Printed: the runner process's peak RSS (VmHWM), the largest worker's, the peak total of the tree.
   Read them knowing the local runner: it keeps every GroupByKey's contents in the runner process's
   memory and hands each worker its whole share of a stage as one bundle. Neither the documents nor
   the LSH band records (14 per document, each with its 128-byte signature) cross a shuffle: the
   documents are spilled to files and read back beside their marks (plumbing/files_as_shuffle.py), the band
   records are written to run files and grouped one partition of keys at a time
   (pipeline/stages/dedup/buckets.py). What crosses one is one text hash per document, the confirmed pairs and
   the marks. What the stage holds at once is bounded: one run of band records, one partition of them (1/512
   of all), one file's marks, one node's neighbours; the largest cluster and LSH bucket are printed with the
   results.

Results are printed and saved as JSON (default benchmarks/results/dedup.json).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory import run_watched  # noqa: E402

REGISTERS = ("neutral", "casual", "formal", "narrative")
SOURCES = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")
KINDS = ("edits", "insertions", "shuffled", "mixed", "exact")


# --- corpus ------------------------------------------------------------------------------------------

def _writer(seed: int):
    from llamapipe.sources.demo.text import EnglishWriter

    rng = random.Random(seed)
    return EnglishWriter(rng, register=rng.choice(REGISTERS)), rng


def _variant(paragraphs: list[str], kind: str, rng: random.Random, seed: int) -> list[str]:
    """A planted near duplicate of `paragraphs`; its strength is drawn so that true J spreads ~0.5-1."""
    from llamapipe.sources.demo.common import change_words

    words = sum(p.count(" ") + 1 for p in paragraphs)
    out = list(paragraphs)
    if kind in ("shuffled", "mixed"):
        while out == paragraphs and len(out) > 1:
            rng.shuffle(out)
    if kind in ("edits", "mixed"):
        # each changed word breaks up to 5 shingles: J ~ (S - 5k) / (S + 5k)
        share = rng.uniform(0.0, 0.07) if kind == "edits" else rng.uniform(0.0, 0.03)
        out = change_words(out, rng, max(1, int(words * share)))
    if kind in ("insertions", "mixed"):
        extra, _ = _writer(seed)
        share = rng.uniform(0.02, 0.5) if kind == "insertions" else rng.uniform(0.0, 0.15)
        added = 0
        while added < words * share:
            piece = extra.paragraph(rng.randint(1, 3)) if rng.random() < 0.5 else extra.sentence()
            target = rng.randrange(len(out) + 1)
            if piece.endswith(".") and target < len(out) and rng.random() < 0.5:
                out[target] = out[target] + " " + piece  # inside a paragraph
            else:
                out.insert(target, piece)
            added += piece.count(" ") + 1
    if kind == "exact":
        out = [p.upper() if rng.random() < 0.5 else p.replace(",", "") for p in out]
    return out


def build_corpus(base_docs: int, seed: int = 0) -> tuple[list[dict], list[list[str]], list[list[str]]]:
    """Documents, planted families (ids of an original and its variants) and boilerplate groups."""
    rng = random.Random(seed)
    boilerplates = []
    for b in range(4):
        writer, _ = _writer(seed * 1000 + 900_000 + b)
        boilerplates.append((writer.paragraph(rng.randint(3, 5)), writer.paragraph(rng.randint(2, 4))))
    docs, families, groups = [], [], defaultdict(list)

    def add(paragraphs: list[str]) -> str:
        source = rng.choice(SOURCES)
        doc_id = f"{source}:bench{len(docs):07d}"
        docs.append({"id": doc_id, "source": source, "text": "\n\n".join(paragraphs), "url": "", "meta": {}})
        return doc_id

    for i in range(base_docs):
        writer, doc_rng = _writer(seed * 1_000_003 + i)
        draw = rng.random()
        if draw < 0.1:  # a short page inside shared boilerplate: similar to others only by that
            b = rng.randrange(len(boilerplates))
            header, footer = boilerplates[b]
            groups[b].append(add([header, *writer.paragraphs(rng.randint(1, 4)), footer]))
            continue
        paragraphs = writer.paragraphs(rng.randint(3, 9))
        original = add(paragraphs)
        if draw < 0.45:
            family = [original]
            for v in range(rng.choice((1, 1, 1, 2, 3))):
                kind = rng.choice(KINDS)
                family.append(add(_variant(paragraphs, kind, doc_rng, seed * 7919 + i * 10 + v)))
            families.append(family)
    order = list(range(len(docs)))
    rng.shuffle(order)
    return [docs[i] for i in order], families, list(groups.values())


# --- quality ------------------------------------------------------------------------------------------

class Shingles:
    def __init__(self, docs: list[dict], n: int = 5):
        from llamapipe.pipeline.stages.dedup.fingerprints import shingles

        self._text = {d["id"]: d["text"] for d in docs}
        self._cache: dict[str, set] = {}
        self._shingles = shingles
        self._n = n

    def jaccard(self, a: str, b: str) -> float:
        for key in (a, b):
            if key not in self._cache:
                self._cache[key] = self._shingles(self._text[key], self._n)
        x, y = self._cache[a], self._cache[b]
        return len(x & y) / len(x | y) if x or y else 1.0


def clusters_from_drops(drop_lines: list[str]) -> dict[str, str]:
    """document id -> its cluster's survivor, from the stage's drop details."""
    parent = {}
    for line in drop_lines:
        record = json.loads(line)
        parent[record["id"]] = record["detail"].rsplit(" of ", 1)[1]

    def root(doc_id: str) -> str:
        while doc_id in parent:
            doc_id = parent[doc_id]
        return doc_id

    return {doc_id: root(doc_id) for doc_id in parent}


def evaluate(docs, families, groups, drop_lines) -> dict:
    survivor_of = clusters_from_drops(drop_lines)
    cluster = lambda doc_id: survivor_of.get(doc_id, doc_id)  # noqa: E731
    sim = Shingles(docs)
    planted = [(a, b, sim.jaccard(a, b)) for family in families for a, b in itertools.combinations(family, 2)]
    boiler = [(a, b, sim.jaccard(a, b)) for group in groups for a, b in itertools.combinations(group, 2)]
    members = defaultdict(list)
    for doc_id, root in survivor_of.items():
        members[root].append(doc_id)
    merged = [sim.jaccard(a, b)
              for root, ms in members.items() for a, b in itertools.combinations([root, *ms], 2)]

    def recall(pairs, lo, hi):
        inside = [(a, b) for a, b, j in pairs if lo <= j < hi]
        hit = sum(cluster(a) == cluster(b) for a, b in inside)
        return {"pairs": len(inside), "merged": hit, "rate": round(hit / len(inside), 4) if inside else None}

    bands = [(0.0, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 1.01)]
    low = sum(j < 0.6 for j in merged)
    return {
        "documents": len(docs), "dropped": len(drop_lines), "clusters": len(members),
        "planted_pairs": len(planted), "boilerplate_pairs": len(boiler),
        "recall_j_ge_0.85": recall(planted, 0.85, 1.01),
        "recall_by_true_j": {f"{lo:.2f}-{min(hi, 1.0):.2f}": recall(planted, lo, hi) for lo, hi in bands},
        "boilerplate_pairs_merged": recall(boiler, 0.0, 1.01),
        "boilerplate_true_j_max": round(max((j for _, _, j in boiler), default=0.0), 3),
        "merged_pairs": len(merged), "merged_pairs_j_lt_0.6": low,
        "false_merge_share": round(low / len(merged), 4) if merged else 0.0,
    }


# --- speed --------------------------------------------------------------------------------------------

def time_signatures(texts: list[str], repeats: int) -> dict:
    """Best-of-`repeats` seconds of three ways to sign `texts`, interleaved."""
    from datasketch import MinHash
    from datasketch.hashfunc import sha1_hash32

    from llamapipe.pipeline.stages.dedup.fingerprints import MinHasher, normalise, shingle_bytes

    ours = MinHasher(128, 5)
    ours_sha1 = MinHasher(128, 5)
    ours_sha1._template.hashfunc = sha1_hash32  # the stage's path, hash function swapped back

    def datasketch_default(text: str):
        m = MinHash(num_perm=128)  # SHA-1 hashfunc, permutations built per document
        m.update_batch(list(shingle_bytes(normalise(text).split(), 5)))
        return m.hashvalues

    ways = {"llamapipe (xxhash-32)": ours.signature, "datasketch default (SHA-1)": datasketch_default,
            "llamapipe path, SHA-1 hash": ours_sha1.signature}
    best = {name: float("inf") for name in ways}
    for _ in range(repeats):
        for name, sign in ways.items():
            started = time.process_time()
            for text in texts:
                sign(text)
            best[name] = min(best[name], time.process_time() - started)
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    return {name: {"seconds": round(s, 3), "signatures_per_s": round(len(texts) / s, 1),
                   "mb_per_s": round(megabytes / s, 2)} for name, s in best.items()}


# --- the stage in a subprocess, with its memory watched ---------------------------------------------------

def run_stage(corpus_path: Path, out_dir: Path, mode: str, workers: int) -> dict:
    command = [sys.executable, __file__, "--child", str(corpus_path), str(out_dir), "--mode", mode,
               "--workers", str(workers)]
    seconds, watch, pid = run_watched(command, "the stage")
    runner_kb = watch.peak_by_pid.get(pid, 0)
    workers_kb = [kb for other, kb in watch.peak_by_pid.items() if other != pid]
    return {"seconds": round(seconds, 1), "runner_peak_mb": round(runner_kb / 1024, 1),
            "worker_peak_mb": round(max(workers_kb, default=0) / 1024, 1),
            "tree_peak_total_mb": round(watch.peak_total_kb / 1024, 1)}


def child(corpus_path: str, out_dir: str, mode: str, workers: int) -> None:
    """Run the Deduplicate stage alone: JSON lines in, kept ids + drop records + stats out."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from llamapipe.pipeline.config import DedupConfig
    from llamapipe.pipeline.stages.dedup.deduplicate import Deduplicate

    flags = [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}",
             "--default_sdk_harness_log_level=WARNING"]
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        docs = p | "Read" >> beam.io.ReadFromText(corpus_path) | "Parse" >> beam.Map(json.loads)
        out = docs | "Dedup" >> Deduplicate(DedupConfig(), os.path.join(out_dir, "spill"))
        out["documents"] | "Ids" >> beam.Map(lambda d: d["id"]) | "WriteKept" >> beam.io.WriteToText(
            os.path.join(out_dir, "kept"))
        (out["dropped"]
         | "DropJson" >> beam.Map(lambda d: json.dumps({k: v for k, v in d.items() if k != "text"}))
         | "WriteDropped" >> beam.io.WriteToText(os.path.join(out_dir, "dropped")))
        out["stats"] | "StatsJson" >> beam.Map(json.dumps) | "WriteStats" >> beam.io.WriteToText(
            os.path.join(out_dir, "stats"))


def _lines(folder: Path, prefix: str) -> list[str]:
    paths = sorted(folder.glob(prefix + "*"))
    return [line for path in paths for line in path.read_text().splitlines() if line]


def write_corpus(docs: list[dict], path: Path) -> float:
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-docs", type=int, default=1500, help="base documents at 1x (default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="passes of the signature timing (best kept)")
    parser.add_argument("--modes", default="multi_processing,in_memory",
                        help="DirectRunner running modes to run the stage in (quality: the first)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the multi-process mode")
    parser.add_argument("--skip-4x", action="store_true", help="only the 1x run (no memory comparison)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and outputs (printed folder)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "dedup.json"))
    parser.add_argument("--child", nargs=2, metavar=("CORPUS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="multi_processing", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, args.mode, args.workers)
        return

    modes = args.modes.split(",")
    results = {"config": {"base_docs": args.base_docs, "seed": args.seed, "modes": modes,
                          "workers": args.workers}, "runs": {}}
    work = Path(tempfile.mkdtemp(prefix="llamapipe-dedup-bench-"))
    try:
        for scale in (1,) if args.skip_4x else (1, 4):
            run_scale(args, scale, modes, work, results)
    finally:
        if args.keep:
            print(f"corpus and outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if not args.skip_4x:
        print("peak memory at 4x / 1x input:")
        results["memory_ratio_4x"] = {}
        for mode in modes:
            one, four = results["runs"][f"1x {mode}"], results["runs"][f"4x {mode}"]
            ratios = {key: round(four[key] / one[key], 2) for key in
                      ("runner_peak_mb", "worker_peak_mb", "tree_peak_total_mb") if one[key]}
            results["memory_ratio_4x"][mode] = ratios
            print(f"       {mode:<17} " + ", ".join(
                f"{key} {one[key]} -> {four[key]} MB ({ratio}x)" for key, ratio in ratios.items()))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"saved {args.out}")


def run_scale(args, scale: int, modes: list[str], work: Path, results: dict) -> None:
    started = time.perf_counter()
    docs, families, groups = build_corpus(args.base_docs * scale, args.seed)
    corpus_path = work / f"corpus-{scale}x.jsonl"
    megabytes = write_corpus(docs, corpus_path)
    print(f"[{scale}x] corpus: {len(docs)} documents, {megabytes:.1f} MB of text, {len(families)} "
          f"planted families, {sum(map(len, groups))} boilerplate pages "
          f"({time.perf_counter() - started:.0f} s to build)", flush=True)
    if scale == 1:
        sample = [d["text"] for d in docs[:1000]]
        speed = time_signatures(sample, args.repeats)
        results["signatures"] = {"documents": len(sample),
                                 "mb": round(sum(len(t.encode()) for t in sample) / 1e6, 2), **speed}
        print(f"[1x] signatures, one core (CPU time), best of {args.repeats} ({len(sample)} documents):")
        for name, row in speed.items():
            print(f"       {name:<28} {row['signatures_per_s']:>8.0f} signatures/s "
                  f"{row['mb_per_s']:>7.2f} MB/s")
        ours, default = speed["llamapipe (xxhash-32)"], speed["datasketch default (SHA-1)"]
        ratio = ours["mb_per_s"] / default["mb_per_s"]
        results["signatures"]["speedup_over_datasketch_default"] = round(ratio, 2)
        print(f"       speed-up over datasketch's default: {ratio:.2f}x", flush=True)
    drops_by_mode = {}
    for mode in modes:
        out_dir = work / f"out-{scale}x-{mode}"
        out_dir.mkdir()
        run = run_stage(corpus_path, out_dir, mode, args.workers)
        run.update(documents=len(docs), mb=round(megabytes, 2),
                   docs_per_s=round(len(docs) / run["seconds"], 1))
        results["runs"][f"{scale}x {mode}"] = run
        drops_by_mode[mode] = sorted(_lines(out_dir, "dropped"))
        print(f"[{scale}x] stage on the DirectRunner, {mode}: {run['seconds']} s "
              f"({run['docs_per_s']} docs/s); peak RSS: runner process {run['runner_peak_mb']} MB, "
              f"largest worker {run['worker_peak_mb']} MB, all processes together "
              f"{run['tree_peak_total_mb']} MB", flush=True)
        if mode == modes[0]:
            stats = json.loads(_lines(out_dir, "stats")[0])
    same = all(drops == drops_by_mode[modes[0]] for drops in drops_by_mode.values())
    quality = evaluate(docs, families, groups, drops_by_mode[modes[0]])
    quality["same_drops_in_every_mode"] = same
    results[f"{scale}x"] = {"quality": quality, "stage_stats": {
        k: stats[k] for k in ("clusters", "documents", "largest", "lsh", "components")}}
    r = quality["recall_j_ge_0.85"]
    print(f"[{scale}x] recall at true J >= 0.85: {r['rate']} ({r['merged']}/{r['pairs']} planted pairs); "
          f"false merges (true J < 0.6): {quality['false_merge_share']:.2%} of "
          f"{quality['merged_pairs']} merged pairs; identical drops in {', '.join(modes)}: {same}")
    print("       recall by true J: " + ", ".join(
        f"{band} {v['rate']} ({v['pairs']})" for band, v in quality["recall_by_true_j"].items()))
    b = quality["boilerplate_pairs_merged"]
    print(f"       boilerplate pairs merged: {b['merged']}/{b['pairs']} (their true J <= "
          f"{quality['boilerplate_true_j_max']}); largest cluster {stats['largest']}, largest LSH bucket "
          f"{stats['lsh']['largest_bucket']}", flush=True)


if __name__ == "__main__":
    main()
