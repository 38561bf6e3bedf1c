"""Where a `llamapipe run` spends its time and where the runner's memory climbs, stage by stage.

    python benchmarks/stages.py CONFIG [--top 20]

Runs `llamapipe run CONFIG --fresh` in this process with Beam's local runner (FnApiRunner) timing each
stage it executes (a wrapper around its `_execute_bundle`), and prints: the number of stages and their
summed wall time per pipeline; the time outside stages (start-up, graph building, tokenizer training,
report) before the first stage, between the pipelines and after the last; the `--top` longest stages;
and each stage after which the driver's peak RSS (VmHWM, the runner holds every collection crossing a
stage boundary) had risen by more than 10 MB since the last such stage (what the driver does between
stages, such as training the tokenizer between the pipelines, shows at the next stage), and the same
for the largest worker. `--json PATH` saves every stage as it ran: {"seconds": end to end, "stages":
[{"pipeline", "name", "seconds", "transforms": the label of every transform fused in it ("/" written
"-"), "driver_peak_mb" and "worker_peak_mb": the peaks once it ended}]} (`benchmarks/run.py
--stage-times` sums them by transform). Used to find what keeps 2 workers from being twice as fast as 1
(stages that run one after another, fixed costs) and what grows with the input in the runner
(benchmarks/run.py gives the end-to-end figures).

`--trace-driver` also traces the driver's Python allocations (tracemalloc, 10 frames): at each climb it
prints the Python heap's peak during that stage beside the RSS peak and the tracer's own memory, and
the 8 allocation sites that grew most since the last climb. It slows the driver's own Python, not the
workers. Read the Python heap, not the RSS, under it: the snapshot kept for the next comparison is in
the RSS and not in what tracemalloc calls its own memory (Stack Exchange alone, 75,118 threads: driver
208 / 219 / 319 MB after planning / the per-file work / dedup without the tracer, 656 / 831 / 1,090 MB
with it). Made to find what raised the driver's peak by 1.5 GB during the per-file stage at 1M
documents (README, "A run at scale"), which smaller runs did not show; a traced 1M run did not show it
either (the Python heap stayed at 128-150 MB through that stage).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory import _children  # noqa: E402


def _peak_rss_mb(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _worker_peak_mb() -> int:
    """The largest peak RSS among this process's Beam worker processes (the multi-process runner
    starts them through a shell, so they are grandchildren)."""
    children = _children()
    peak, stack = 0, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().split(b"\0")
        except OSError:
            continue
        if command[0].endswith(b"python") and b"apache_beam.runners.worker.sdk_worker_main" in command:
            peak = max(peak, _peak_rss_mb(pid))
    return peak


def _transforms(stage_name: str) -> list[str]:
    """A fused stage's name is every transform's: their labels, "/" written "-" (`Deduplicate-Shingle-..`)."""
    return re.findall(r"ref_AppliedPTransform_([A-Za-z0-9_-]+?)_\d+", stage_name)


def _short(stage_name: str) -> str:
    """A fused stage's name is every transform's; keep its first and last."""
    names = _transforms(stage_name)
    return f"{names[0]} .. {names[-1]}" if len(names) > 1 else (names[0] if names else stage_name[:100])


def _print_gaps(spans: list[tuple[float, float]], stages: list, total: float) -> None:
    """The driver's time outside stages, where it is: before the first stage, between pipelines (the
    tokenizer is trained there) and after the last (manifest, report); and between the stages of a
    pipeline (the runner's scheduling)."""
    if not spans:
        return
    print(f"  before the first stage {spans[0][0]:.1f} s, after the last {total - spans[-1][1]:.1f} s")
    within = 0.0
    for i in range(1, len(spans)):
        gap = spans[i][0] - spans[i - 1][1]
        if stages[i][0] != stages[i - 1][0]:
            print(f"  between pipelines {stages[i - 1][0]} and {stages[i][0]}: {gap:.1f} s")
        else:
            within += gap
    print(f"  between the stages of a pipeline, in all: {within:.1f} s")


class _DriverTrace:
    """tracemalloc snapshots of the driver, compared at each climb of its peak RSS (`--trace-driver`)."""

    def __init__(self, frames: int = 10, top: int = 8):
        import tracemalloc

        self._tracemalloc, self._top = tracemalloc, top
        tracemalloc.start(frames)
        self._last = tracemalloc.take_snapshot()

    def reset_peak(self) -> None:
        self._tracemalloc.reset_peak()

    def climb(self, stage: str, rss_peak_mb: int) -> None:
        current, peak = self._tracemalloc.get_traced_memory()
        snapshot = self._tracemalloc.take_snapshot()
        overhead = self._tracemalloc.get_tracemalloc_memory()  # the tracer's own, in RSS but not traced
        print(f"[trace] driver RSS peak {rss_peak_mb} MB after {stage[:80]}: Python heap now "
              f"{current / 2**20:.0f} MB, its peak during the stage {peak / 2**20:.0f} MB, the tracer's own "
              f"memory {overhead / 2**20:.0f} MB", flush=True)
        for stat in snapshot.compare_to(self._last, "traceback")[:self._top]:
            # (a Traceback runs from the oldest frame to the most recent: the allocation is the last)
            where = " <- ".join(f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}"
                                for frame in list(stat.traceback)[::-1][:4])
            print(f"[trace]   {stat.size_diff / 2**20:+8.1f} MB {stat.count_diff:+9d} blocks  {where}",
                  flush=True)
        self._last = snapshot
        self._tracemalloc.reset_peak()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--top", type=int, default=20, help="longest stages to print (default 20)")
    parser.add_argument("--json", help="also save every stage (pipeline, name, seconds) to this file")
    parser.add_argument("--trace-driver", action="store_true",
                        help="trace the driver's Python allocations; print what grew at each climb")
    args = parser.parse_args(argv)
    tracer = _DriverTrace() if args.trace_driver else None

    from apache_beam.runners.portability.fn_api_runner import fn_runner

    started = time.perf_counter()
    stages: list[tuple[int, str, float]] = []  # (pipeline, stage, seconds)
    details: list[dict] = []  # the same, with every transform and the peaks after the stage, for --json
    spans: list[tuple[float, float]] = []  # (start, end) of each stage, since `started`
    climbs: list[tuple[int, int, str]] = []
    worker_climbs: list[tuple[int, int, str]] = []
    reported = [_peak_rss_mb()]
    worker_reported = [0]
    pipelines = [0]
    execute_bundle, run_pipeline = fn_runner.FnApiRunner._execute_bundle, fn_runner.FnApiRunner.run_pipeline

    def timed_bundle(self, context, bundle_context, bundle_input):
        begun = time.perf_counter()
        result = execute_bundle(self, context, bundle_context, bundle_input)
        name = _short(bundle_context.stage.name)
        ended = time.perf_counter()
        stages.append((pipelines[0], name, ended - begun))
        spans.append((begun - started, ended - started))
        after = _peak_rss_mb()
        worker = _worker_peak_mb()
        details.append({"pipeline": pipelines[0], "name": name, "seconds": round(ended - begun, 4),
                        "transforms": _transforms(bundle_context.stage.name), "driver_peak_mb": after,
                        "worker_peak_mb": worker})
        if after > reported[0] + 10:  # since the last climb printed: slow climbs add up
            climbs.append((reported[0], after, name))
            reported[0] = after
            if tracer:
                tracer.climb(name, after)
        elif tracer:
            tracer.reset_peak()
        if worker > worker_reported[0] + 10:
            worker_climbs.append((worker_reported[0], worker, name))
            worker_reported[0] = worker
        return result

    def counted_pipeline(self, pipeline, options):
        pipelines[0] += 1
        return run_pipeline(self, pipeline, options)

    fn_runner.FnApiRunner._execute_bundle = timed_bundle
    fn_runner.FnApiRunner.run_pipeline = counted_pipeline
    from llamapipe.pipeline import cli

    try:
        code = cli.main(["run", args.config, "--fresh"])
    except SystemExit as stop:
        code = stop.code
    if code:
        raise SystemExit(code)
    total = time.perf_counter() - started
    in_stages = sum(seconds for _, _, seconds in stages)
    print(f"\nend to end {total:.1f} s; in stages {in_stages:.1f} s; "
          f"outside stages {total - in_stages:.1f} s")
    for number in sorted({p for p, _, _ in stages}):
        mine = [seconds for p, _, seconds in stages if p == number]
        print(f"  pipeline {number}: {len(mine)} stages, {sum(mine):.1f} s")
    _print_gaps(spans, stages, total)
    print(f"longest {args.top} stages:")
    for pipeline, name, seconds in sorted(stages, key=lambda s: -s[2])[:args.top]:
        print(f"  {seconds:7.2f} s  [{pipeline}] {name[:110]}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"seconds": total, "stages": details}, f, indent=1)
    print("driver peak RSS climbs (> 10 MB) during:")
    for before, after, name in climbs:
        print(f"  {before:5d} -> {after:5d} MB  {name[:110]}")
    if worker_climbs:  # multi-process runner: its workers are child processes
        print("largest worker's peak RSS climbs (> 10 MB) during:")
        for before, after, name in worker_climbs:
            print(f"  {before:5d} -> {after:5d} MB  {name[:110]}")


if __name__ == "__main__":
    main()
