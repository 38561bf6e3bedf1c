"""Building the shard manifest, `OUT/shards/manifest.json` (format, reading and validation:
`llamapipe.tokenizer.format.manifest`): shares and epochs are computed from the real token counts of the
shards (RECIPE section 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.manifest import shard_stats
from llamapipe.tokenizer.format.shards import SCHEMA_VERSION, footer

if TYPE_CHECKING:
    from llamapipe.pipeline.config import MixtureConfig


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
    from llamapipe.sources.reading import SOURCE_NAMES  # imports Beam: only the pipeline builds manifests

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
