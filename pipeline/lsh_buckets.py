"""LSH buckets grouped through files: what the runner shuffles is a few references per file, not the
band records.

Why: every document gives one record per LSH band (14 with the defaults), each about 200 bytes (the
b-bit signature travels with it, for verification in the bucket). Through a GroupByKey, Beam's local
runner held each record three times (its grouping table, the re-encoded grouped output, the message
to the worker): about 29 KB of runner memory per document, the one part of dedup that still grew with
the input (benchmarks/dedup.py: 4x the input cost 1.36x the memory). datatrove's MinHash dedup faces the
same volume and writes the band records to files per bucket range instead of shuffling them; so does
this module, through Beam's FileSystems (any filesystem Beam has), on every runner alike.

1. `WriteBandRuns` buffers a bundle's (band key, member) records up to `run_bytes`, then writes them
   as one run file: the records of each partition (a hash of the band key modulo `partitions`) are one
   zstd frame of a pickled list. Once the file is closed it emits (partition, (path, offset, length))
   for each frame: a bundle that fails and is retried never lists the files of its failed attempt.
2. A GroupByKey by partition brings a partition's frames together (partitions x runs small values).
3. `read_buckets(frames)` reads them back and groups the records by band key: the LSH buckets.

Memory: a writing worker holds one run (`run_bytes` of records); a reading worker one partition's
records, about bands x 200 bytes x documents / partitions (so `dedup.lsh_partitions` is what to raise
for a corpus of more than some 50 million documents). The files are ours, written by this run in its
work folder, so unpickling them trusts nothing more than the run itself does.
"""

from __future__ import annotations

import pickle
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator

import apache_beam as beam
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.components import bundle_output

# Bytes of buffered band records (keys and members) at which a run file is written. Small enough that
# a worker's buffer stays a few tens of MB of Python objects; large enough that a run holds many records
# of each partition.
RUN_BYTES = 8 << 20
_RECORD_OVERHEAD = 64  # bytes counted per record beyond its key and member (a rough Python cost)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a band key: its last 4 bytes (part of the band's 64-bit hash) modulo
    `partitions`."""
    return int.from_bytes(key[-4:], "little") % partitions


class WriteBandRuns(beam.DoFn):
    """(band key, member) -> (partition, (run file, offset, length)) for each partition's frame of each
    run file, emitted once the file is complete."""

    def __init__(self, folder: str, partitions: int, run_bytes: int = RUN_BYTES):
        self._folder = folder
        self._partitions = partitions
        self._run_bytes = run_bytes

    def setup(self):
        self._compressor = zstandard.ZstdCompressor(level=3)

    def start_bundle(self):
        self._records: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        self._bytes = 0

    def process(self, record: tuple[bytes, bytes]):
        key, member = record
        self._records[partition_of(key, self._partitions)].append(record)
        self._bytes += len(key) + len(member) + _RECORD_OVERHEAD
        if self._bytes >= self._run_bytes:
            yield from self._write_run()

    def finish_bundle(self):
        for frame in self._write_run():
            yield bundle_output(frame)

    def _write_run(self) -> Iterator[tuple[int, tuple[str, int, int]]]:
        if not self._records:
            return
        path = FileSystems.join(self._folder, f"{uuid.uuid4().hex[:16]}.lsh")
        frames = []
        offset = 0
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for partition in sorted(self._records):
                data = self._compressor.compress(
                    pickle.dumps(self._records[partition], protocol=pickle.HIGHEST_PROTOCOL))
                f.write(data)
                frames.append((partition, (path, offset, len(data))))
                offset += len(data)
        self._records = defaultdict(list)
        self._bytes = 0
        beam.metrics.Metrics.counter("dedup", "lsh_run_files").inc()
        yield from frames


def read_frame(path: str, offset: int, length: int,
               decompressor: zstandard.ZstdDecompressor | None = None) -> list[tuple[bytes, bytes]]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise OSError(f"{path}: LSH run file truncated at {offset + len(data)} bytes "
                      f"(expected {offset + length}; the work folder was changed during the run?)")
    try:
        return pickle.loads((decompressor or zstandard.ZstdDecompressor()).decompress(data))
    except (zstandard.ZstdError, pickle.UnpicklingError, EOFError) as error:
        raise OSError(f"{path}: unreadable LSH frame at offset {offset}: {error}") from error


def read_buckets(frames: Iterable[tuple[str, int, int]]) -> Iterator[tuple[bytes, list[bytes]]]:
    """(band key, members) of every bucket of one partition's frames, keys and members sorted: the
    result does not depend on how the runner split and ordered the bundles that wrote them."""
    buckets: dict[bytes, list[bytes]] = defaultdict(list)
    decompressor = zstandard.ZstdDecompressor()  # one per partition, not one per frame
    for path, offset, length in frames:
        for key, member in read_frame(path, offset, length, decompressor):
            buckets[key].append(member)
    for key in sorted(buckets):
        yield key, sorted(buckets[key])


class GroupBuckets(beam.PTransform):
    """(band key, member) -> (partition, frames of that partition): the input of `read_buckets`."""

    def __init__(self, folder: str, partitions: int):
        super().__init__()
        self._folder = folder
        self._partitions = partitions

    def expand(self, records):
        return (
            records
            | "WriteRuns" >> beam.ParDo(WriteBandRuns(self._folder, self._partitions))
            | "GroupPartitions" >> beam.GroupByKey()
        )
