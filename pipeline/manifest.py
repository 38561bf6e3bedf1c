"""The shard manifest, `OUT/shards/manifest.json`: what a trainer needs to mix the sources.

    schema_version, mixture_mode ("token_budget" or "epochs"), token_budget, total_tokens,
    tokenizer: path (relative to the manifest), sha256, vocab_size, bos_id, eos_id
    sources.<name>: documents, tokens, share, epochs, configured_share, configured_epochs,
                    escaped_u2581_documents, num_shards,
                    shards: [path, sha256, tokens, documents]

Shares and epochs are computed from the real token counts of the shards (RECIPE section 1). This is also
the one place where a manifest is validated (`validate_manifest`), for the trainer and for
`llamapipe inspect verify`. No Beam import here: the trainer imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llamapipe.pipeline import storage
from llamapipe.pipeline.shard_format import SCHEMA_VERSION, footer

if TYPE_CHECKING:
    from llamapipe.pipeline.config import MixtureConfig

MANIFEST_NAME = "manifest.json"


def shard_stats(path: str) -> dict:
    """Documents and tokens of one shard, read column-wise (only `num_tokens`)."""
    with storage.open_read(path) as f:
        parquet = pq.ParquetFile(f)
        tokens = 0
        for batch in parquet.iter_batches(columns=["num_tokens"], batch_size=65536):
            tokens += pc.sum(batch.column(0)).as_py() or 0
        return {"documents": parquet.metadata.num_rows, "tokens": int(tokens)}


def mixture_weights(tokens: dict[str, int], mixture: MixtureConfig) -> tuple[dict, dict, int]:
    """(share, epochs, trained-token budget) per source, from real token counts.

    With a token budget the configured shares are the target: epochs = share * budget / tokens.
    Without one the configured epochs are the target: share = epochs * tokens / sum(epochs * tokens).
    Sources without tokens take no share: the others' shares are renormalised to sum to 1.
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


def _source_folders(shards_dir: str) -> list[str]:
    from llamapipe.sources.base import SOURCE_NAMES  # imports Beam: only the pipeline builds manifests

    present = [d for d in storage.list_names(shards_dir) if storage.is_dir(storage.join(shards_dir, d))]
    return [s for s in SOURCE_NAMES if s in present] + sorted(set(present) - set(SOURCE_NAMES))


def build_manifest(shards_dir: str, tokenizer_path: str, vocab_size: int, mixture: MixtureConfig) -> dict:
    import sentencepiece as spm

    tokenizer_sha256 = storage.sha256(tokenizer_path)
    sources = {}
    for source in _source_folders(shards_dir):
        paths = storage.glob(storage.join(shards_dir, source, "*.parquet"))
        if not paths:
            continue
        shards, escaped = [], 0
        for path in paths:
            meta = footer(path)
            if meta.get("tokenizer_sha256") != tokenizer_sha256:
                raise ValueError(f"{path} was tokenized by tokenizer {meta.get('tokenizer_sha256')}, "
                                 f"not by {tokenizer_path} ({tokenizer_sha256})")
            escaped += int(meta.get("escaped_u2581_documents", 0))
            stats = shard_stats(path)
            shards.append({"path": storage.relative(path, shards_dir), "sha256": storage.sha256(path),
                           **stats})
        sources[source] = {
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "num_shards": len(shards),
            "escaped_u2581_documents": escaped,
            "shards": shards,
        }
    shares, epochs, budget = mixture_weights({s: e["tokens"] for s, e in sources.items()}, mixture)
    for source, entry in sources.items():
        entry["share"] = round(shares.get(source, 0.0), 6)
        entry["epochs"] = round(epochs.get(source, 0.0), 6)
        # the mixture as configured (before renormalisation over the sources that have tokens)
        configured = mixture.sources.get(source)
        entry["configured_share"] = configured.share if configured else 0.0
        entry["configured_epochs"] = configured.epochs if configured else 0.0
    sp = spm.SentencePieceProcessor(model_proto=storage.read_bytes(tokenizer_path))
    return {
        "schema_version": SCHEMA_VERSION,
        "mixture_mode": "token_budget" if mixture.token_budget else "epochs",
        "tokenizer": {
            "path": storage.relative(tokenizer_path, shards_dir),
            "sha256": tokenizer_sha256,
            "vocab_size": vocab_size,
            "bos_id": sp.bos_id(),
            "eos_id": sp.eos_id(),
        },
        "sources": sources,
        "total_tokens": sum(e["tokens"] for e in sources.values()),
        "token_budget": budget,
    }


def write_manifest(manifest: dict, path: str) -> None:
    storage.write_json(path, manifest)


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
