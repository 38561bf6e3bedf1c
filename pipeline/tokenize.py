"""Tokenization in Beam: cleaned documents -> token rows -> Parquet shards, one folder per source.

The SentencePiece model is read once per worker (`setup`, through FileSystems so remote paths
work); documents are encoded in batches; every document starts with BOS (id 1), EOS is optional.
"""

from __future__ import annotations

import math

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

SCHEMA_VERSION = 1


def token_type(vocab_size: int) -> pa.DataType:
    return pa.uint16() if vocab_size <= 65536 else pa.uint32()


def shard_schema(source: str, vocab_size: int, tokenizer_sha256: str) -> pa.Schema:
    """One row per document; the footer names the source, the tokenizer and the schema version."""
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("tokens", pa.list_(token_type(vocab_size))),
            ("num_tokens", pa.int64()),
        ],
        metadata={
            "llamapipe.schema_version": str(SCHEMA_VERSION),
            "llamapipe.source": source,
            "llamapipe.tokenizer_sha256": tokenizer_sha256,
            "llamapipe.vocab_size": str(vocab_size),
        },
    )


def load_sentencepiece(model_path: str):
    import sentencepiece as spm

    with FileSystems.open(model_path) as f:
        return spm.SentencePieceProcessor(model_proto=f.read())


class EncodeDocuments(beam.DoFn):
    """A batch of documents -> token rows (BOS first, optional EOS)."""

    def __init__(self, model_path: str, add_eos: bool):
        self._model_path = model_path
        self._add_eos = add_eos

    def setup(self) -> None:
        self._sp = load_sentencepiece(self._model_path)

    def process(self, batch: list[dict]):
        encoded = self._sp.encode([doc["text"] for doc in batch], add_bos=True, add_eos=self._add_eos)
        counter = beam.metrics.Metrics.counter("tokenize", "tokens")
        for doc, tokens in zip(batch, encoded, strict=True):
            counter.inc(len(tokens))
            yield {"doc_id": doc["id"], "source": doc["source"], "tokens": tokens, "num_tokens": len(tokens)}


class WriteTokenShards(beam.PTransform):
    """Documents of one source -> `OUT/shards/<source>/<source>-SSSSS-of-NNNNN.parquet`."""

    def __init__(self, source: str, shards_dir: str, model_path: str, vocab_size: int,
                 tokenizer_sha256: str, estimated_tokens: int, target_shard_tokens: int,
                 add_eos: bool = False):
        super().__init__()
        self._source = source
        self._shards_dir = shards_dir
        self._model_path = model_path
        self._schema = shard_schema(source, vocab_size, tokenizer_sha256)
        self._num_shards = max(1, math.ceil(estimated_tokens / max(target_shard_tokens, 1)))
        self._add_eos = add_eos

    def expand(self, docs):
        return (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=16, max_batch_size=256)
            | "Encode" >> beam.ParDo(EncodeDocuments(self._model_path, self._add_eos))
            | "WriteParquet" >> beam.io.WriteToParquet(
                FileSystems.join(self._shards_dir, self._source, self._source),
                schema=self._schema,
                codec="zstd",
                file_name_suffix=".parquet",
                num_shards=self._num_shards,
                shard_name_template="-SSSSS-of-NNNNN",
                # ~1000 documents per row group keeps a streaming reader's memory small.
                row_group_buffer_size=8 * 1024 * 1024,
            )
        )
