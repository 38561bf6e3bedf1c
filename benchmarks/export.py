"""`llamapipe export megatron` and `export numpy`: throughput and peak memory on shards big enough to
measure, and at two sizes, to show that memory does not grow with the corpus.

    python benchmarks/export.py                              # 50M and 200M tokens from out/demo/shards
    python benchmarks/export.py --tokens 20e6 80e6 --from out/demo/shards

1. Shards: the demo run's shards (`make demo` first) repeated until each size is reached, every source
   keeping its share of the tokens: the same Parquet schema and footer as the shard writer's (the
   rows of a source's shards, doc ids made unique per copy), row groups of at most 1,000 documents and
   about 1M tokens as `shards.row_group_*` give them, shards of about 25M tokens, and the manifest built
   by the pipeline's own `build_manifest` (the demo's mixture). The 1M-document corpus of the scale issue
   is not on this machine; a repeat of real shards has real document lengths and a real token
   distribution (zstd sees repeats only a whole source apart, further than its window in most sources).
2. Each export runs in a fresh subprocess (the exporter the CLI calls, timed after the imports, which
   cost the CLI about 2 CPU-seconds and 290 MB of RSS before any work): wall and CPU seconds, the RSS
   before the export and its peak during it (VmHWM, reset through /proc/self/clear_refs first).
   Printed: tokens/s of wall time, tokens per CPU-second (per core: the export is one process, one
   thread writing; pyarrow's decoding threads are counted in its CPU time), output MB/s, the RSS
   before and at the peak.

Results are printed and saved as JSON (default benchmarks/results/export.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW_GROUP_DOCUMENTS, ROW_GROUP_TOKENS = 1000, 1 << 20  # the config's shards.row_group_* defaults
SHARD_TOKENS = 25_000_000


def row_groups(table: pa.Table) -> list[tuple[int, int]]:
    """(offset, length) slices of at most ROW_GROUP_DOCUMENTS rows and about ROW_GROUP_TOKENS tokens."""
    slices, start, tokens = [], 0, 0
    for i, n in enumerate(table.column("num_tokens").to_pylist()):
        if i > start and (i - start >= ROW_GROUP_DOCUMENTS or tokens + n > ROW_GROUP_TOKENS):
            slices.append((start, i - start))
            start, tokens = i, 0
        tokens += n
    slices.append((start, table.num_rows - start))
    return slices


def make_shards(source_dir: str, root: str, target_tokens: int) -> dict:
    """The demo shards repeated to about `target_tokens` under root/shards, with the manifest."""
    from llamapipe.pipeline.config import MixtureConfig, SourceShare
    from llamapipe.pipeline.output.manifest import build_manifest, write_manifest

    manifest = json.load(open(os.path.join(source_dir, "manifest.json")))
    tokenizer = os.path.normpath(os.path.join(source_dir, manifest["tokenizer"]["path"]))
    os.makedirs(os.path.join(root, "tokenizer"), exist_ok=True)
    shutil.copyfile(tokenizer, os.path.join(root, "tokenizer", "tokenizer.model"))
    copies = max(1, round(target_tokens / manifest["total_tokens"]))
    for source, entry in manifest["sources"].items():
        if not entry["tokens"]:
            continue
        paths = [os.path.join(source_dir, s["path"]) for s in entry["shards"]]
        table = pa.concat_tables(pq.read_table(p) for p in paths)
        schema = pq.read_schema(paths[0])
        per_shard = max(1, SHARD_TOKENS // entry["tokens"])
        count = -(-copies // per_shard)
        slices = row_groups(table)
        folder = os.path.join(root, "shards", source)
        os.makedirs(folder, exist_ok=True)
        for index in range(count):
            name = f"{source}-{index:05d}-of-{count:05d}.parquet"
            meta = {**schema.metadata, b"llamapipe.shard_index": str(index).encode(),
                    b"llamapipe.num_shards": str(count).encode()}
            with pq.ParquetWriter(os.path.join(folder, name), schema.with_metadata(meta),
                                  compression="zstd") as writer:
                for copy in range(index * per_shard, min(copies, (index + 1) * per_shard)):
                    ids = pc.binary_join_element_wise(table.column("doc_id"), pa.scalar(f"{copy}"), ":")
                    copied = table.set_column(0, "doc_id", ids)
                    for offset, length in slices:
                        writer.write_table(copied.slice(offset, length), row_group_size=length)
    config = json.load(open(os.path.join(os.path.dirname(source_dir), "run.json")))["config"]["mixture"]
    mixture = MixtureConfig(token_budget=config.get("token_budget"),
                            sources={s: SourceShare(v["share"], v["epochs"])
                                     for s, v in config["sources"].items()})
    built = build_manifest(os.path.join(root, "shards"), os.path.join(root, "tokenizer", "tokenizer.model"),
                           manifest["tokenizer"]["vocab_size"], mixture)
    write_manifest(built, os.path.join(root, "shards", "manifest.json"))
    return built


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))


def worker(kind: str, shards_dir: str, out: str) -> None:
    """One export in this process, timed after the imports (the CLI's start-up, about 2 CPU-seconds of
    Beam and pyarrow imports, is not the export's): one JSON line of wall and CPU seconds, and the RSS
    before and at the peak."""
    import time

    from llamapipe.pipeline.export.megatron import export_megatron
    from llamapipe.pipeline.export.numpy_files import export_numpy
    from llamapipe.pipeline.export.shards_in import open_shards

    shards = open_shards(shards_dir)
    with open("/proc/self/clear_refs", "w") as f:  # VmHWM := VmRSS now: the peak of the export alone
        f.write("5")
    baseline = _status_mb("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    (export_megatron if kind == "megatron" else export_numpy)(shards, out)
    print(json.dumps({"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                      "rss_before_mb": baseline, "peak_rss_mb": _status_mb("VmHWM")}))


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024


def measure(root: str, kind: str, tokens: int) -> dict:
    out = os.path.join(root, kind)
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, os.path.join(root, "shards"), out]
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        sys.exit(f"export {kind} failed:\n{process.stderr[-3000:]}")
    timed = json.loads(process.stdout.strip().splitlines()[-1])
    written = folder_bytes(out)
    shutil.rmtree(out)
    seconds, cpu = timed["seconds"], timed["cpu_seconds"]
    return {"format": kind, "tokens": tokens, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "tokens_per_s": round(tokens / seconds), "tokens_per_cpu_s": round(tokens / cpu),
            "output_mb_per_s": round(written / seconds / 1e6, 1), "output_mb": round(written / 1e6, 1),
            "rss_before_mb": round(timed["rss_before_mb"], 1), "peak_rss_mb": round(timed["peak_rss_mb"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", default=os.path.join(REPO, "out", "demo", "shards"),
                        help="the shards to repeat (default out/demo/shards: run `make demo` first)")
    parser.add_argument("--tokens", type=float, nargs="+", default=[50e6, 200e6])
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "export.json"))
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "SHARDS", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if not os.path.isfile(os.path.join(args.source, "manifest.json")):
        sys.exit(f"{args.source}: no manifest.json; run `make demo` first or pass --from OUT/shards")
    results = []
    for target in args.tokens:
        root = tempfile.mkdtemp(prefix="llamapipe-export-bench-", dir=args.work)
        try:
            manifest = make_shards(args.source, root, int(target))
            tokens = manifest["total_tokens"]
            documents = sum(e["documents"] for e in manifest["sources"].values())
            shard_mb = sum(os.path.getsize(os.path.join(d, f))
                           for d, _, fs in os.walk(os.path.join(root, "shards")) for f in fs) / 1e6
            print(f"shards: {tokens:,} tokens, {documents:,} documents, {shard_mb:,.0f} MB of Parquet")
            for kind in ("megatron", "numpy"):
                result = {**measure(root, kind, tokens), "documents": documents, "shards_mb": round(shard_mb)}
                results.append(result)
                print(f"  {kind:<9} {result['seconds']:>7.1f} s"
                      f"  {result['tokens_per_s'] / 1e6:6.1f} M tokens/s"
                      f"  {result['tokens_per_cpu_s'] / 1e6:6.1f} M tokens/CPU-s"
                      f"  {result['output_mb_per_s']:6.1f} MB/s out  RSS {result['rss_before_mb']:.0f} MB "
                      f"before, peak {result['peak_rss_mb']:.0f} MB")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"cpus": os.cpu_count(), "results": results}, f, indent=2)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
