"""The exporters' view of a run's token shards: the manifest, the sources in its order, and each
source's tokens streamed shard by shard and row group by row group (one row group in memory at a time:
the writer's row groups hold at most 1,000 documents or 1M tokens, `shards.row_group_*` of the config),
local or on an object store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.manifest import MANIFEST_NAME, validate_manifest
from llamapipe.tokenizer.format.shards import footer


@dataclass(frozen=True)
class Shards:
    folder: str  # the folder of manifest.json; the shard paths are relative to it
    manifest: dict

    @property
    def tokenizer(self) -> dict:
        return self.manifest["tokenizer"]

    @property
    def tokenizer_path(self) -> str:
        return storage.resolve(self.folder, self.tokenizer["path"])

    def sources(self) -> list[str]:
        """The sources with tokens, in the manifest's order (a source the run kept nothing of is left out:
        Megatron refuses an empty dataset, and a blend weight of 0 means nothing)."""
        return [name for name, entry in self.manifest["sources"].items() if entry.get("tokens", 0) > 0]

    def entry(self, source: str) -> dict:
        return self.manifest["sources"][source]

    def shard_paths(self, source: str) -> list[str]:
        return [storage.resolve(self.folder, shard["path"]) for shard in self.entry(source)["shards"]]

    def add_eos(self, source: str) -> bool:
        """Whether the shards end each document with EOS (a shard footer says; BOS always starts one)."""
        return footer(self.shard_paths(source)[0]).get("add_eos") == "true"


def open_shards(path: str) -> Shards:
    """SHARDS (the folder of manifest.json, or the run's OUT holding shards/) and its manifest, checked
    against the shards' footers (one small read per shard; the contents are checked while exporting).
    A folder without a manifest, or a manifest that does not describe its shards, is a ConfigError
    naming the path."""
    folder = path.rstrip("/") or path
    if not storage.is_file(storage.join(folder, MANIFEST_NAME)) \
            and storage.is_file(storage.join(folder, "shards", MANIFEST_NAME)):
        folder = storage.join(folder, "shards")  # the run's OUT stands for its shards, as in `inspect`
    manifest_path = storage.join(folder, MANIFEST_NAME)
    if not storage.is_file(manifest_path):
        raise ConfigError(f"SHARDS {path}: no {MANIFEST_NAME} there (nor in {path}/shards): export reads the "
                          "shards folder `llamapipe run` writes (OUT/shards)")
    try:
        manifest = validate_manifest(manifest_path, check_sha256=False, check_footers=True)
    except ValueError as exc:
        raise ConfigError(f"SHARDS {manifest_path}: {exc}") from None
    return Shards(storage.absolute(folder), manifest)


def token_batches(path: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(token ids of the documents one after the other, each document's length) per row group of a
    shard, in the shard's row order (sorted by doc_id). The ids are the column's own buffer, no copy."""
    with storage.open_read(path) as f:
        parquet = pq.ParquetFile(f)
        for index in range(parquet.num_row_groups):
            column = parquet.read_row_group(index, columns=["tokens"]).column(0)
            for chunk in column.chunks:
                if chunk.null_count:
                    raise ValueError(f"{path}: row group {index} has a null tokens list")
                lengths = pc.list_value_length(chunk).to_numpy(zero_copy_only=False)
                yield chunk.flatten().to_numpy(), lengths


def check_counts(shards: Shards, source: str, documents: int, tokens: int) -> None:
    """What was read is what the manifest lists; else the shards changed after it was written."""
    entry = shards.entry(source)
    if (documents, tokens) != (entry["documents"], entry["tokens"]):
        raise ConfigError(
            f"SHARDS {shards.folder}/{source}: the shards hold {documents} documents and {tokens} tokens, "
            f"the manifest lists {entry['documents']} and {entry['tokens']}: run "
            f"`llamapipe inspect verify {shards.folder}`")


def copy_tokenizer(shards: Shards, directory: str) -> list[str]:
    """The manifest's tokenizer.model into DIR (what Megatron's SentencePiece tokenizers and a nanoGPT
    script decode with), and the Hugging Face tokenizer.json beside it when the run wrote one."""
    copied = []
    beside = storage.join(storage.dirname(shards.tokenizer_path), "tokenizer.json")
    for name, path in (("tokenizer.model", shards.tokenizer_path), ("tokenizer.json", beside)):
        if name == "tokenizer.model" or storage.is_file(path):
            storage.write_bytes(storage.join(directory, name), storage.read_bytes(path))
            copied.append(name)
    return copied
