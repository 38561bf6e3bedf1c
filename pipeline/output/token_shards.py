"""Tokenization in Beam: cleaned documents -> token shards, one folder per source (format:
`llamapipe.tokenizer.format.shards`).

    documents -> Batch -> Encode -> ((source, shard index), row) -> run files -> WriteShard

The rows reach their shard through run files (`plumbing/group_through_files.py`), not a GroupByKey: the token
rows were the bulkiest collection a run shuffles, and Beam's local runners held them in the runner's memory
about three times over (benchmarks/stages.py: the driver's peak grew by 77 MB at 8k documents and
194 MB at 4x that). What crosses the shuffle now is one reference per (run file, shard).

All sources go through one flow: a local runner runs stages one after another, so one flow per source
left a worker idle whenever a source had too little to split (the 46 books) and paid seven times the
stages.

The SentencePiece model is read once per worker (`setup`, through FileSystems so remote paths work);
documents are encoded in batches by SentencePiece's batch call (one thread a worker); every document starts
with BOS, EOS is optional; a literal U+2581 is kept exact by escaping it (`tokenizer.exact`). Rows travel
as (doc_id, token bytes): a compact, fast-to-encode element, not a list of Python ints.

A document's shard is a stable hash of its id, and each shard's rows are written sorted by doc_id, so
the files' names and contents do not depend on the number of workers or bundles. A shard is written to a
hidden temporary name in its folder and renamed when complete. Every shard index gets a file, empty or
not, so a folder always holds the complete `-of-NNNNN` set. Memory per worker is one shard's tokens
(the configured target size) or one run being written, not the corpus.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from operator import itemgetter

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.plumbing.group_through_files import Frame, GroupThroughFiles, read_records, same_key
from llamapipe.tokenizer.format.shards import shard_name, shard_of, shard_schema, token_type

Row = tuple[str, bytes, bool]  # doc_id, token ids as little-endian uint16/uint32 bytes, '▁' escaped
RUNS_NAMESPACE = "token_runs"  # run files' suffix and counter namespace


def numpy_dtype(value_type: pa.DataType) -> np.dtype:
    """Token bytes are little-endian whatever the machine."""
    return np.dtype("<u2" if value_type == pa.uint16() else "<u4")


def read_model(model_path: str) -> bytes:
    with FileSystems.open(model_path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


class EncodeDocuments(beam.DoFn):
    """A batch of documents -> ((source, shard index), (doc_id, token bytes, escaped)) per document."""

    def __init__(self, model_path: str, vocab_size: int, num_shards: dict[str, int], add_eos: bool):
        self._model_path = model_path
        self._dtype = numpy_dtype(token_type(vocab_size))
        self._num_shards = num_shards
        self._add_eos = add_eos
        self._documents = beam.metrics.Metrics.counter("tokenize", "documents")
        self._tokens = beam.metrics.Metrics.counter("tokenize", "tokens")
        self._escaped = beam.metrics.Metrics.counter("tokenize", "documents_with_u2581_escaped")

    def setup(self) -> None:
        from llamapipe.tokenizer.exact_encoding import ExactEncoder

        # One thread: a runner runs one worker per core (Beam's Python SDK on Dataflow, the local
        # runner's direct_num_workers), so SentencePiece's default of every core oversubscribes them
        # (measured: 2 local workers tokenized slower than 1).
        self._encoder = ExactEncoder(read_model(self._model_path), num_threads=1)

    def process(self, batch: list[dict]):
        escaped_before = self._encoder.escaped
        encoded = self._encoder.encode([doc["text"] for doc in batch], add_bos=True, add_eos=self._add_eos)
        self._escaped.inc(self._encoder.escaped - escaped_before)
        self._documents.inc(len(batch))
        for doc, ids in zip(batch, encoded, strict=True):
            self._tokens.inc(len(ids))
            row = (doc["id"], np.asarray(ids, self._dtype).tobytes(), "\u2581" in doc["text"])
            source = doc["source"]
            yield (source, shard_of(doc["id"], self._num_shards[source])), row


class WriteShard(beam.DoFn):
    """((source, shard index), frames of its rows in run files) -> the shard file, rows sorted by
    doc_id, row groups of at most `row_group_documents` documents and about `row_group_tokens` tokens;
    yields the shard's record."""

    def __init__(self, shards_dir: str, num_shards: dict[str, int], schema_args: dict,
                 row_group_documents: int, row_group_tokens: int):
        self._shards_dir = shards_dir
        self._num_shards = num_shards
        self._schema_args = schema_args
        self._row_group_documents = max(1, row_group_documents)
        self._row_group_tokens = max(1, row_group_tokens)
        self._written = beam.metrics.Metrics.counter("tokenize", "shards_written")

    def process(self, element: tuple[tuple[str, int], Iterable[Frame]]):
        (source, index), frames = element
        count = self._num_shards[source]
        rows = sorted((row for _, row in read_records(frames)), key=itemgetter(0))
        escaped = sum(1 for row in rows if row[2])
        schema = shard_schema(source, shard_index=index, num_shards=count,
                              escaped_u2581_documents=escaped, **self._schema_args)
        value_type = schema.field("tokens").type.value_type
        itemsize = value_type.bit_width // 8
        folder = FileSystems.join(self._shards_dir, source)
        final = FileSystems.join(folder, shard_name(source, index, count))
        temporary = FileSystems.join(folder, f".{shard_name(source, index, count)}.{uuid.uuid4().hex}.tmp")
        tokens = 0
        try:
            sink = FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED)
            try:
                with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
                    for group in self._row_groups(rows, itemsize):
                        table = self._table(group, schema, value_type, source)
                        writer.write_table(table, row_group_size=len(group))
                        tokens += sum(len(row[1]) for row in group) // itemsize
            finally:
                sink.close()
            FileSystems.rename([temporary], [final])
        except BaseException:
            if FileSystems.exists(temporary):
                FileSystems.delete([temporary])
            raise
        self._written.inc()
        yield {"source": source, "path": final, "documents": len(rows), "tokens": tokens}

    def _row_groups(self, rows: list[Row], itemsize: int):
        group: list[Row] = []
        group_tokens = 0
        for row in rows:
            group.append(row)
            group_tokens += len(row[1]) // itemsize
            if len(group) >= self._row_group_documents or group_tokens >= self._row_group_tokens:
                yield group
                group, group_tokens = [], 0
        if group:
            yield group

    def _table(self, group: list[Row], schema: pa.Schema, value_type: pa.DataType, source: str) -> pa.Table:
        dtype = numpy_dtype(value_type)
        lengths = np.fromiter((len(row[1]) // dtype.itemsize for row in group), np.int64, len(group))
        offsets = np.zeros(len(group) + 1, np.int32)
        np.cumsum(lengths, out=offsets[1:])
        values = np.frombuffer(b"".join(row[1] for row in group), dtype)
        if not values.dtype.isnative:
            values = values.astype(dtype.newbyteorder("="))
        tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))
        return pa.Table.from_arrays(
            [pa.array([row[0] for row in group], pa.string()), pa.array([source] * len(group)),
             tokens, pa.array(lengths, pa.int64())],
            schema=schema,
        )


