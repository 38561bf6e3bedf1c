"""The shard manifest, `OUT/shards/manifest.json`: what a trainer needs to mix the sources. Read and
validated here; built by the pipeline (`llamapipe.pipeline.output.manifest`).

    schema_version, mixture_mode ("token_budget" or "epochs"), token_budget, total_tokens,
    tokenizer: path (relative to the manifest), sha256, vocab_size, bos_id, eos_id
    sources.<name>: documents, tokens, share, epochs, configured_share, configured_epochs,
                    escaped_u2581_documents, num_shards,
                    shards: [path, sha256, tokens, documents]

This is the one place where a manifest is validated (`validate_manifest`), for the trainer and for
`llamapipe inspect verify`. No Beam import here: the trainer imports this module.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.shards import SCHEMA_VERSION, footer

MANIFEST_NAME = "manifest.json"


def shard_stats(path: str) -> dict:
    """Documents and tokens of one shard, read column-wise (only `num_tokens`)."""
    with storage.open_read(path) as f:
        parquet = pq.ParquetFile(f)
        tokens = 0
        for batch in parquet.iter_batches(columns=["num_tokens"], batch_size=65536):
            tokens += pc.sum(batch.column(0)).as_py() or 0
        return {"documents": parquet.metadata.num_rows, "tokens": int(tokens)}


def read_manifest(path: str | Path) -> dict:
    """The parsed manifest, unchecked (see `validate_manifest`)."""
    return storage.read_json(str(path))


def validate_manifest(
    manifest: dict | str | Path,
    tokenizer_path: str | Path | None = None,
    *,
    check_sha256: bool = True,
    check_footers: bool = True,
    root: str | Path | None = None,
) -> dict:
    """Check that the shards are the ones the manifest describes, tokenized by the tokenizer at hand.

    `manifest` is the manifest's path, or its parsed dict plus `root` (the folder its shard paths are
    relative to). Raises one `ValueError` listing every problem: wrong schema version, tokenizer digest
    different from `tokenizer_path`'s, missing shards, shards whose footer names another tokenizer (with
    `check_footers`, one small read per shard) and shards whose content changed (with `check_sha256`,
    which reads every shard once). Returns the parsed manifest."""
    if not isinstance(manifest, dict):
        root = storage.dirname(str(manifest)) if root is None else root
        manifest = read_manifest(manifest)
    elif root is None:
        raise ValueError("validate_manifest needs `root` (the manifest's folder) when given a parsed dict")
    problems = manifest_problems(manifest, str(root), tokenizer_path, check_sha256=check_sha256,
                                 check_footers=check_footers)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise ValueError("invalid token-shard manifest:\n  " + "\n  ".join(shown))
    return manifest


def manifest_problems(manifest: dict, root: str | Path, tokenizer_path: str | Path | None = None, *,
                      check_sha256: bool = True, check_footers: bool = True) -> list[str]:
    problems: list[str] = []
    if manifest.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version {manifest.get('schema_version')!r} is not {SCHEMA_VERSION}")
    tokenizer = manifest.get("tokenizer") or {}
    if not isinstance(tokenizer.get("vocab_size"), int) or tokenizer["vocab_size"] <= 0:
        problems.append("tokenizer.vocab_size is missing or not a positive integer")
    if tokenizer_path is not None:
        if not storage.is_file(str(tokenizer_path)):
            problems.append(f"tokenizer file {tokenizer_path} does not exist")
        else:
            actual = storage.sha256(str(tokenizer_path))
            if actual != tokenizer.get("sha256"):
                problems.append(
                    f"tokenizer {tokenizer_path} has sha256 {actual} but the shards were tokenized with "
                    f"sha256 {tokenizer.get('sha256')}: token ids would not mean the same pieces"
                )
    sources = manifest.get("sources") or {}
    for name, entry in sources.items():
        for key in ("tokens", "documents"):
            listed = sum(shard.get(key, 0) for shard in entry.get("shards", []))
            if key in entry and listed != entry[key]:
                problems.append(f"source {name} has {entry[key]} {key} but its shards add up to {listed}")
    total = sum(e.get("tokens", 0) for e in sources.values())
    if "total_tokens" in manifest and manifest["total_tokens"] != total:
        problems.append(f"total_tokens {manifest['total_tokens']} is not the sum of the sources' tokens")
    for name, entry in sources.items():
        if entry.get("tokens", 0) <= 0:
            continue  # sources the pipeline kept nothing of are listed with empty shard lists
        if not entry.get("shards"):
            problems.append(f"source {name} has {entry['tokens']} tokens but no shards")
        for shard in entry.get("shards", []):
            path = storage.resolve(str(root), shard["path"])
            if not storage.is_file(path):
                problems.append(f"shard {path} of source {name} does not exist")
                continue
            if check_footers:
                try:
                    shard_tokenizer = footer(path).get("tokenizer_sha256")
                except (pa.ArrowException, OSError):
                    shard_tokenizer = None  # unreadable: the sha256 check (or the reader) reports it
                if shard_tokenizer is not None and shard_tokenizer != tokenizer.get("sha256"):
                    problems.append(f"shard {path} of source {name} was tokenized by another tokenizer "
                                    f"(sha256 {shard_tokenizer}, manifest {tokenizer.get('sha256')})")
            if check_sha256 and storage.sha256(path) != shard.get("sha256"):
                problems.append(f"shard {path} of source {name} does not match its sha256 in the manifest")
    sampled = [n for n, e in (manifest.get("sources") or {}).items()
               if e.get("tokens", 0) > 0 and e.get("shards") and e.get("share", 0.0) > 0]
    if not sampled:
        problems.append("manifest has no source with tokens, shards and a positive share")
    return problems
