"""The shard manifest: per source documents, tokens, shard list with checksums, target share and
epochs computed from the real token counts (RECIPE section 1); the tokenizer's path and sha256."""

from __future__ import annotations

import glob
import json
import os

import pyarrow.compute as pc
import pyarrow.parquet as pq

from llamapipe.pipeline.config import MixtureConfig
from llamapipe.pipeline.tokenize import SCHEMA_VERSION
from llamapipe.sources.base import SOURCE_NAMES
from llamapipe.tokenizer.train import file_sha256


def shard_stats(path: str) -> dict:
    """Documents and tokens of one shard, read column-wise (only `num_tokens`)."""
    parquet = pq.ParquetFile(path)
    tokens = 0
    for batch in parquet.iter_batches(columns=["num_tokens"], batch_size=65536):
        tokens += pc.sum(batch.column(0)).as_py() or 0
    return {"documents": parquet.metadata.num_rows, "tokens": int(tokens)}


def mixture_weights(tokens: dict[str, int], mixture: MixtureConfig) -> tuple[dict, dict, int]:
    """(share, epochs, trained-token budget) per source, from real token counts.

    With a token budget the configured shares are the target: epochs = share * budget / tokens.
    Without one the configured epochs are the target: share = epochs * tokens / sum(epochs * tokens).
    """
    present = {s: t for s, t in tokens.items() if t > 0 and s in mixture.sources}
    shares, epochs = {}, {}
    if mixture.token_budget:
        total_share = sum(mixture.sources[s].share for s in present) or 1.0
        budget = mixture.token_budget
        for s, t in present.items():
            shares[s] = mixture.sources[s].share / total_share
            epochs[s] = shares[s] * budget / t
    else:
        budget = sum(mixture.sources[s].epochs * t for s, t in present.items())
        for s, t in present.items():
            epochs[s] = mixture.sources[s].epochs
            shares[s] = epochs[s] * t / budget if budget else 0.0
    return shares, epochs, int(round(budget))


def build_manifest(shards_dir: str, tokenizer_path: str, vocab_size: int, mixture: MixtureConfig) -> dict:
    sources = {}
    for source in SOURCE_NAMES:
        paths = sorted(glob.glob(os.path.join(shards_dir, source, "*.parquet")))
        if not paths:
            continue
        shards = []
        for path in paths:
            stats = shard_stats(path)
            shards.append({"path": os.path.relpath(path, shards_dir), "sha256": file_sha256(path), **stats})
        sources[source] = {
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "shards": shards,
        }
    shares, epochs, budget = mixture_weights({s: e["tokens"] for s, e in sources.items()}, mixture)
    for source, entry in sources.items():
        entry["share"] = round(shares.get(source, 0.0), 6)
        entry["epochs"] = round(epochs.get(source, 0.0), 6)
        # target share as configured (before renormalisation), for comparison
        configured = mixture.sources.get(source)
        entry["configured_share"] = configured.share if configured else 0.0
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    return {
        "schema_version": SCHEMA_VERSION,
        "tokenizer": {
            "path": os.path.relpath(tokenizer_path, shards_dir),
            "sha256": file_sha256(tokenizer_path),
            "vocab_size": vocab_size,
            "bos_id": sp.bos_id(),
            "eos_id": sp.eos_id(),
        },
        "sources": sources,
        "total_tokens": sum(e["tokens"] for e in sources.values()),
        "token_budget": budget,
    }


def write_manifest(manifest: dict, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp, path)


def read_manifest(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: manifest schema version {manifest.get('schema_version')!r} "
                         f"is not {SCHEMA_VERSION}")
    return manifest
