"""Helpers of the shard tests: documents -> Beam tokenization (the real WriteTokenShards on the
DirectRunner) -> shards and manifest under a folder laid out like OUT/."""

from __future__ import annotations

import glob
import os

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline

from llamapipe.pipeline.config import MixtureConfig, SourceShare
from llamapipe.pipeline.output.manifest import build_manifest, write_manifest
from llamapipe.pipeline.output.token_shards import WriteTokenShards


def tokenize(docs: list[dict], source: str, shards_dir: str, tokenizer: dict, num_shards: int = 1,
             add_eos: bool = False, row_group_documents: int = 1000, vocab_size: int | None = None,
             check=None) -> None:
    """Run WriteTokenShards on `docs` ({id, text}) of `source`; `check(records)` is asserted inside the
    pipeline."""
    from apache_beam.testing.util import assert_that

    with TestPipeline() as p:
        records = (
            p
            | "Docs" >> beam.Create([{**doc, "source": source} for doc in docs])
            | "Tokenize" >> WriteTokenShards(
                shards_dir, os.path.join(os.path.dirname(shards_dir), "_work", "token_runs"),
                tokenizer["path"], vocab_size or tokenizer["vocab_size"],
                tokenizer["sha256"], estimated_tokens={source: num_shards * 1000}, target_shard_tokens=1000,
                add_eos=add_eos, row_group_documents=row_group_documents)
        )
        if check is not None:
            assert_that(records, check)


def shard_paths(shards_dir: str, source: str) -> list[str]:
    return sorted(glob.glob(os.path.join(shards_dir, source, "*.parquet")))


def read_rows(paths: list[str]) -> list[dict]:
    return [row for path in paths for row in pq.read_table(path).to_pylist()]


def make_run(root, tokenizer: dict, docs_by_source: dict[str, list[dict]], num_shards: dict[str, int],
             mixture: MixtureConfig | None = None) -> str:
    """Shards of every source under root/shards plus the manifest (tokenizer at root/tokenizer/);
    returns the manifest's path."""
    shards_dir = os.path.join(root, "shards")
    for source, docs in docs_by_source.items():
        tokenize(docs, source, shards_dir, tokenizer, num_shards.get(source, 1))
    mixture = mixture or MixtureConfig(sources={s: SourceShare(0.5, 1.0) for s in docs_by_source})
    manifest = build_manifest(shards_dir, tokenizer["path"], tokenizer["vocab_size"], mixture)
    path = os.path.join(shards_dir, "manifest.json")
    write_manifest(manifest, path)
    return path


def c4_and_github_docs() -> dict[str, list[dict]]:
    from tests.text_samples import HARD_TEXTS, SPACE_MARK_TEXTS, varied_texts

    texts = varied_texts(seed=11, count=60) + HARD_TEXTS + SPACE_MARK_TEXTS
    code = varied_texts(seed=12, count=24)
    return {
        "c4": [{"id": f"c4:{i:03d}", "text": t} for i, t in enumerate(texts)],
        "github": [{"id": f"github:{i:03d}", "text": t} for i, t in enumerate(code)],
    }


def replace_with_other_tokenizers_shard(root, other_tokenizer: dict, docs: list[dict],
                                        num_shards: int) -> str:
    """Overwrite the first c4 shard of the run at `root` with the same documents' shard made by another
    tokenizer, and record its new checksum and counts in the manifest, as a careless copy would: only
    the tokenizer differs. Returns the shard's path."""
    import json

    from llamapipe.tokenizer.train import file_sha256

    other_dir = os.path.join(root, "other-shards")
    tokenize(docs, "c4", other_dir, other_tokenizer, num_shards)
    source, target = shard_paths(other_dir, "c4")[0], shard_paths(os.path.join(root, "shards"), "c4")[0]
    os.replace(source, target)
    manifest_path = os.path.join(root, "shards", "manifest.json")
    manifest = json.load(open(manifest_path))
    entry = manifest["sources"]["c4"]
    shard = next(s for s in entry["shards"] if target.endswith(s["path"]))
    table = pq.read_table(target)
    entry["tokens"] += sum(table.column("num_tokens").to_pylist()) - shard["tokens"]
    manifest["total_tokens"] = sum(e["tokens"] for e in manifest["sources"].values())
    shard.update(sha256=file_sha256(target), tokens=sum(table.column("num_tokens").to_pylist()))
    json.dump(manifest, open(manifest_path, "w"))
    return target
