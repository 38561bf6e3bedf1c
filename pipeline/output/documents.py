"""Cleaned documents on disk: `OUT/documents/<source>/<source>-SSSSS-of-NNNNN.parquet`, zstd, one row per
document (DOCUMENT_SCHEMA), the input of the tokenizer sample and of tokenization.

One writer for all sources, not one Beam Parquet sink per source. Seven `WriteToParquet` sinks each
buffered up to a row group of rows per bundle, so a worker held up to 7 row groups of Arrow buffers at
once (measured at 64,000 documents: ~40 MB of Arrow memory at the end of the cleaning run, growing with
the input), and each sink added its own stages (write, pair, group, pre-finalize, finalize: ~30 stages
that a local runner schedules one after another). Here a bundle's rows are buffered per source under
one budget of bytes: a source's buffer is written as a row group when it reaches `row_group_bytes`, and
the largest buffer when all of them together reach `buffer_bytes`, so a worker holds at most
`buffer_bytes` of rows whatever the number of sources or documents.

Files are written as Beam's file sinks write them: each bundle writes its own files under a temporary
folder with unique names and emits their names when it finishes (a retried bundle's files are never
emitted); one finalize step renames the emitted files into place, numbered per source, and deletes the
temporary folder with whatever a failed attempt left there. A source with no documents gets one empty
file, so every enabled source has a readable folder. All through FileSystems: remote paths work.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.plumbing.bundles import bundle_output
from llamapipe.pipeline.plumbing.group_through_files import approximate_bytes
from llamapipe.tokenizer.format.shards import shard_name

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

ROW_GROUP_BYTES = 8 << 20  # of one source's rows: a row group (the unit the readers split files by)
BUFFER_BYTES = 16 << 20  # of all sources' rows buffered by one worker
_ROW_OVERHEAD = 200  # a row's dict, keys and float, beyond its strings


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
    """Kept documents -> `documents_dir/<source>/<source>-SSSSS-of-NNNNN.parquet` for each of `sources`.
    Outputs the final paths (one small list), once every file is in place."""

    def __init__(self, documents_dir: str, sources: list[str], row_group_bytes: int = ROW_GROUP_BYTES,
                 buffer_bytes: int = BUFFER_BYTES):
        super().__init__()
        if not 0 < row_group_bytes <= buffer_bytes:
            raise ValueError(
                f"need 0 < row_group_bytes <= buffer_bytes, got {row_group_bytes} and {buffer_bytes}")
        self._dir = documents_dir
        self._sources = list(sources)
        self._row_group_bytes = row_group_bytes
        self._buffer_bytes = buffer_bytes

    def expand(self, docs):
        temp_dir = FileSystems.join(self._dir, f".temp-{uuid.uuid4().hex[:12]}")
        return (
            docs
            | "WriteBundleFiles" >> beam.ParDo(
                _WriteBundleFiles(temp_dir, self._sources, self._row_group_bytes, self._buffer_bytes))
            # (source, temporary path): one small record per file
            | "AllFiles" >> beam.combiners.ToList()
            | "Finalize" >> beam.FlatMap(_finalize, self._dir, temp_dir, self._sources)
        )


class _WriteBundleFiles(beam.DoFn):
    """Documents -> one Parquet file per source per bundle under `temp_dir`, row groups written as the
    budget fills; emits (source, path) for each file when the bundle finishes."""

    def __init__(self, temp_dir: str, sources: list[str], row_group_bytes: int, buffer_bytes: int):
        self._temp_dir = temp_dir
        self._sources = set(sources)
        self._row_group_bytes = row_group_bytes
        self._buffer_bytes = buffer_bytes
        self._row_groups = beam.metrics.Metrics.counter("documents", "row_groups")

    def start_bundle(self):
        self._rows: dict[str, list[dict]] = defaultdict(list)
        self._bytes: dict[str, int] = defaultdict(int)
        self._files: dict[str, _DocumentFile] = {}

    def process(self, doc: dict):
        source = doc["source"]
        if source not in self._sources:  # a bug upstream, not bad input: each reader names its documents
            raise ValueError(
                f"document {doc.get('id')!r} of source {source!r}, not one of {sorted(self._sources)}")
        row = document_row(doc)
        self._rows[source].append(row)
        self._bytes[source] += approximate_bytes(row) + _ROW_OVERHEAD
        if self._bytes[source] >= self._row_group_bytes:
            self._write_row_group(source)
        elif sum(self._bytes.values()) >= self._buffer_bytes:
            self._write_row_group(max(self._bytes, key=self._bytes.__getitem__))

    def finish_bundle(self):
        for source in list(self._rows):
            self._write_row_group(source)
        for source, file in sorted(self._files.items()):
            file.close()
            yield bundle_output((source, file.path))
        self._files = {}

    def _write_row_group(self, source: str) -> None:
        rows = self._rows.pop(source)
        del self._bytes[source]
        if source not in self._files:
            self._files[source] = _DocumentFile(
                FileSystems.join(self._temp_dir, f"{source}-{uuid.uuid4().hex}.parquet"))
        self._files[source].write(rows)
        self._row_groups.inc()


class _DocumentFile:
    """One Parquet file of documents (a bundle's file of one source), written a row group at a time."""

    def __init__(self, path: str):
        self.path = path
        self._handle = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._writer = pq.ParquetWriter(self._handle, DOCUMENT_SCHEMA, compression="zstd")

    def write(self, rows: list[dict]) -> None:
        self._writer.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), row_group_size=len(rows))

    def close(self) -> None:
        self._writer.close()  # the footer; a writer given a file object leaves it open
        self._handle.close()


def _finalize(files: list[tuple[str, str]], documents_dir: str, temp_dir: str, sources: list[str]):
    """Renames the bundles' files to `<source>/<source>-SSSSS-of-NNNNN.parquet` (a source with no rows
    gets one empty file) and deletes the temporary folder. Safe to run again after a failure part-way:
    a file already renamed is not renamed twice."""
    by_source: dict[str, list[str]] = {name: [] for name in sources}
    for source, path in sorted(files):
        by_source[source].append(path)
    final = []
    for source, paths in by_source.items():
        folder = FileSystems.join(documents_dir, source)
        if not FileSystems.exists(folder):
            FileSystems.mkdirs(folder)
        if not paths:
            target = FileSystems.join(folder, shard_name(source, 0, 1))
            _DocumentFile(target).close()  # no row group: an empty file with the schema
            final.append(target)
            continue
        targets = [FileSystems.join(folder, shard_name(source, i, len(paths))) for i in range(len(paths))]
        pending, missing = [], []
        for path, target in zip(paths, targets, strict=True):
            if FileSystems.exists(path):
                pending.append((path, target))
            elif not FileSystems.exists(target):  # renamed by an earlier attempt, or lost
                missing.append(target)
        if missing:
            raise OSError(f"cleaned documents lost before they were renamed into place: {missing[:3]} "
                          f"(the temporary folder {temp_dir} was changed during the run?)")
        if pending:
            FileSystems.rename([p for p, _ in pending], [t for _, t in pending])
        final.extend(targets)
    if FileSystems.exists(temp_dir):
        FileSystems.delete([temp_dir])
    return final
