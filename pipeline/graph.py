"""The Beam graphs: cleaning (seven readers -> extraction -> language ID -> quality -> dedup ->
cleaned documents + drops + ledger counts) and tokenization (cleaned documents -> token shards)."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.config import Config
from llamapipe.pipeline.dedup import Deduplicate
from llamapipe.pipeline.extract import ExtractText
from llamapipe.pipeline.filters import QualityFilter
from llamapipe.pipeline.langid import LanguageId
from llamapipe.pipeline.ledger import CountLedger
from llamapipe.pipeline.tokenize import WriteTokenShards, estimate_tokens
from llamapipe.sources import source_module

DOCUMENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("text", pa.string()),
        ("url", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float32()),
        ("meta", pa.string()),  # JSON object: source-specific metadata (dates, licence, ref_urls, ...)
    ],
    metadata={"llamapipe.schema_version": "1"},
)


def document_row(doc: dict) -> dict:
    return {
        "id": doc["id"],
        "source": doc["source"],
        "text": doc["text"],
        "url": doc.get("url") or "",
        "language": doc.get("language") or "",
        "language_score": float(doc.get("language_score") or 0.0),
        "meta": json.dumps(doc.get("meta") or {}, ensure_ascii=False, sort_keys=True),
    }


class WriteDocuments(beam.PTransform):
    """Kept documents -> `OUT/documents/<source>/<source>-SSSSS-of-NNNNN.parquet`."""

    def __init__(self, documents_dir: str, sources: list[str]):
        super().__init__()
        self._dir = documents_dir
        self._sources = list(sources)

    def expand(self, docs):
        index = {name: i for i, name in enumerate(self._sources)}
        parts = docs | "BySource" >> beam.Partition(lambda d, n: index[d["source"]], len(self._sources))
        for name, part in zip(self._sources, parts, strict=True):
            (
                part
                | f"Row_{name}" >> beam.Map(document_row)
                | f"Write_{name}" >> beam.io.WriteToParquet(
                    FileSystems.join(self._dir, name, name),
                    schema=DOCUMENT_SCHEMA,
                    codec="zstd",
                    file_name_suffix=".parquet",
                    shard_name_template="-SSSSS-of-NNNNN",
                )
            )
        return docs


def build_cleaning(p: beam.Pipeline, config: Config, paths: dict[str, str]) -> None:
    read_docs, read_drops = [], []
    for name in config.enabled_sources():
        out = p | f"Read_{name}" >> source_module(name).Read(config.sources[name])
        read_docs.append(out["documents"])
        read_drops.append(out["dropped"])
    docs = read_docs | "AllSources" >> beam.Flatten()
    drops_at_read = read_drops | "AllReadDrops" >> beam.Flatten()

    extracted = docs | "ExtractText" >> ExtractText(config.extract)
    identified = extracted["documents"] | "LanguageId" >> LanguageId(config.langid)
    filtered = identified["documents"] | "QualityFilter" >> QualityFilter(config.filters.rules)
    deduped = filtered["documents"] | "Deduplicate" >> Deduplicate(config.dedup)
    kept = deduped["documents"]

    drops = (
        drops_at_read,
        extracted["dropped"],
        identified["dropped"],
        filtered["dropped"],
        deduped["dropped"],
    ) | "AllDrops" >> beam.Flatten()

    kept | "WriteDocuments" >> WriteDocuments(paths["documents"], config.enabled_sources())
    (
        drops
        | "DropsToJson" >> beam.Map(lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True))
        | "WriteDrops" >> beam.io.WriteToText(paths["dropped"], file_name_suffix=".jsonl")
    )
    (docs, drops_at_read, kept, drops) | "CountLedger" >> CountLedger(paths["ledger_parts"])


def build_tokenization(
    p: beam.Pipeline, config: Config, paths: dict[str, str], tokenizer: dict, chars_kept: dict[str, int]
) -> None:
    for name in config.enabled_sources():
        if chars_kept.get(name, 0) <= 0:
            continue
        pattern = FileSystems.join(paths["documents"], name, "*.parquet")
        (
            p
            | f"ReadDocuments_{name}" >> beam.io.ReadFromParquet(pattern, columns=["id", "text"])
            | f"Tokenize_{name}" >> WriteTokenShards(
                name,
                paths["shards"],
                tokenizer["path"],
                tokenizer["vocab_size"],
                tokenizer["sha256"],
                # only used to choose the number of shards
                estimated_tokens=estimate_tokens(pattern, chars_kept[name], tokenizer["path"]),
                target_shard_tokens=config.shards.target_shard_tokens,
                add_eos=config.shards.add_eos,
                row_group_documents=config.shards.row_group_documents,
                row_group_tokens=config.shards.row_group_tokens,
            )
        )
