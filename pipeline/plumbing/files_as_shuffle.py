"""Files as the shuffle: documents written once to files in a work folder, so that what the stages
shuffle is small records, never the documents.

Why: Beam's local runners (the DirectRunner's FnApiRunner, in one process or with worker processes)
keep every collection that crosses a stage boundary in the runner's memory, and hand a stage's whole
input to its workers at once. Every GroupByKey/CoGroupByKey of documents and every multi-input
Flatten (which the FnApiRunner always materializes, `translations.sink_flattens`) therefore held the
corpus in memory two or three times over, and memory grew with the input. Here a stage that must
bring documents together with what a shuffle decided about them (dedup marks, duplicated lines,
citations) writes them to files where they are, shuffles only (file tag, small record) pairs, and
reads each file back in one worker with its records beside it. Memory per worker is then one file's
records; the runner holds the small records and the list of files.

`SpillDocuments`: a document -> written to the current file of its bundle; passed on as (tag,
document) so the records derived from it can name its file. A file is complete when its bundle ends
(or it reaches `max_bytes`); only then is its tag emitted (FILES). A bundle that fails and is retried
writes new files under new tags; the files of the failed attempt are never listed, so never read.
`read_spilled(folder, tag)` streams a file's documents back. `GroupByFile` brings (file tag, record)
collections together per complete file, and `documents_beside(folder, group)` opens one such group:
its records, and its file's documents. `MergeThroughFiles` is a Flatten of document collections
that does not hold them: each is spilled, the tags are spread over the workers, and each file is
read back.

Format: frames of a 4-byte big-endian length and a pickle of the document, zstd-compressed (Beam's
FileSystems, so any filesystem Beam has works). The files are ours, written by this run in its work
folder, so unpickling them trusts nothing more than the run itself does.
"""

from __future__ import annotations

import pickle
import struct
import uuid
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.plumbing.bundles import bundle_output

FILES = "files"
_FRAME = struct.Struct(">I")
# Of pickled documents: a file is closed and a new one begun past this. Small, because a file is the
# unit of work of the stage that reads it back: the files of one bundle must spread over all workers
# (with 256 MB files, one worker did all of the extraction of a 23 MB corpus).
MAX_FILE_BYTES = 4 << 20


def spill_path(folder: str, tag: str) -> str:
    return FileSystems.join(folder, f"{tag}.docs.zst")


class SpillDocuments(beam.DoFn):
    """document -> (tag of the file it was written to, document); FILES: each file's tag once it is
    complete."""

    def __init__(self, folder: str, max_bytes: int = MAX_FILE_BYTES):
        self._folder = folder
        self._max_bytes = max_bytes

    def start_bundle(self):
        self._file: FrameWriter | None = None
        self._tag = ""

    def _close(self) -> str:
        self._file.close()
        self._file = None
        return self._tag

    def process(self, doc: dict):
        if self._file is None:
            self._tag = uuid.uuid4().hex[:16]
            self._file = FrameWriter(spill_path(self._folder, self._tag))
        self._file.write(doc)
        yield self._tag, doc
        if self._file.bytes >= self._max_bytes:
            yield beam.pvalue.TaggedOutput(FILES, self._close())

    def finish_bundle(self):
        if self._file is not None:
            yield beam.pvalue.TaggedOutput(FILES, bundle_output(self._close()))


def read_spilled(folder: str, tag: str) -> Iterator[dict]:
    """The documents of one spilled file, in the order they were written, one at a time."""
    return read_frames(spill_path(folder, tag))


def read_frames(path: str) -> Iterator:
    """The values of a file of frames (`FrameWriter`, `SpillDocuments`), in order, one at a time."""
    with FileSystems.open(path, compression_type=CompressionTypes.ZSTD) as f:
        while True:
            header = f.read(_FRAME.size)
            if not header:
                return
            if len(header) < _FRAME.size:
                raise OSError(f"{path}: truncated frame header (the work folder was changed during the run?)")
            (size,) = _FRAME.unpack(header)
            data = f.read(size)
            if len(data) < size:
                raise OSError(f"{path}: truncated document ({len(data)} of {size} bytes)")
            # Safe to unpickle: files under OUT/_work written by llamapipe's own workers (FrameWriter):
            # this run's spilled documents, and the per-file records (file_work.py) of this OUT's runs,
            # plain dicts built in the worker (the extraction child's replies reach it as JSON). Never a
            # file from outside OUT; whoever may write OUT/_work is trusted as much as the run itself.
            yield pickle.loads(data)


class FrameWriter:
    """Values written one at a time to a new file of frames at `path` (read back by `read_frames`)."""

    def __init__(self, path: str):
        self._file = FileSystems.create(path, compression_type=CompressionTypes.ZSTD)
        self.bytes = 0  # written so far, before compression

    def write(self, value) -> None:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(_FRAME.pack(len(data)))
        self._file.write(data)
        self.bytes += len(data) + _FRAME.size

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class GroupByFile(beam.PTransform):
    """{name: (file tag, record)} -> (tag, {"files": ..., name: records}) for every complete file,
    given `files`, the FILES output of a SpillDocuments (so a file with no records is read too)."""

    def __init__(self, files):
        super().__init__()
        self._files = files

    def expand(self, records: dict):
        files = self._files | "KeyByTag" >> beam.Map(lambda tag: (tag, None))
        return {"files": files, **records} | "CoGroup" >> beam.CoGroupByKey()


def documents_beside(folder: str, group: tuple, stage: str) -> tuple[dict, Iterator[dict]]:
    """One group of `GroupByFile` -> (its records by name, the documents of its file). Records for a
    file that no bundle completed are an error (a record derived from a failed bundle's attempt)."""
    tag, grouped = group
    if not list(grouped["files"]):
        raise RuntimeError(f"{stage}: records for {spill_path(folder, tag)}, which no bundle completed")
    return grouped, read_spilled(folder, tag)


class _ReadSpilled(beam.DoFn):
    def __init__(self, folder: str):
        self._folder = folder

    def process(self, tag: str):
        yield from read_spilled(self._folder, tag)


class MergeThroughFiles(beam.PTransform):
    """A tuple of document collections -> one collection of all their documents, through files in
    `folder` (a Flatten that the local runners would otherwise hold whole in memory)."""

    def __init__(self, folder: str):
        super().__init__()
        self._folder = folder

    def expand(self, collections):
        if isinstance(collections, beam.pvalue.PCollection):
            collections = [collections]
        spill = SpillDocuments(self._folder)
        tags = [(docs | f"Spill{i}" >> beam.ParDo(spill).with_outputs(FILES, main="docs"))[FILES]
                for i, docs in enumerate(collections)]
        return (
            tags
            | "AllFiles" >> beam.Flatten()
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadBack" >> beam.ParDo(_ReadSpilled(self._folder))
        )
