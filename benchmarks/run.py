"""The whole `llamapipe run`, per stage and end to end, with 1 and 2 workers and at 1x and 4x input.

    python benchmarks/run.py                         # 4,000 documents at 1x (16,000 at 4x), 1 and 2 workers
    python benchmarks/run.py --docs 2000 --skip-4x
    python benchmarks/run.py --docs 8000 --speedup-at-4x  # the figures of the README (about 15 minutes)
    python benchmarks/run.py --docs 4000 --skip-4x --workers 2 --storage local,s3
                                                     # OUT and inputs on local disk, then on an S3 server
    python benchmarks/run.py --scales 128000,512000,1000000 --corpora /work/bench-corpora --prepare-only
                                                     # write the corpora once (about 25 minutes on 2 cores)
    python benchmarks/run.py --scales 128000,512000,1000000 --corpora /work/bench-corpora [--stage-times]
                                                     # one run per size, 2 workers: how each figure grows

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

With `--scales N1,N2,..` (instead of 1x/4x) there is one run per size, with `--workers` (default 2), on
corpora kept in `--corpora DIR` (DIR/corpus-<N>, written by `make_corpus.py --jobs`, cores by default,
and reused by later invocations; a folder without its corpus.json, written last, is written again;
`--prepare-only` stops there). Each run's OUT is removed after it (kept with --keep). For each size:
documents in and kept, input MB, wall seconds, documents/s, MB/s per core, the seconds of every stage
OUT/run.json records, the peak memory of each kind of process (driver, beam-worker, extraction, ...),
the driver's peak and its bytes per input document past the previous size and past the smallest (the
marginal cost, which is what grows), and CPU seconds. Then a table of each figure's ratio to the
previous size against the documents' ratio, flagging what grows faster than linearly (> 1.1x). With
`--stage-times` each run is `benchmarks/stages.py CONFIG --json` (the same run, in one driver process,
each Beam stage timed), and the Beam stages are also summed by step: those whose fused transforms
include Dedup (Deduplicate, WriteDedupReport), LineDedup, Perplexity, ReferenceClassifier,
WriteDocuments, CountLedger or Tokenize (a fused stage counts for each step in it), with the driver's
and the largest worker's peak RSS rise during them. Saved to benchmarks/results/scale.json.

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


def run_once(config: Path, out: Path | str, command: list[str] | None = None) -> dict:
    """`llamapipe run CONFIG --fresh` (or `command`, a run of CONFIG) watched: its figures."""
    from llamapipe.tokenizer.format import storage

    command = command or [sys.executable, "-m", "llamapipe.pipeline.cli", "run", str(config), "--fresh"]
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


# --- --scales: one run per corpus size, and how each figure grows with it ----------------------------------

# The corpus-wide steps of the cleaning pipeline and the tokenization step, as --stage-times groups the
# Beam stages: a stage counts for a group when one of its fused transforms' top-level label contains the
# word (LineDedup before Dedup, which it also contains).
STAGE_GROUPS = ("LineDedup", "Dedup", "Perplexity", "ReferenceClassifier", "WriteDocuments", "CountLedger",
                "Tokenize")
NOISE_SECONDS = 2.0


def scale_corpus(docs: int, corpora: Path, jobs: int) -> tuple[Path, dict]:
    """corpora/corpus-<docs>, written unless a complete one is there (its corpus.json is written last)."""
    folder = corpora / f"corpus-{docs}"
    summary = folder / "corpus.json"
    if summary.is_file():
        info = json.loads(summary.read_text(encoding="utf-8"))
        print(f"[{docs:,}] corpus {folder}: reused ({info['documents']:,} documents, "
              f"{info['bytes'] / 1e6:.1f} MB, written in {info.get('seconds', '?')} s)", flush=True)
        return folder, {**info, "reused": True}
    if folder.exists():  # unfinished: written again from scratch
        shutil.rmtree(folder)
    print(f"[{docs:,}] corpus {folder}: writing ({jobs} processes)", flush=True)
    info = {"requested": docs, **make_corpus(docs, str(folder), jobs=jobs)}
    summary.write_text(json.dumps(info, indent=2), encoding="utf-8")
    print(f"[{docs:,}] corpus {folder}: {info['documents']:,} documents, {info['bytes'] / 1e6:.1f} MB, "
          f"written in {info['seconds']} s", flush=True)
    return folder, {**info, "reused": False}


def stage_groups(path: Path) -> dict[str, dict]:
    """benchmarks/stages.py's --json summed per group of STAGE_GROUPS: seconds, stages, the seconds of
    stages fused with another group's transforms (counted in both), and the driver's and the largest
    worker's peak RSS climb during the group's stages (a worker's peak drops when a pipeline's workers
    are replaced: only rises count); for "other", also its largest stages by top-level labels."""
    with open(path, encoding="utf-8") as f:
        stages = json.load(f)["stages"]
    others: dict[str, float] = {}
    groups = {name: {"seconds": 0.0, "stages": 0, "shared_seconds": 0.0, "driver_climb_mb": 0,
                     "worker_climb_mb": 0} for name in (*STAGE_GROUPS, "other")}
    driver = worker = None
    for stage in stages:
        mine = {next((g for g in STAGE_GROUPS if g in label.split("-", 1)[0]), "other")
                for label in stage["transforms"]} or {"other"}
        if len(mine) > 1:
            mine.discard("other")
        if mine == {"other"}:
            labels = "+".join(dict.fromkeys(label.split("-", 1)[0] for label in stage["transforms"]))
            others[labels or "(unnamed)"] = others.get(labels or "(unnamed)", 0.0) + stage["seconds"]
        for name in mine:
            group = groups[name]
            group["seconds"] += stage["seconds"]
            group["stages"] += 1
            group["shared_seconds"] += stage["seconds"] if len(mine) > 1 else 0.0
            if driver is not None:
                group["driver_climb_mb"] += stage["driver_peak_mb"] - driver
                group["worker_climb_mb"] += max(0, stage["worker_peak_mb"] - worker)
        driver, worker = stage["driver_peak_mb"], stage["worker_peak_mb"]
    for group in groups.values():
        for key in ("seconds", "shared_seconds"):
            group[key] = round(group[key], 2)
    groups["other"]["largest"] = [(labels, round(seconds, 2)) for labels, seconds in
                                  sorted(others.items(), key=lambda kv: -kv[1])[:5]]
    return groups


def scale_run(docs: int, corpus: Path, info: dict, workers: int, work: Path, stage_times: bool,
              keep: bool) -> dict:
    out, config = work / f"out-{docs}", work / f"config-{docs}.yaml"
    write_config(corpus, out, workers, config)
    command, times = None, work / f"stages-{docs}.json"
    if stage_times:
        command = [sys.executable, str(REPO / "benchmarks" / "stages.py"), str(config), "--json", str(times)]
    under = " under benchmarks/stages.py" if stage_times else ""
    print(f"[{docs:,}] running with {workers} workers{under}", flush=True)
    run = run_once(config, out, command)
    seconds = run["seconds"]
    run.update(input_mb=round(info["bytes"] / 1e6, 1),
               documents_per_s=round(run["documents_in"] / seconds, 1),
               mb_per_s_per_core=round(info["bytes"] / 1e6 / seconds / workers, 4),
               driver_peak_mb=run["peak_mb_by_role"].get("driver", 0.0))
    if stage_times:
        run["stage_groups"] = stage_groups(times)
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return run


def add_driver_bytes(runs: dict[int, dict]) -> None:
    """The driver's peak RSS per input document, past the smallest scale: against the previous scale
    (marginal, what grows) and against the smallest."""
    scales = sorted(runs)
    for before, after in zip(scales, scales[1:], strict=False):
        one, two, smallest = runs[before], runs[after], runs[scales[0]]
        for key, base in (("driver_bytes_per_doc_marginal", one),
                          ("driver_bytes_per_doc_vs_smallest", smallest)):
            docs = two["documents_in"] - base["documents_in"]
            grown = (two["driver_peak_mb"] - base["driver_peak_mb"]) * 2**20
            two[key] = round(grown / docs) if docs else None


def print_scale(docs: int, run: dict, workers: int) -> None:
    print(f"[{docs:,}] {run['documents_in']:,} documents in, {run['documents_kept']:,} kept, "
          f"{run['input_mb']} MB input; {run['seconds']} s wall, {run['documents_per_s']} documents/s, "
          f"{run['mb_per_s_per_core']:.3f} MB/s per core ({workers} workers); CPU {run['cpu_seconds']} s "
          f"(busiest processes {run['cpu_seconds_busiest']})")
    print("  stages (OUT/run.json): " + ", ".join(f"{k} {v} s" for k, v in run["stages"].items()))
    print("  peak MB by process role: " + ", ".join(f"{k} {v}" for k, v in run["peak_mb_by_role"].items())
          + f"; largest process {run['largest_process_mb']}, all processes {run['tree_peak_total_mb']}")
    line = f"  driver: peak {run['driver_peak_mb']} MB"
    if run.get("driver_bytes_per_doc_marginal") is not None:
        line += (f"; bytes per input document {run['driver_bytes_per_doc_marginal']:,} since the previous "
                 f"scale, {run['driver_bytes_per_doc_vs_smallest']:,} since the smallest")
    print(line)
    if "stage_groups" in run:
        print(f"  {'Beam stages by group (stages.py)':<36}{'seconds':>9}{'stages':>8}{'fused w/ other s':>18}"
              f"{'driver +MB':>12}{'worker +MB':>12}")
        for name, group in run["stage_groups"].items():
            if group["stages"]:
                print(f"    {name:<34}{group['seconds']:>9.2f}{group['stages']:>8}"
                      f"{group['shared_seconds']:>18.2f}{group['driver_climb_mb']:>12}"
                      f"{group['worker_climb_mb']:>12}")
        print("    other's largest: " + ", ".join(f"{labels[:60]} {seconds} s" for labels, seconds in
                                                  run["stage_groups"]["other"].get("largest", [])))
    sys.stdout.flush()


def scale_metrics(run: dict) -> dict[str, float]:
    """The figures of a run compared across scales, by name."""
    metrics = {"documents in": run["documents_in"], "documents kept": run["documents_kept"],
               "input MB": run["input_mb"], "wall s": run["seconds"], "CPU s": run["cpu_seconds"]}
    metrics.update({f"stage {k} s": v for k, v in run["stages"].items()})
    metrics.update({f"peak MB {k}": v for k, v in run["peak_mb_by_role"].items()})
    metrics["peak MB all processes"] = run["tree_peak_total_mb"]
    for name, group in run.get("stage_groups", {}).items():
        if group["stages"]:
            metrics[f"Beam {name} s"] = group["seconds"]
    return metrics


def scaling(runs: dict[int, dict]) -> list[dict]:
    """For each metric and each step between scales: its ratio, the documents' ratio, and whether it
    grew faster than linearly (ratio > 1.1x the documents'; a time under NOISE_SECONDS at the larger
    scale is not flagged: 0.01 -> 0.03 s says nothing)."""
    scales = sorted(runs)
    rows = []
    for before, after in zip(scales, scales[1:], strict=False):
        one, two = scale_metrics(runs[before]), scale_metrics(runs[after])
        docs = two["documents in"] / one["documents in"]
        for name in dict.fromkeys([*one, *two]):
            if one.get(name) and two.get(name) is not None:
                ratio = two[name] / one[name]
                noise = name.endswith(" s") and two[name] < NOISE_SECONDS
                rows.append({"metric": name, "from": before, "to": after, "ratio": round(ratio, 3),
                             "documents_ratio": round(docs, 3),
                             "superlinear": ratio > 1.1 * docs and not noise})
    return rows


def print_scaling(rows: list[dict]) -> None:
    steps = list(dict.fromkeys((row["from"], row["to"]) for row in rows))
    if not steps:
        return
    print("\nscaling: each figure's ratio to the previous scale, against the documents' ratio; "
          f"! = faster than linear (> 1.1x the documents' ratio; not for times under {NOISE_SECONDS} s)")
    by_metric: dict[str, dict] = {}
    for row in rows:
        by_metric.setdefault(row["metric"], {})[(row["from"], row["to"])] = row
    width = 24
    print(f"  {'':<34}" + "".join(f"{f'{a:,} -> {b:,}':>{width}}" for a, b in steps))
    docs = {(row["from"], row["to"]): row["documents_ratio"] for row in rows}
    print(f"  {'(documents ratio)':<34}" + "".join(f"{docs[step]:>{width}.2f}" for step in steps))
    for metric, cells in by_metric.items():
        text = "".join(f"{cells[step]['ratio']:>{width - 2}.2f}{' !' if cells[step]['superlinear'] else '  '}"
                       if step in cells else f"{'':>{width}}" for step in steps)
        print(f"  {metric[:34]:<34}{text}")
    flagged = sorted({row["metric"] for row in rows if row["superlinear"]})
    print("faster than linear: " + (", ".join(flagged) if flagged else "none"), flush=True)


def main_scales(args: argparse.Namespace) -> None:
    scales = sorted(int(n) for n in args.scales.split(","))
    workers = [int(w) for w in (args.workers or "2").split(",")]
    if len(workers) != 1:
        sys.exit("--scales runs every scale with one worker count: give --workers N")
    corpora = Path(args.corpora) if args.corpora else None
    work = Path(tempfile.mkdtemp(prefix="llamapipe-scale-bench-"))
    results: dict = {"config": {"scales": scales, "workers": workers[0], "stage_times": args.stage_times,
                                "corpora": str(corpora) if corpora else None},
                     "corpora": {}, "runs": {}}
    try:
        found = {}
        for docs in scales:
            corpus, info = scale_corpus(docs, corpora or work, args.corpus_jobs)
            found[docs] = corpus
            results["corpora"][docs] = info
        if args.prepare_only:
            for docs, info in results["corpora"].items():
                print(f"  {docs:>10,}: {info['documents']:>10,} documents {info['bytes'] / 1e6:>9.1f} MB  "
                      f"written in {info['seconds']} s with {info.get('jobs', 1)} processes in {found[docs]}")
            return
        for docs in scales:
            run = scale_run(docs, found[docs], results["corpora"][docs], workers[0], work, args.stage_times,
                            args.keep)
            results["runs"][docs] = run
            add_driver_bytes(results["runs"])
            print_scale(docs, run, workers[0])
            results["scaling"] = scaling(results["runs"])
            save_results(results, args.out)  # after each size: a series stopped early keeps what it measured
        print_scaling(results["scaling"])
    finally:
        if args.keep:
            print(f"outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"saved {save_results(results, args.out)}")


def save_results(results: dict, out: str | None) -> str:
    out = out or str(REPO / "benchmarks" / "results" / "scale.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, help="documents at 1x (default 4000)")
    parser.add_argument("--workers", help="worker counts to compare (default 1,2; with --scales one count, "
                                          "default 2)")
    parser.add_argument("--skip-4x", action="store_true", help="no 4x run (no memory comparison)")
    parser.add_argument("--speedup-at-4x", action="store_true",
                        help="run 4x with every worker count too, for the speed-up at 4x (fixed costs of a "
                             "run, such as starting workers and scheduling stages, weigh less there)")
    parser.add_argument("--storage", default="local",
                        help="where inputs and OUT are: local, s3 (moto's S3 server, started here) or both "
                             "as local,s3 (default local)")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and outputs")
    parser.add_argument("--out", help="results JSON (default benchmarks/results/run.json, with --scales "
                                      "scale.json)")
    scale = parser.add_argument_group("scale mode (instead of 1x/4x)")
    scale.add_argument("--scales", help="documents per run, one run per scale, e.g. 128000,512000,1000000")
    scale.add_argument("--corpora", help="folder of the corpora, DIR/corpus-<N>, written once and reused "
                                         "(default: a temporary folder)")
    scale.add_argument("--corpus-jobs", type=int, default=os.cpu_count() or 1,
                       help="processes writing a corpus (make_corpus.py --jobs; default: the cores)")
    scale.add_argument("--prepare-only", action="store_true", help="write (or find) the corpora, and stop")
    scale.add_argument("--stage-times", action="store_true",
                       help="run under benchmarks/stages.py and sum its Beam stages by step (Dedup, "
                            "LineDedup, Perplexity, ...)")
    args = parser.parse_args(argv)
    if args.scales:
        clashing = [flag for flag, given in (("--docs", args.docs is not None), ("--skip-4x", args.skip_4x),
                                             ("--speedup-at-4x", args.speedup_at_4x),
                                             ("--storage", args.storage != "local")) if given]
        if clashing:
            parser.error(f"--scales runs its own sizes on local storage: not with {', '.join(clashing)}")
        if args.prepare_only and not args.corpora:
            parser.error("--prepare-only needs --corpora (where the corpora stay)")
        return main_scales(args)
    for flag in ("corpora", "prepare_only", "stage_times"):
        if getattr(args, flag):
            parser.error(f"--{flag.replace('_', '-')} is for --scales")
    args.docs = 4000 if args.docs is None else args.docs
    args.out = args.out or str(REPO / "benchmarks" / "results" / "run.json")
    workers = [int(w) for w in (args.workers or "1,2").split(",")]
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
