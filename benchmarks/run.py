"""The whole `llamapipe run`, per stage and end to end, with 1 and 2 workers and at 1x and 4x input.

    python benchmarks/run.py                         # 4,000 documents at 1x (16,000 at 4x), 1 and 2 workers
    python benchmarks/run.py --docs 2000 --skip-4x
    python benchmarks/run.py --docs 8000 --speedup-at-4x  # the figures of the README (about 15 minutes)
    python benchmarks/run.py --docs 4000 --skip-4x --workers 2 --storage local,s3
                                                     # OUT and inputs on local disk, then on an S3 server

Each run is `llamapipe run` in a subprocess on the demo corpus scaled by `make_corpus.py`, on the
multi-process local runner (`direct_running_mode=multi_processing`, `direct_num_workers` = 1 or 2,
SentencePiece with as many threads), `--fresh`, with the whole process tree's memory sampled every
50 ms. Per stage (from the run record's timings): wall seconds, documents/s and MB/s of input per core
(the cleaning stage reads the input files, the tokenizer and tokenization stages the cleaned
documents). End to end: documents/s, the speed-up of 2 workers over 1 (at 1x, and at 4x with
--speedup-at-4x), and peak memory (the largest process, and all processes together) at 4x input against
1x. A run has fixed costs that do not split over workers (starting the driver and the workers, building
and scheduling about 160 stages one after another, training the tokenizer and the classifier, the
report; `benchmarks/stages.py` breaks them down), so the speed-up grows with the input (1.47x at 8,000
documents, 1.68x at 32,000 on the 2-core development machine).

With `--storage local,s3` the same corpus and workers run twice: inputs and OUT on local disk, then on
moto's S3 server (`tests/object_stores.py`, a separate process on 127.0.0.1, started and stopped here;
its own CPU and memory are not in the figures), and wall time and peak memory are printed side by side.
Every file then crosses HTTP, as on a cluster's object store (but with no network latency).

Read the memory figures knowing the local runner: it keeps every collection crossing a stage boundary
in its own memory, so the cleaning graph sends documents between stages through files
(pipeline/plumbing/files_as_shuffle.py) and only small records through shuffles; those still grow with the
input. Results are printed and saved as JSON (default benchmarks/results/run.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_corpus import make_corpus  # noqa: E402
from memory import _cpu_seconds, run_watched  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BUCKET = "llamapipe-bench"


def write_config(corpus: Path | str, out: Path | str, workers: int, path: Path) -> None:
    with open(REPO / "configs" / "demo.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f)
    for options in data["sources"].values():
        options["inputs"] = [p.replace("demo-data", str(corpus), 1) for p in options["inputs"]]
    data["output"] = str(out)
    data["runner"]["options"] = {"direct_running_mode": "multi_processing", "direct_num_workers": workers}
    data.setdefault("tokenizer", {})["num_threads"] = workers
    path.write_text(yaml.safe_dump(data))


def run_once(config: Path, out: Path | str) -> dict:
    from llamapipe.tokenizer.format import storage

    command = [sys.executable, "-m", "llamapipe.pipeline.cli", "run", str(config), "--fresh"]
    seconds, watch, _ = run_watched(command, "the run")
    out = str(out)
    record = storage.read_json(storage.join(out, "run.json"))
    ledger = storage.read_json(storage.join(out, "ledger.json"))
    return {
        "seconds": round(seconds, 1),
        "stages": record["stages"],
        "documents_in": ledger["totals"]["in"],
        "documents_kept": ledger["totals"]["kept"],
        "documents_bytes": sum(storage.size(p) for p in storage.glob(storage.join(out, "documents", "*",
                                                                                     "*.parquet"))),
        "largest_process_mb": round(max(watch.peak_by_pid.values(), default=0) / 1024, 1),
        "tree_peak_total_mb": round(watch.peak_total_kb / 1024, 1),
        # the largest peak of each kind of process: which one grows with the input
        "peak_mb_by_role": {role: round(max(kb for pid, kb in watch.peak_by_pid.items()
                                            if watch.name_by_pid.get(pid) == role) / 1024, 1)
                            for role in sorted(set(watch.name_by_pid.values()))},
        "cpu_seconds": round(sum(watch.cpu_by_pid.values()), 1),
        # the busiest processes' CPU seconds: with 2 workers, two of similar size
        "cpu_seconds_busiest": [(watch.name_by_pid.get(pid, "?"), round(seconds, 1)) for pid, seconds in
                                sorted(watch.cpu_by_pid.items(), key=lambda kv: -kv[1])[:5]],
    }


def stage_rows(run: dict, input_bytes: int, workers: int) -> list[tuple]:
    """(stage, seconds, documents/s, MB/s per core) for each stage and end to end."""
    stages = run["stages"]
    rows = []
    for stage, docs, size in (("clean", run["documents_in"], input_bytes),
                              ("tokenizer", run["documents_kept"], run["documents_bytes"]),
                              ("tokenize", run["documents_kept"], run["documents_bytes"]),
                              ("manifest", None, None)):
        seconds = stages.get(stage)
        if not seconds:
            continue
        rows.append((stage, seconds, docs / seconds if docs else None,
                     size / 1e6 / seconds / workers if size else None))
    rows.append(("end to end", run["seconds"], run["documents_in"] / run["seconds"],
                 input_bytes / 1e6 / run["seconds"] / workers))
    return rows


def print_table(title: str, rows: list[tuple]) -> None:
    print(title)
    print(f"  {'stage':<12}{'wall s':>9}{'docs/s':>10}{'MB/s/core':>11}")
    for stage, seconds, docs_per_s, mb_per_core in rows:
        docs = f"{docs_per_s:>10.1f}" if docs_per_s else f"{'':>10}"
        mb = f"{mb_per_core:>11.3f}" if mb_per_core else f"{'':>11}"
        print(f"  {stage:<12}{seconds:>9.1f}{docs}{mb}", flush=True)


def run_key(scale: int, count: int, where: str) -> str:
    return f"{scale}x {count} workers" + ("" if where == "local" else f" {where}")


@contextlib.contextmanager
def s3_storage():
    """moto's S3 server with a bucket, its settings in this process's environment (the runs inherit it)."""
    from tests.object_stores import applied_env, moto_s3_server

    with moto_s3_server() as s3, applied_env(s3.env):
        s3.create_bucket(BUCKET)
        port = s3.endpoint_url.rsplit(":", 1)[1]
        s3.pid = next(int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _cmdline(pid).endswith(
            f"moto.server -H 127.0.0.1 -p {port}"))
        print(f"S3 server at {s3.endpoint_url} (pid {s3.pid}), bucket {BUCKET}", flush=True)
        yield s3


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def upload(s3, folder: Path, prefix: str) -> None:
    client = s3.client()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder)}")


def print_storage_comparison(runs: dict, storages: list[str]) -> None:
    """Wall time and peak memory of the same run on each storage, side by side."""
    print(f"storage comparison: {' | '.join(storages)}")
    print(f"  {'run':<20}{'wall s':>24}{'largest process MB':>28}{'all processes MB':>28}")
    keys = sorted({key for key in runs if key.endswith("workers")})
    for key in keys:
        cells = [runs.get(key if where == "local" else f"{key} {where}") for where in storages]
        if any(cell is None for cell in cells):
            continue
        columns = [" | ".join(f"{cell[field]:.1f}" for cell in cells)
                   for field in ("seconds", "largest_process_mb", "tree_peak_total_mb")]
        print(f"  {key:<20}{columns[0]:>24}{columns[1]:>28}{columns[2]:>28}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=4000, help="documents at 1x (default 4000)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--skip-4x", action="store_true", help="no 4x run (no memory comparison)")
    parser.add_argument("--speedup-at-4x", action="store_true",
                        help="run 4x with every worker count too, for the speed-up at 4x (fixed costs of a "
                             "run, such as starting workers and scheduling stages, weigh less there)")
    parser.add_argument("--storage", default="local",
                        help="where inputs and OUT are: local, s3 (moto's S3 server, started here) or both "
                             "as local,s3 (default local)")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and outputs")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "run.json"))
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    storages = args.storage.split(",")
    work = Path(tempfile.mkdtemp(prefix="llamapipe-run-bench-"))
    results: dict = {"config": {"docs": args.docs, "workers": workers, "storage": storages}, "runs": {}}
    stack = contextlib.ExitStack()
    try:
        s3 = stack.enter_context(s3_storage()) if "s3" in storages else None
        for scale in (1,) if args.skip_4x else (1, 4):
            corpus = work / f"corpus-{scale}x"
            info = make_corpus(args.docs * scale, str(corpus))
            results[f"corpus_{scale}x"] = info
            print(f"[{scale}x] corpus: {info['documents']} documents, {info['bytes'] / 1e6:.1f} MB on disk",
                  flush=True)
            if s3 is not None:
                upload(s3, corpus, f"corpus-{scale}x")
            for count in workers if scale == 1 or args.speedup_at_4x else workers[-1:]:
                for where in storages:
                    name = f"{scale}x-{count}" + ("" if where == "local" else f"-{where}")
                    root = work if where == "local" else f"s3://{BUCKET}"
                    out, config = f"{root}/out-{name}", work / f"config-{name}.yaml"
                    inputs = corpus if where == "local" else f"{root}/corpus-{scale}x"
                    write_config(inputs, out, count, config)
                    server_cpu = _cpu_seconds(s3.pid) if where == "s3" else 0.0
                    run = run_once(config, out)
                    if where == "s3":  # the S3 server shares the machine's cores with the run
                        run["s3_server_cpu_seconds"] = round(_cpu_seconds(s3.pid) - server_cpu, 1)
                    results["runs"][run_key(scale, count, where)] = run
                    print_table(f"[{scale}x] {count} worker(s), {where}: {run['seconds']} s, peak memory: "
                                f"largest process {run['largest_process_mb']} MB, all processes "
                                f"{run['tree_peak_total_mb']} MB; CPU {run['cpu_seconds']} s "
                                f"(busiest processes {run['cpu_seconds_busiest']})"
                                + (f"; the S3 server's CPU {run['s3_server_cpu_seconds']} s"
                                   if "s3_server_cpu_seconds" in run else ""),
                                stage_rows(run, info["bytes"], count))
        if len(storages) > 1:
            print_storage_comparison(results["runs"], storages)
        for scale, key in ((1, "speedup_end_to_end"), (4, "speedup_end_to_end_4x")):
            one = results["runs"].get(f"{scale}x 1 workers")
            many = results["runs"].get(f"{scale}x {workers[-1]} workers")
            if one and many and one is not many:
                speedup = one["seconds"] / many["seconds"]
                results[key] = round(speedup, 2)
                print(f"[{scale}x] end to end, {workers[-1]} workers over 1: {speedup:.2f}x")
                for stage in ("clean", "tokenizer", "tokenize"):
                    if one["stages"].get(stage) and many["stages"].get(stage):
                        print(f"  {stage:<12}{one['stages'][stage] / many['stages'][stage]:.2f}x")
        two = results["runs"].get(f"1x {workers[-1]} workers")
        four = results["runs"].get(f"4x {workers[-1]} workers")
        if four and two:
            ratios = {key: round(four[key] / two[key], 2)
                      for key in ("largest_process_mb", "tree_peak_total_mb")}
            results["memory_ratio_4x"] = ratios
            print(f"peak memory at 4x / 1x input ({workers[-1]} workers): " + ", ".join(
                f"{key} {two[key]} -> {four[key]} MB ({ratio}x)" for key, ratio in ratios.items()))
            for role in sorted(set(two["peak_mb_by_role"]) & set(four["peak_mb_by_role"])):
                before, after = two["peak_mb_by_role"][role], four["peak_mb_by_role"][role]
                print(f"  largest {role}: {before} -> {after} MB ({after / before:.2f}x)")
    finally:
        stack.close()
        if args.keep:
            print(f"corpora and outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
