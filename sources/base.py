"""The common document record, the drop record, and the file-reading scaffold every source uses.

A *document* is a plain dict (cheap to pickle between Beam workers, easy to write to Parquet):

    {"id": "c4:en.0001.json.gz:17",   # unique across the whole corpus, prefixed by the source name
     "source": "c4",                  # one of SOURCE_NAMES
     "text": "...",                   # cleaned plain text ("" while `html` still needs extraction)
     "url": "https://...",            # "" when the source has none
     "meta": {...}}                   # JSON-serialisable extras (dates, licence, score, ref_urls, ...)

CommonCrawl WARC documents carry the decoded page in an extra `html` key until the extraction stage
turns it into `text`.

A *drop* records a document that left the pipeline, and why. Every input document ends up either
kept or as exactly one drop, so the ledger reconciles (in = kept + dropped):

    {"source": "c4", "stage": "read", "reason": "malformed_json", "id": "...", "detail": "..."}

Readers are composite transforms built on `ReadFiles`: input globs are matched with Beam's
`fileio` (so `gs://` and `s3://` work where the Beam extra is installed), the file list is
reshuffled so files spread over workers, and a per-source DoFn turns one file into documents
(main output) and drops (tagged output `DROPPED`).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

SOURCE_NAMES = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")

DROPPED = "dropped"  # tag of the side output that carries drop records

# Upper bound on what one decompressed input may yield; protects workers from decompression bombs.
DEFAULT_MAX_DECOMPRESSED_BYTES = 16 * 1024**3


@dataclass
class SourceOptions:
    """Options every source has. Sources subclass this with their own fields (paper defaults)."""

    inputs: list[str] = field(default_factory=list)
    enabled: bool = True


def make_document(source: str, doc_id: str, text: str, url: str = "", **meta: Any) -> dict:
    """Build a document record. `doc_id` is made unique by prefixing the source name."""
    return {
        "id": doc_id if doc_id.startswith(source + ":") else f"{source}:{doc_id}",
        "source": source,
        "text": text,
        "url": url or "",
        "meta": {k: v for k, v in meta.items() if v is not None},
    }


def make_drop(source: str, stage: str, reason: str, doc_id: str = "", detail: str = "") -> dict:
    """Build a drop record (one per document that leaves the pipeline)."""
    return {
        "source": source,
        "stage": stage,
        "reason": reason,
        "id": doc_id,
        "detail": detail[:500],
    }


def dropped(source: str, stage: str, reason: str, doc_id: str = "", detail: str = ""):
    """A drop record on the DROPPED side output, counted in Beam metrics for live progress."""
    beam.metrics.Metrics.counter(f"{source}.{stage}", f"dropped.{reason}").inc()
    return beam.pvalue.TaggedOutput(DROPPED, make_drop(source, stage, reason, doc_id, detail))


class LimitedReader(io.RawIOBase):
    """Wraps a decompressing stream; raises once more than `limit` bytes have been read."""

    def __init__(self, stream: BinaryIO, limit: int):
        self._stream = stream
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        self._read += len(data)
        if self._read > self._limit:
            raise DecompressionLimitError(f"decompressed size exceeds the limit of {self._limit} bytes")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class DecompressionLimitError(IOError):
    pass


def open_input(path: str, max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> BinaryIO:
    """Open a (possibly compressed) input through Beam's FileSystems, as a buffered binary stream.

    Decompression is done here (not by Beam) so multi-member gzip and multi-stream bz2 files, as
    published by dump producers, are read completely; the output is capped at `max_bytes`.
    """
    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    lower = path.lower()
    if lower.endswith(".gz"):
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")
    elif lower.endswith(".bz2"):
        stream = bz2.BZ2File(raw, mode="rb")
    elif lower.endswith(".xz"):
        stream = lzma.LZMAFile(raw, mode="rb")
    else:
        stream = raw
    return io.BufferedReader(LimitedReader(stream, max_bytes), buffer_size=1 << 20)


def short_name(path: str) -> str:
    """File name without folders, used in document ids."""
    return os.path.basename(path.rstrip("/"))


class ReadFileDoFn(beam.DoFn):
    """Base DoFn: one input path in, documents and drops out.

    Subclasses implement `read(path)` yielding documents or `dropped(...)` outputs. Any exception
    that escapes `read` is recorded as one drop for the rest of that file (reason `unreadable_file`)
    instead of failing the run; documents already yielded are kept.
    """

    source: str = ""

    def read(self, path: str) -> Iterator:
        raise NotImplementedError

    def process(self, path: str) -> Iterable:
        counter = beam.metrics.Metrics.counter(f"{self.source}.read", "documents")
        try:
            for item in self.read(path):
                if isinstance(item, dict):
                    counter.inc()
                yield item
        except Exception as exc:  # noqa: BLE001 - a bad file must not stop the run; it is counted
            yield dropped(
                self.source, "read", "unreadable_file", f"{self.source}:{short_name(path)}",
                f"{path}: {type(exc).__name__}: {exc}",
            )


class ReadFiles(beam.PTransform):
    """Match globs, spread the files over workers, and read each with `dofn`.

    Returns a dict of PCollections: {"documents": ..., "dropped": ...}.
    """

    def __init__(self, patterns: list[str], dofn: ReadFileDoFn, label: str = ""):
        super().__init__(label or None)
        self._patterns = list(patterns)
        self._dofn = dofn

    def expand(self, pbegin):
        paths = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "Match" >> fileio.MatchAll()
            | "Paths" >> beam.Map(lambda metadata: metadata.path)
            | "OncePerFile" >> beam.Distinct()  # a file matched by two globs is read once
            | "SpreadFiles" >> beam.Reshuffle()
        )
        outputs = paths | "ReadFile" >> beam.ParDo(self._dofn).with_outputs(DROPPED, main="documents")
        return {"documents": outputs.documents, "dropped": outputs[DROPPED]}
