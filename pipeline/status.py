"""`llamapipe status OUT [--json]`: where a run is, while it runs and after.

Everything comes from what OUT holds, so it works from any machine that can read OUT, and never
disturbs the run: `run.json` (the config, so the input files listed, and what the last run did and
reused), `_work/completed.json` (the stages done), one listing of `_work/files` (the files whose per-file
work is recorded, and their documents: the count is in each record's name, `file_work.py`) and the lock
(`run_lock.py`: who runs now). Nothing is read per file.

The time left is estimated for the per-file work only, from this run's rate in input bytes (the
per-file work is most of a run's time and the one part proportional to its input; the corpus-wide
stages that follow are not estimated).
"""

from __future__ import annotations

import time

from llamapipe.pipeline.config import parse_config
from llamapipe.pipeline.file_work import Records, list_inputs, recorded_summary
from llamapipe.pipeline.output.layout import CLEAN_STEP, RUN_STEPS, OutputLayout
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
from llamapipe.pipeline.resume import CompletedStages
from llamapipe.pipeline.run_lock import describe, stale_reason
from llamapipe.tokenizer.format import storage


def run_status(out: str, now: float | None = None) -> dict:
    """The status of the run in OUT, as a dict (the `--json` output)."""
    now = time.time() if now is None else now
    layout = OutputLayout(out)
    run_path = layout.run
    if not storage.is_file(run_path):
        raise ConfigError(f"{run_path}: no run record; is {out!r} the `output` of a `llamapipe run`?")
    record = storage.read_json(run_path)
    config = parse_config(record["config"])
    files = list_inputs(config)
    summary = recorded_summary(Records(layout.files), files)
    stages_done = CompletedStages(out).names()
    holder = _holder(out, now)
    last = record.get("files") or {}
    reused = last.get("reused")
    processed = last.get("processed")
    running = holder is not None and holder.get("command") == "run" and not holder.get("stale")
    if processed is None and reused is not None:  # the per-file work is going: count what is recorded
        processed = max(summary["files_done"] - reused, 0)
    status = {
        "output": out,
        "running": running,
        "holder": holder,
        "stages_done": stages_done,
        "stage_now": (f"stopped after cleaning: {record['stopped']}" if record.get("stopped") and not running
                      else _stage_now(stages_done, summary, running)),
        **summary,
        "last_run": {"files_processed": processed, "files_reused": reused,
                     "started_at": record.get("started_at"), "finished_at": record.get("finished_at"),
                     "stage_seconds": record.get("stages", {})},
        "elapsed_seconds": None,
        "eta_seconds": None,
    }
    if record.get("started_at"):
        end = now if running else record.get("finished_at")
        status["elapsed_seconds"] = round(end - record["started_at"], 1) if end else None
    started = last.get("started_at")
    if running and started and summary["files_done"] < summary["files_total"]:
        done_now = summary["bytes_done"] - last.get("bytes_reused", 0)
        rate = done_now / max(now - started, 1e-9)
        if rate > 0:
            status["eta_seconds"] = round((summary["bytes_total"] - summary["bytes_done"]) / rate, 1)
    return status


def _holder(out: str, now: float) -> dict | None:
    path = OutputLayout(out).lock
    try:
        holder = storage.read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict):
        return None
    holder = {k: v for k, v in holder.items() if k != "token"}
    holder["stale"] = stale_reason(holder, now)
    return holder


def _stage_now(stages_done: list[str], summary: dict, running: bool) -> str:
    if len(stages_done) == len(RUN_STEPS):
        return "finished"
    if CLEAN_STEP not in stages_done:
        stage = "per-file work" if summary["files_done"] < summary["files_total"] else "corpus-wide stages"
    else:
        stage = next(s for s in RUN_STEPS if s not in stages_done)
    return stage if running else f"stopped before the end of {stage}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_status(status: dict) -> str:
    lines = [f"run in {status['output']}"]
    holder = status["holder"]
    if status["running"]:
        lines.append(f"  running: {describe(holder)}")
    elif holder and holder.get("stale"):
        lines.append(f"  not running (a stale lock: {holder['stale']})")
    else:
        lines.append("  not running")
    lines.append(f"  now: {status['stage_now']}; stages done: {', '.join(status['stages_done']) or 'none'}")
    lines.append(f"  input files recorded: {status['files_done']} of {status['files_total']} "
                 f"({status['bytes_done'] / 1e6:,.1f} of {status['bytes_total'] / 1e6:,.1f} MB); "
                 f"documents so far: {status['documents_so_far']:,}")
    last = status["last_run"]
    if last["files_reused"] is not None:
        lines.append(f"  last run: {last['files_processed']} files processed, {last['files_reused']} reused "
                     "from earlier runs")
    lines.append(f"  elapsed: {_duration(status['elapsed_seconds'])}"
                 + (f"; per-file work left: about {_duration(status['eta_seconds'])}"
                    if status["eta_seconds"] is not None else ""))
    return "\n".join(lines)
