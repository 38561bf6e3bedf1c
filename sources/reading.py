"""What every reader shares: the document record and the file-reading scaffold (the drop record is
`llamapipe.pipeline.plumbing.drops`).

A *document* is a plain dict (cheap to pickle between Beam workers, easy to write to Parquet):

    {"id": "c4:en.0001.json.gz:17",   # unique across the whole corpus, prefixed by the source name
     "source": "c4",                  # one of SOURCE_NAMES
     "text": "...",                   # cleaned plain text ("" while `html` still needs extraction)
     "url": "https://...",            # "" when the source has none
     "meta": {...}}                   # JSON-serialisable extras (dates, licence, score, ref_urls, ...)

CommonCrawl WARC documents carry the decoded page in an extra `html` key until the extraction stage
turns it into `text`.

A *drop* records a document that left the pipeline, and why (`plumbing.drops.drop`). Every input
document ends up either kept or as exactly one drop, so the ledger reconciles (in = kept + dropped).

Readers are composite transforms built on `ReadFiles`: input globs are matched with Beam's
`fileio` (so `gs://` and `s3://` work where the Beam extra is installed), each file is planned into
`FileSplit`s (parts of about `split_bytes` where the format allows: line ranges of uncompressed json
lines, WARC record ranges, bz2 multistream blocks, Parquet row groups; else the whole file), the
splits are reshuffled so they spread over workers, and a per-source DoFn turns one split into
documents (main output) and drops (tagged output `DROPPED`). Planning is an optimisation only: a
whole-file read is always correct, and any planning failure falls back to it.

Provenance: every document's `meta` holds `source_file` (the path as matched) and the position of
its record in that file, so any output document can be traced back to its input: `offset` (byte
offset of the line / record / bz2 stream; in the decompressed stream for gzip files read whole),
`line` for line-oriented formats, `row_group` and `row` for Parquet, plus a record id where the
format has one (`warc_record_id`, Wikipedia `page_id`).
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.plumbing.drops import DOCUMENTS, DROPPED, drop, outputs, split_drops
from llamapipe.pipeline.plumbing.names import READ_STAGE

SOURCE_NAMES = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")

# Upper bound on what one decompressed input may yield; protects workers from decompression bombs.
DEFAULT_MAX_DECOMPRESSED_BYTES = 16 * 1024**3

# Size of the parts big files are split into. Large enough that per-part overhead (a seek, a task)
# is negligible, small enough that a 20 GB file becomes ~300 parts for as many workers.
DEFAULT_SPLIT_BYTES = 64 * 1024**2

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".7z", ".zip")

_LOG = logging.getLogger(__name__)


@dataclass
class SourceOptions:
    """Options every source has. Sources subclass this with their own fields (paper defaults)."""

    inputs: list[str] = field(default_factory=list)
    enabled: bool = True
    # Big files are read in parts of about this many bytes where the format allows it.
    split_bytes: int = DEFAULT_SPLIT_BYTES
    # A compressed input whose decompressed bytes pass this limit stops there with one drop
    # (`decompressed_too_large`): a small crafted .gz must not exhaust a worker's memory or disk.
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES


@dataclass(frozen=True)
class FileSplit:
    """One unit of read work: a part of one input file, or all of it.

    `start`/`stop` are in the reader's own unit: byte offsets (json lines, WARC, bz2 streams) or
    row-group numbers (Parquet); `stop=None` reads to the end of the file. `records_before` is the
    number of records (lines, rows, WARC records) of the file before this part, so record numbers
    and ids do not depend on how a file was split. `context` carries what a part needs from the
    file's head (e.g. a Wikipedia dump's <siteinfo>)."""

    path: str
    start: int = 0
    stop: int | None = None
    records_before: int = 0
    context: Any = None

    @property
    def whole_file(self) -> bool:
        return self.start == 0 and self.stop is None

    def describe(self) -> str:
        if self.whole_file:
            return self.path
        return f"{self.path} [{self.start}:{'' if self.stop is None else self.stop}]"


def provenance(path: str, **position: Any) -> dict:
    """The `meta` keys that trace a document back to its input: the file and the record's position."""
    return {"source_file": path, **position}


