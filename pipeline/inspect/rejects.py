"""`llamapipe inspect OUT/rejects [--reason R] [--source S] [--show N]`: the sampled drops, by reason,
and the text of some of them. The rejects may be local or on an object store (s3://, gs://)."""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq

from llamapipe.tokenizer.format import storage


def is_rejects(path: str) -> bool:
    """A rejects folder or file (written by pipeline/output/rejects.py), as opposed to token shards."""
    files = reject_files(path, must_exist=False)
    if not files:
        return False
    with storage.open_read(files[0]) as f:
        metadata = pq.read_schema(f).metadata or {}
    return metadata.get(b"llamapipe.kind") == b"rejects"


def reject_files(path: str, must_exist: bool = True) -> list[str]:
    if storage.is_file(path):
        return [path]
    files = storage.glob(storage.join(path, "*.parquet"))
    if not files and must_exist:
        raise FileNotFoundError(f"{path}: no rejects .parquet file found")
    return files


def load_rejects(path: str, reason: str | None = None, source: str | None = None) -> list[dict]:
    rows = []
    for file in reject_files(path):
        with storage.open_read(file) as f:
            table = pq.read_table(f)
        for row in table.to_pylist():
            if reason and row["reason"] != reason:
                continue
            if source and row["source"] != source:
                continue
            rows.append(row)
    rows.sort(key=lambda r: (r["source"], r["stage"], r["reason"], r["id"]))
    return rows


def format_rejects(path: str, reason: str | None = None, source: str | None = None, show: int = 3,
                   max_chars: int = 2000) -> str:
    everything = load_rejects(path, source=source)
    rows = [r for r in everything if not reason or r["reason"] == reason]
    if reason and not rows:
        known = sorted({r["reason"] for r in everything})
        return f"no sampled reject with reason {reason!r}; reasons in the sample: {', '.join(known)}"
    counts = Counter((r["source"], r["stage"], r["reason"]) for r in rows)
    lines = [f"{'source':<14}{'stage':<12}{'reason':<36}{'sampled':>8}"]
    for (src, stage, why), count in sorted(counts.items()):
        lines.append(f"{src:<14}{stage:<12}{why:<36}{count:>8}")
    lines.append("(a sample of the drops: see OUT/ledger.json for the counts of all of them)")
    if reason:
        for row in rows[:show]:
            text = row["text"] if row["text"] is not None else "(text not kept by this stage)"
            cut = "" if len(text) <= max_chars else f"\n[... {len(text) - max_chars} more characters]"
            detail = f" - {row['detail']}" if row["detail"] else ""
            lines.append(f"\n=== {row['id']} ({row['source']}, {row['stage']}/{row['reason']}{detail}) ===")
            lines.append(text[:max_chars] + cut)
    return "\n".join(lines)
