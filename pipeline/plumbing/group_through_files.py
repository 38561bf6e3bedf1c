"""A GroupByKey through files: what the runner shuffles is a few references per file, not the records.

Why: Beam's local runners (the FnApiRunner, in one process or with worker processes) hold every
element that crosses a GroupByKey in the runner's memory about three times over (the grouping table,
the re-encoded grouped output, the message to the worker), so a shuffle of bulky records made the
runner grow with the input. datatrove's MinHash dedup writes its band records to files per bucket
range instead of shuffling them; so do the two bulky shuffles here, the LSH band records
(`stages/dedup/buckets.py`) and the token rows on their way to their shard (`output/token_shards.py`).
Everything goes through Beam's FileSystems (any filesystem Beam has) and runs the same on every runner.

1. `WriteRuns` buffers a bundle's (key, value) records up to `run_bytes`, then writes them as one run
   file: the records of each partition (`partition(key)`) are one zstd frame of a pickled list. Once
   the file is closed it emits (partition, (path, offset, length)) for each frame: a bundle that
   fails and is retried never lists the files of its failed attempt.
2. A GroupByKey by partition (`GroupThroughFiles`) brings a partition's frames together: partitions x
   runs small values.
3. `read_records(frames)` reads one partition's records back, one frame at a time.

Memory: a writing worker holds one run (`run_bytes` of records), a reading worker what it keeps of
one partition. The files are ours, written by this run in its work folder, so unpickling them trusts
nothing more than the run itself does.
"""

from __future__ import annotations

import pickle
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator

import apache_beam as beam
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.plumbing.bundles import bundle_output

# Bytes of buffered records at which a run file is written. Small enough that a worker's buffer stays a
# few tens of MB of Python objects; large enough that a run holds many records of each partition.
RUN_BYTES = 8 << 20
_RECORD_OVERHEAD = 64  # bytes counted per record beyond its bytes and strings (a rough Python cost)

Frame = tuple[str, int, int]  # run file, offset, length


def same_key(key):
    """A record's partition is its key (one frame per key and run)."""
    return key


class HashPartition:
    """The partition of a hash key (bytes): its last 4 bytes modulo `partitions` (picklable, for the
    DoFn that calls it)."""

    def __init__(self, partitions: int):
        self.partitions = partitions

    def __call__(self, key: bytes) -> int:
        return int.from_bytes(key[-4:], "little") % self.partitions


class TextHashPartition:
    """The partition of a text key: a stable hash (crc32; Python's `hash` of a str varies by process)
    modulo `partitions`."""

    def __init__(self, partitions: int):
        self.partitions = partitions

    def __call__(self, key: str) -> int:
        return zlib.crc32(key.encode("utf-8")) % self.partitions


def approximate_bytes(value) -> int:
    """The bytes and strings of a record (nested tuples, lists and dicts), plus a fixed overhead: what
    a run buffers."""
    if isinstance(value, (bytes, str)):
        return len(value)
    if isinstance(value, (tuple, list)):
        return sum(approximate_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(approximate_bytes(k) + approximate_bytes(v) for k, v in value.items())
    return 8


class WriteRuns(beam.DoFn):
    """(key, value) -> (partition(key), (run file, offset, length)) for each partition's frame of each
    run file, emitted once the file is complete. `namespace` names the metrics counter and the files'
    suffix."""

    def __init__(self, folder: str, partition: Callable[[object], Hashable], namespace: str,
                 run_bytes: int = RUN_BYTES, level: int = 3):
        self._folder = folder
        self._partition = partition
        self._namespace = namespace
        self._run_bytes = run_bytes
        self._level = level
        self._runs = beam.metrics.Metrics.counter(namespace, "run_files")

    def setup(self):
        self._compressor = zstandard.ZstdCompressor(level=self._level)

    def start_bundle(self):
        self._records: dict[Hashable, list] = defaultdict(list)
        self._bytes = 0

    def process(self, record: tuple):
        self._records[self._partition(record[0])].append(record)
        self._bytes += approximate_bytes(record) + _RECORD_OVERHEAD
        if self._bytes >= self._run_bytes:
            yield from self._write_run()

    def finish_bundle(self):
        for frame in self._write_run():
            yield bundle_output(frame)

    def _write_run(self) -> Iterator[tuple[Hashable, Frame]]:
        if not self._records:
            return
        path = FileSystems.join(self._folder, f"{uuid.uuid4().hex[:16]}.{self._namespace}")
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
        self._runs.inc()
        yield from frames


def _read_at(f, path: str, offset: int, length: int) -> bytes:
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise OSError(f"{path}: run file truncated at {offset + len(data)} bytes "
                      f"(expected {offset + length}; the work folder was changed during the run?)")
    return data


def read_records(frames: Iterable[Frame]) -> Iterator[tuple]:
    """The (key, value) records of frames, frame by frame in the order given (a file is opened once
    for consecutive frames of it: sort the frames to read many of one file)."""
    decompressor = zstandard.ZstdDecompressor()  # one for all frames, not one per frame
    path, f = None, None
    try:
        for frame_path, offset, length in frames:
            if frame_path != path:
                if f is not None:
                    f.close()
                path = frame_path
                f = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
            data = _read_at(f, path, offset, length)
            try:
                # Safe to unpickle: a run file under OUT/_work that this run's own WriteRuns wrote (from
                # records our code built), never a file from outside the run or a parser's output.
                records = pickle.loads(decompressor.decompress(data))
            except (zstandard.ZstdError, pickle.UnpicklingError, EOFError) as error:
                raise OSError(f"{path}: unreadable run frame at offset {offset}: {error}") from error
            yield from records
    finally:
        if f is not None:
            f.close()


class GroupThroughFiles(beam.PTransform):
    """(key, value) -> (partition, frames of that partition): the input of `read_records`. Each of
    `every_partition` comes out even when no record fell in it (with no frames), so that a stage
    writing one file per partition writes them all."""

    def __init__(self, folder: str, partition: Callable[[object], Hashable], namespace: str,
                 level: int = 3, every_partition: Iterable[Hashable] = ()):
        super().__init__()
        self._write = WriteRuns(folder, partition, namespace, level=level)
        self._every_partition = list(every_partition)

    def expand(self, records):
        frames = records | "WriteRuns" >> beam.ParDo(self._write)
        if self._every_partition:
            markers = records.pipeline | "EveryPartition" >> beam.Create(
                [(partition, None) for partition in self._every_partition])
            frames = (frames, markers) | "WithEveryPartition" >> beam.Flatten()
        grouped = frames | "GroupPartitions" >> beam.GroupByKey()
        if self._every_partition:
            grouped = grouped | "DropMarkers" >> beam.MapTuple(
                lambda partition, found: (partition, [frame for frame in found if frame is not None]))
        return grouped