class WriteTokenShards(beam.PTransform):
    """Documents (`id`, `source`, `text`) -> `OUT/shards/<source>/<source>-SSSSS-of-NNNNN.parquet` for each
    source of `estimated_tokens` (its estimated token count: only used to choose its number of shards);
    outputs one record per shard (source, path, documents, tokens). The rows travel through run files
    in `runs_dir`, a work folder the caller removes when the pipeline is done."""

    def __init__(self, shards_dir: str, runs_dir: str, model_path: str, vocab_size: int,
                 tokenizer_sha256: str,
                 estimated_tokens: dict[str, int], target_shard_tokens: int, add_eos: bool = False,
                 row_group_documents: int = 1000, row_group_tokens: int = 1 << 20, bos_id: int = 1,
                 eos_id: int = 2):
        super().__init__()
        self._shards_dir = shards_dir
        self._runs_dir = runs_dir
        self._model_path = model_path
        self._vocab_size = vocab_size
        self._num_shards = {source: max(1, math.ceil(tokens / max(target_shard_tokens, 1)))
                            for source, tokens in sorted(estimated_tokens.items())}
        self._add_eos = add_eos
        self._row_group_documents = row_group_documents
        self._row_group_tokens = row_group_tokens
        self._schema_args = dict(vocab_size=vocab_size, tokenizer_sha256=tokenizer_sha256, bos_id=bos_id,
                                 eos_id=eos_id, add_eos=add_eos)

    @property
    def num_shards(self) -> dict[str, int]:
        return dict(self._num_shards)

    def expand(self, docs):
        every_shard = [(source, i) for source, count in self._num_shards.items() for i in range(count)]
        return (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=16, max_batch_size=512)
            | "Encode" >> beam.ParDo(
                EncodeDocuments(self._model_path, self._vocab_size, self._num_shards, self._add_eos)
            ).with_output_types(tuple[tuple[str, int], tuple[str, bytes, bool]])
            # zstd level 1: token ids barely compress, and the runs are read once
            | "GroupByShard" >> GroupThroughFiles(self._runs_dir, same_key, RUNS_NAMESPACE, level=1,
                                                  every_partition=every_shard)
            | "WriteShard" >> beam.ParDo(
                WriteShard(self._shards_dir, self._num_shards, self._schema_args,
                           self._row_group_documents, self._row_group_tokens)
            )
        )


def chars_per_token(model_path: str, texts_by_source: dict[str, list[str]]) -> dict[str, float]:
    """Characters per token of each source's texts (code, prose and LaTeX differ by a factor of two).
    Only used to choose the number of shards."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=read_model(model_path))
    ratios = {}
    for source, texts in sorted(texts_by_source.items()):
        tokens = sum(map(len, sp.encode(texts))) if texts else 0
        ratios[source] = round(sum(map(len, texts)) / tokens, 6) if tokens else 4.0
    return ratios


def estimate_tokens(chars: int, chars_per_token: float) -> int:
    return int(chars / chars_per_token) if chars_per_token > 0 else chars // 4