def make_document(source: str, doc_id: str, text: str, url: str = "", **meta: Any) -> dict:
    """Build a document record. `doc_id` is made unique by prefixing the source name."""
    return {
        "id": doc_id if doc_id.startswith(source + ":") else f"{source}:{doc_id}",
        "source": source,
        "text": text,
        "url": url or "",
        "meta": {k: v for k, v in meta.items() if v is not None},
    }


class _WrappedReader(io.RawIOBase):
    """A raw reader over another stream; closing it closes that stream."""

    _stream: BinaryIO

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class LimitedReader(_WrappedReader):
    """Wraps a decompressing stream; raises once more than `limit` bytes have been read.

    Reads with `read1` where the stream has it (gzip, bz2, lzma and buffered files do): a plain
    `read(n)` gathers up to n bytes and, when the input is truncated, raises without returning the
    good bytes it already decompressed, so the records just before the cut would be lost."""

    def __init__(self, stream: BinaryIO, limit: int):
        self._stream = stream
        self._read_some = getattr(stream, "read1", stream.read)
        self._limit = limit
        self._read = 0

    def readinto(self, buffer) -> int:
        data = self._read_some(len(buffer))
        self._read += len(data)
        if self._read > self._limit:
            raise DecompressionLimitError(f"decompressed size exceeds the limit of {self._limit} bytes")
        buffer[: len(data)] = data
        return len(data)


class DecompressionLimitError(IOError):
    pass


class SalvagingReader(io.BufferedReader):
    """A buffered stream whose `read(n)` returns the good bytes it got before an error (a truncated
    or corrupt input, the decompression limit) and raises the error on the next call.

    io.BufferedReader.read(n) gathers n bytes and, on an error, raises and discards what it gathered,
    so e.g. the last pages an XML parser asked for in one 16 KB read would be lost. Data is never
    followed by a false end of file: a caller reads on until b"", so it always sees the error."""

    _pending: Exception | None = None

    def read(self, size: int | None = -1) -> bytes:
        if self._pending is not None:
            error, self._pending = self._pending, None
            raise error
        chunks, total = [], 0
        while size is None or size < 0 or total < size:
            try:
                chunk = self.read1(1 << 20 if size is None or size < 0 else size - total)
            except Exception as exc:  # noqa: BLE001 - re-raised on the next call
                if not chunks:
                    raise
                self._pending = exc
                break
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)


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
    return SalvagingReader(LimitedReader(stream, max_bytes), buffer_size=1 << 20)


def short_name(path: str) -> str:
    """File name without folders, used in document ids."""
    return os.path.basename(path.rstrip("/"))


def is_compressed(path: str) -> bool:
    return path.lower().endswith(COMPRESSED_SUFFIXES)


class RangeReader(_WrappedReader):
    """The bytes [start, stop) of a seekable stream, as a stream of its own (EOF at `stop`)."""

    def __init__(self, stream: BinaryIO, start: int, stop: int | None):
        self._stream = stream
        stream.seek(start)
        self._remaining = None if stop is None else max(stop - start, 0)

    def readinto(self, buffer) -> int:
        wanted = len(buffer) if self._remaining is None else min(len(buffer), self._remaining)
        if wanted <= 0:
            return 0
        data = self._stream.read(wanted)
        if self._remaining is not None:
            self._remaining -= len(data)
        buffer[: len(data)] = data
        return len(data)


