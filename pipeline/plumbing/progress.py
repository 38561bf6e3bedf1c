"""Live progress of a local Beam run: documents out of each stage, printed while the pipeline runs.

Beam's local runners report metrics only in the result of a finished pipeline (the FnApiRunner behind
the DirectRunner runs every stage before `run()` returns), so the counts travel another way:

- `LiveProgress.count(pcoll, step)` hangs a counting DoFn on a stage's output, as a side branch that
  emits nothing, so the documents' own path and every output are unchanged;
- the DoFns of one process add to one counter per pipeline, under a lock, and that process rewrites its
  file `OUT/_work/progress/<pipeline>/<host>-<pid>.json` at most once a second and at the end of each
  bundle (atomically: a reader sees the previous or the new counts). In the in-memory mode that process
  is the driver itself; in the multi-processing mode each worker writes its own file;
- a driver thread sums the files every second (every 10 on a log) and prints one line to stdout:
  rewritten in place on a terminal, a new line only when the counts changed otherwise.

Only for the DirectRunner (its workers share the driver's disk);
`LLAMAPIPE_PROGRESS=0` turns it off.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

FLUSH_SECONDS = 1.0  # how stale a worker's file may get while it processes elements
SWITCH = "LLAMAPIPE_PROGRESS"


class _ProcessCounts:
    """This process's counts, one Counter per pipeline folder, and when its file was last written."""

    def __init__(self):
        self._lock = threading.Lock()  # bundles of one worker run in several threads
        self._counts: dict[str, Counter] = {}
        self._written: dict[str, float] = {}

    def add(self, folder: str, step: str, n: int = 1) -> None:
        with self._lock:
            counts = self._counts.get(folder)
            if counts is None:
                counts = self._counts[folder] = Counter()
            counts[step] += n
            if time.monotonic() - self._written.get(folder, 0.0) >= FLUSH_SECONDS:
                self._write(folder)

    def flush(self, folder: str) -> None:
        with self._lock:
            if folder in self._counts:
                self._write(folder)

    def forget(self, folder: str) -> None:
        with self._lock:
            self._counts.pop(folder, None)
            self._written.pop(folder, None)

    def _write(self, folder: str) -> None:
        self._written[folder] = time.monotonic()
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{socket.gethostname()}-{os.getpid()}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(self._counts[folder], f)
        os.replace(path + ".tmp", path)


_PROCESS_COUNTS = _ProcessCounts()


def count_in_process(folder: str, step: str, n: int = 1) -> None:
    """Count `n` documents out of `step` from inside a DoFn that does several steps (declare the steps
    with `LiveProgress.declare`)."""
    _PROCESS_COUNTS.add(folder, step, n)


class CountForProgress(beam.DoFn):
    """Counts the elements of a PCollection under `step` and emits nothing."""

    def __init__(self, folder: str, step: str):
        self._folder = folder
        self._step = step

    def process(self, element):
        _PROCESS_COUNTS.add(self._folder, self._step)
        return ()

    def finish_bundle(self):
        _PROCESS_COUNTS.flush(self._folder)


def read_counts(folder: str) -> Counter:
    """The sum of every process's latest counts."""
    total: Counter = Counter()
    for path in glob.glob(os.path.join(folder, "*.json")):
        try:
            with open(path, encoding="utf-8") as f:
                total.update(json.load(f))
        except (OSError, ValueError):  # a file being replaced right now: next time
            continue
    return total


def _short(n: int) -> str:
    return f"{n:,}" if n < 100_000 else f"{n / 1000:,.0f}k"


def format_progress(counts: Counter, steps: list[str], elapsed: float, totals: dict[str, int]) -> str:
    """`0:42 read 2,133 | extract 2,133→2,127 | langid 2,127→1,900 | quality 1,000→950`: documents into
    and out of each stage (a stage's input is its predecessor's output), or `n/total` when known."""
    parts = []
    for i, step in enumerate(steps):
        out = counts.get(step, 0)
        if step in totals:
            parts.append(f"{step} {_short(out)}/{_short(totals[step])}")
        elif i == 0:
            parts.append(f"{step} {_short(out)}")
        else:
            into = counts.get(steps[i - 1], 0)
            if into or out:
                parts.append(f"{step} {_short(into)}→{_short(out)}")
    minutes, seconds = divmod(int(elapsed), 60)
    return f"{minutes}:{seconds:02d} " + " | ".join(parts)


def progress_enabled(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    runner = runner if isinstance(runner, str) else type(runner).__name__
    return runner.split(".")[-1] in ("DirectRunner", "SwitchingDirectRunner", "LocalRunner") and \
        os.environ.get(SWITCH, "1") != "0"


class LiveProgress:
    """Context manager around one pipeline: the graph builder calls `count()`; `__exit__` (after the
    pipeline ran) stops the printing thread. Does nothing when progress is not enabled."""

    def __init__(self, work_dir: str, options: PipelineOptions, totals: dict[str, int] | None = None,
                 stream=None, interval: float | None = None):
        self.enabled = progress_enabled(options)
        # The counts are local files of the local runner's processes: with OUT on an object store
        # they wait in a local temporary folder instead (the same machine's processes share it).
        local = work_dir if "://" not in work_dir else os.path.join(tempfile.gettempdir(), "llamapipe")
        self.folder = os.path.join(local, "progress", uuid.uuid4().hex[:12])
        self.steps: list[str] = []
        self._totals = totals or {}
        self._stream = stream or sys.stdout
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval or (1.0 if self._tty else 10.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._last: Counter = Counter()

    def count(self, pcoll, step: str, label: str | None = None) -> None:
        """Count the documents of `pcoll` as the output of `step` (steps print in the order counted)."""
        if not self.enabled:
            return
        if step not in self.steps:
            self.steps.append(step)
        pcoll | (label or f"Progress_{step}") >> beam.ParDo(CountForProgress(self.folder, step))

    def declare(self, *steps: str) -> str | None:
        """Steps counted inside DoFns (`count_in_process`), in order; returns the folder to count in
        (None when progress is off)."""
        if not self.enabled:
            return None
        self.steps += [step for step in steps if step not in self.steps]
        return self.folder

    def __enter__(self) -> LiveProgress:
        if self.enabled:
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._loop, name="llamapipe-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        if self._tty:
            self._stream.write("\r\033[K")  # the funnel printed next says it all
        else:
            self._print()  # the last counts, when they changed since the last line
        self._stream.flush()
        _PROCESS_COUNTS.forget(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._print()

    def _print(self) -> None:
        counts = read_counts(self.folder)
        if not counts or (counts == self._last and not self._tty):
            return
        self._last = counts
        line = format_progress(counts, self.steps, time.monotonic() - self._started, self._totals)
        if self._tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            shown = line if len(line) <= width else "…" + line[-(width - 1):]  # the latest stages
            self._stream.write("\r\033[K" + shown)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
