"""LSH buckets grouped through run files (`plumbing/group_through_files.py`): what the runner shuffles is a
few references per file, not the band records.

Why: every document gives one record per LSH band (14 with the defaults), each about 200 bytes (the
b-bit signature travels with it, for verification in the bucket). Through a GroupByKey, Beam's local
runner held each record three times: about 29 KB of runner memory per document, the one part of dedup
that still grew with the input (benchmarks/dedup.py: 4x the input cost 1.36x the memory).

A band record's partition is a hash of its band key modulo `partitions` (`dedup.lsh_partitions`);
`read_buckets(frames)` reads one partition back and groups its records by band key: the LSH buckets.

Memory: a reading worker holds one partition's records, about bands x 200 bytes x documents /
partitions (so `dedup.lsh_partitions` is what to raise for a corpus of more than some 50 million
documents).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from llamapipe.pipeline.plumbing.group_through_files import (
    RUN_BYTES,
    Frame,
    GroupThroughFiles,
    HashPartition,
    WriteRuns,
    read_records,
)

NAMESPACE = "lsh"  # run files' suffix and counter namespace


def write_band_runs(folder: str, partitions: int, run_bytes: int = RUN_BYTES) -> WriteRuns:
    """(band key, member) -> (partition, (run file, offset, length)), once each run file is complete."""
    return WriteRuns(folder, HashPartition(partitions), NAMESPACE, run_bytes)


def read_buckets(frames: Iterable[Frame]) -> Iterator[tuple[bytes, list[bytes]]]:
    """(band key, members) of every bucket of one partition's frames, keys and members sorted: the
    result does not depend on how the runner split and ordered the bundles that wrote them."""
    buckets: dict[bytes, list[bytes]] = defaultdict(list)
    for key, member in read_records(frames):
        buckets[key].append(member)
    for key in sorted(buckets):
        yield key, sorted(buckets[key])


class GroupBuckets(GroupThroughFiles):
    """(band key, member) -> (partition, frames of that partition): the input of `read_buckets`."""

    def __init__(self, folder: str, partitions: int):
        super().__init__(folder, HashPartition(partitions), NAMESPACE)