def open_raw(path: str) -> BinaryIO:
    """The file's bytes as stored (no decompression), seekable where the file system allows."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def open_split(split: FileSplit, max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> BinaryIO:
    """A buffered stream of a split: the decompressed whole file, or the byte range of a part."""
    if split.whole_file:
        return open_input(split.path, max_bytes)
    return io.BufferedReader(RangeReader(open_raw(split.path), split.start, split.stop), buffer_size=1 << 20)


PLAN_CHUNK_BYTES = 8 * 1024**2


def plan_line_splits(path: str, size: int, split_bytes: int) -> list[FileSplit]:
    """Parts of about `split_bytes` of an uncompressed line-oriented file, each starting at a line
    start and knowing how many lines come before it (so line numbers stay exact).

    Costs one sequential read of the file, counting newlines at memchr speed (GB/s on local disk;
    see benchmarks/readers.py), which is small next to parsing the lines. Compressed files and
    files smaller than `split_bytes` stay whole (gzip cannot be entered in the middle)."""
    if is_compressed(path) or size <= split_bytes or split_bytes <= 0:
        return [FileSplit(path)]
    splits: list[FileSplit] = []
    start, lines_before_start = 0, 0
    boundary = split_bytes  # the next part starts at the first line start at or after this offset
    position, newlines_before_chunk = 0, 0
    with open_raw(path) as raw:
        while True:
            chunk = raw.read(PLAN_CHUNK_BYTES)
            if not chunk:
                break
            search_from = max(boundary - 1 - position, 0)
            while search_from < len(chunk):
                newline = chunk.find(b"\n", search_from)
                if newline < 0:
                    break
                cut = position + newline + 1  # a line starts here
                if cut >= size:
                    break
                splits.append(FileSplit(path, start, cut, lines_before_start))
                start = cut
                lines_before_start = newlines_before_chunk + chunk.count(b"\n", 0, newline + 1)
                boundary = cut + split_bytes
                search_from = boundary - 1 - position
            newlines_before_chunk += chunk.count(b"\n")
            position += len(chunk)
    if not splits:
        return [FileSplit(path)]
    splits.append(FileSplit(path, start, None, lines_before_start))
    return splits


class ReadFileDoFn(beam.DoFn):
    """Base DoFn: one `FileSplit` (or a path, meaning the whole file) in, documents and drops out.

    Subclasses implement either `read(path)` (formats read whole) or `plan(...)` and
    `read_split(split)` (formats split inside big files), yielding documents or `drop(...)`
    outputs. Any exception that escapes is recorded as one drop for the rest of that split (reason
    `unreadable_file`, or `decompressed_too_large` past `max_decompressed_bytes`) instead of failing
    the run; documents already yielded are kept.
    """

    source: str = ""
    # Tags of side outputs besides DROPPED that a reader emits (what its corpus-wide step needs, e.g.
    # Stack Exchange's post count per site).
    extra_outputs: tuple[str, ...] = ()

    def plan(self, path: str, size: int, split_bytes: int) -> Iterable[FileSplit]:
        """The parts of one input file to read separately. Default: the whole file. An empty
        result skips the file (e.g. a Wikipedia multistream index, which is not a dump)."""
        return [FileSplit(path)]

    def read(self, path: str) -> Iterator:
        raise NotImplementedError

    def read_split(self, split: FileSplit) -> Iterator:
        if not split.whole_file:
            raise ValueError(f"{type(self).__name__} reads whole files only, got {split.describe()}")
        return self.read(split.path)

    def process(self, element: FileSplit | str) -> Iterable:
        split = element if isinstance(element, FileSplit) else FileSplit(element)
        counter = beam.metrics.Metrics.counter(f"{self.source}.{READ_STAGE}", "documents")
        try:
            for item in self.read_split(split):
                if isinstance(item, dict):
                    counter.inc()
                yield item
        except Exception as exc:  # noqa: BLE001 - a bad file must not stop the run; it is counted
            part = "" if split.whole_file else f"@{split.start}"
            too_large = isinstance(exc, DecompressionLimitError)
            reason = "decompressed_too_large" if too_large else "unreadable_file"
            yield drop(
                self.source, READ_STAGE, reason, f"{self.source}:{short_name(split.path)}{part}",
                f"{split.describe()}: {type(exc).__name__}: {exc}",
            )


class PlanSplitsDoFn(beam.DoFn):
    """A matched file -> the `FileSplit`s its reader wants; the whole file if planning fails."""

    def __init__(self, reader: ReadFileDoFn, split_bytes: int):
        super().__init__()
        self._reader = reader
        self._split_bytes = split_bytes

    def process(self, metadata) -> Iterator[FileSplit]:
        yield from plan_splits(self._reader, metadata.path, metadata.size_in_bytes, self._split_bytes)


def plan_splits(reader: ReadFileDoFn, path: str, size: int, split_bytes: int) -> list[FileSplit]:
    """The splits `reader` wants of one file; the whole file if planning fails."""
    source = reader.source
    try:
        # Planned completely before anything is emitted: a failure halfway must not leave both
        # some parts and the whole file to be read.
        splits = list(reader.plan(path, size, split_bytes))
    except Exception as exc:  # noqa: BLE001 - planning only speeds reading up; fall back to whole
        _LOG.warning("%s: cannot split %s (%s: %s); reading it whole", source, path, type(exc).__name__, exc)
        beam.metrics.Metrics.counter(f"{source}.{READ_STAGE}", "plan_failed").inc()
        splits = [FileSplit(path)]
    beam.metrics.Metrics.counter(f"{source}.{READ_STAGE}", "files").inc()
    beam.metrics.Metrics.counter(f"{source}.{READ_STAGE}", "splits").inc(len(splits))
    return splits


class ReadFiles(beam.PTransform):
    """Match globs, plan each file into splits, spread the splits over workers, read each with `dofn`.

    A file matched by several patterns is read once. Returns a dict of PCollections:
    {"documents": ..., "dropped": ...}.

    Both spreads are Reshuffles, so the planning of many files and the reading of many parts run on
    all workers. (On `--runner dask` a Reshuffle spreads elements over the dask partitions, see
    `pipeline/plumbing/dask_runner.py`; Beam's own Dask runner makes it a no-op.)
    """

    def __init__(self, patterns: list[str], dofn: ReadFileDoFn, label: str = "",
                 split_bytes: int = DEFAULT_SPLIT_BYTES):
        super().__init__(label or None)
        self._patterns = list(patterns)
        self._dofn = dofn
        self._split_bytes = split_bytes

    def expand(self, pbegin):
        files = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "Match" >> fileio.MatchAll()
            | "KeyByPath" >> beam.Map(lambda metadata: (metadata.path, metadata))
            | "OncePerPath" >> beam.CombinePerKey(_first)  # also spreads the files over workers
            | "Metadata" >> beam.Values()
        )
        splits = (
            files
            | "PlanSplits" >> beam.ParDo(PlanSplitsDoFn(self._dofn, self._split_bytes))
            | "SpreadSplits" >> beam.Reshuffle()
        )
        extra = tuple(self._dofn.extra_outputs)
        read = split_drops(splits, "ReadSplit", self._dofn, tags=extra)
        return outputs(read[DOCUMENTS], read[DROPPED], **{tag: read[tag] for tag in extra})


def _first(values: Iterable):
    return next(iter(values))


def reader_work_folder(work_folder: str | None, source: str) -> str:
    """Where a reader keeps its files while the pipeline runs: the folder the pipeline passes (in its
    work folder), else a local temporary folder (tests and local runners only: cluster workers do not
    share it)."""
    return work_folder or tempfile.mkdtemp(prefix=f"llamapipe-{source}-")


class ReadSourceFiles(beam.PTransform):
    """A source's reading: `ReadFiles` with its per-file reader, then its corpus-wide step, if the
    source's recipe has one (a run does the two apart: `pipeline/file_work.py`, `pipeline/recipe.py`).

    Subclasses name the reader's DoFn class (built from the options) and the step label; a source whose
    recipe needs every file (GitHub's exact dedup, Stack Exchange's largest sites) overrides
    `corpus_step`:

        class Read(ReadSourceFiles):
            dofn_class = ReadC4FileDoFn
            step_label = "ReadC4Files"
    """

    dofn_class: type[ReadFileDoFn]
    step_label = "ReadFiles"

    @classmethod
    def file_reader(cls, options: SourceOptions) -> ReadFileDoFn:
        """Everything the source does to one split of one input file on its own."""
        return cls.dofn_class(options)

    @classmethod
    def corpus_step(cls, options: SourceOptions, work_folder: str | None = None) -> beam.PTransform | None:
        """What the source does across all its files: a PTransform over {"documents": ..., <the reader's
        extra outputs>} returning {"documents", "dropped"}; None when nothing."""
        return None

    def __init__(self, options: SourceOptions, work_folder: str | None = None):
        super().__init__()
        self._options = options
        self._folder = work_folder  # where a corpus-wide step keeps its files while the pipeline runs

    def expand(self, pbegin):
        options = self._options
        read = pbegin | self.step_label >> ReadFiles(
            options.inputs, self.file_reader(options), split_bytes=options.split_bytes)
        step = self.corpus_step(options, self._folder)
        if step is None:
            return outputs(read[DOCUMENTS], read[DROPPED])
        out = {tag: pcoll for tag, pcoll in read.items() if tag != DROPPED} | "CorpusStep" >> step
        drops = (read[DROPPED], out[DROPPED]) | "AllDrops" >> beam.Flatten()
        return outputs(out[DOCUMENTS], drops)
