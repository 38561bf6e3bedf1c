"""`llamapipe inspect PATH`: what is in a shard file or folder, against the manifest's targets."""

from __future__ import annotations

import glob
import json
import os

import pyarrow.parquet as pq

from llamapipe.pipeline.manifest import shard_stats


def find_manifest(path: str) -> str | None:
    folder = os.path.abspath(path if os.path.isdir(path) else os.path.dirname(path))
    for _ in range(3):
        candidate = os.path.join(folder, "manifest.json")
        if os.path.exists(candidate):
            return candidate
        folder = os.path.dirname(folder)
    return None


def shard_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    files = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    if not files:
        raise FileNotFoundError(f"{path}: no .parquet shard found")
    return files


def summarize(path: str) -> dict:
    """Documents and tokens per source (read from the shards), with the manifest's shares."""
    per_source: dict[str, dict] = {}
    for file in shard_files(path):
        source = (pq.read_schema(file).metadata or {}).get(b"llamapipe.source", b"?").decode()
        stats = shard_stats(file)
        entry = per_source.setdefault(source, {"documents": 0, "tokens": 0, "shards": 0})
        entry["documents"] += stats["documents"]
        entry["tokens"] += stats["tokens"]
        entry["shards"] += 1
    manifest_path = find_manifest(path)
    manifest = None
    if manifest_path:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    total = sum(e["tokens"] for e in per_source.values()) or 1
    for source, entry in per_source.items():
        entry["token_share"] = entry["tokens"] / total
        if manifest and source in manifest["sources"]:
            target = manifest["sources"][source]
            entry["target_share"] = target["share"]
            entry["epochs"] = target["epochs"]
            entry["manifest_tokens"] = target["tokens"]
    return {"sources": per_source, "manifest": manifest_path, "total_tokens": total}


def format_summary(summary: dict) -> str:
    header = (f"{'source':<14}{'shards':>7}{'documents':>11}{'tokens':>12}{'share':>8}"
              f"{'target':>8}{'epochs':>8}")
    lines = [header, "-" * len(header)]
    for source, e in summary["sources"].items():
        target = f"{e['target_share']:>8.3f}" if "target_share" in e else f"{'-':>8}"
        epochs = f"{e['epochs']:>8.2f}" if "epochs" in e else f"{'-':>8}"
        lines.append(f"{source:<14}{e['shards']:>7}{e['documents']:>11}{e['tokens']:>12}"
                     f"{e['token_share']:>8.3f}{target}{epochs}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<14}{'':>7}{sum(e['documents'] for e in summary['sources'].values()):>11}"
                 f"{summary['total_tokens']:>12}")
    lines.append("share = this source's part of the tokens stored here; target = the mixture share of "
                 "the manifest (epochs x tokens)")
    if summary["manifest"]:
        lines.append(f"manifest: {summary['manifest']}")
    return "\n".join(lines)


def decode_documents(path: str, count: int, tokenizer_path: str | None = None):
    """Yield (doc_id, source, num_tokens, text) for the first `count` documents."""
    import sentencepiece as spm

    if tokenizer_path is None:
        manifest_path = find_manifest(path)
        if manifest_path is None:
            raise FileNotFoundError("no manifest.json found near the shards: pass --tokenizer")
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        tokenizer_path = os.path.join(os.path.dirname(manifest_path), manifest["tokenizer"]["path"])
    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    shown = 0
    for file in shard_files(path):
        for batch in pq.ParquetFile(file).iter_batches(batch_size=64):
            for row in batch.to_pylist():
                if shown >= count:
                    return
                tokens = [t for t in row["tokens"] if t != sp.bos_id()]
                yield row["doc_id"], row["source"], row["num_tokens"], sp.decode(tokens)
                shown += 1
