"""LSH buckets grouped through run files (pipeline/stages/dedup/buckets.py): every record reaches its bucket
exactly once however the bundles were cut, only completed runs are read, and a damaged run file is an
error that names it."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.plumbing.group_through_files import HashPartition
from llamapipe.pipeline.stages.dedup.buckets import read_buckets, write_band_runs


def band_records(count: int, keys: int, seed: int = 0) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    key_space = [rng.randbytes(10) for _ in range(keys)]
    return [(rng.choice(key_space), f"member-{i:05d}".encode() + rng.randbytes(rng.randint(0, 200)))
            for i in range(count)]


def expected_buckets(records) -> list[tuple[bytes, list[bytes]]]:
    buckets: dict[bytes, list[bytes]] = {}
    for key, member in records:
        buckets.setdefault(key, []).append(member)
    return sorted((key, sorted(members)) for key, members in buckets.items())


@pytest.mark.parametrize("run_bytes", [1 << 20, 3_000])
def test_every_record_reaches_its_bucket_once_however_many_runs_and_partitions(tmp_path, run_bytes):
    records = band_records(2_000, keys=300)
    with TestPipeline() as p:
        buckets = (
            p
            | beam.Create(records)
            | beam.ParDo(write_band_runs(str(tmp_path), partitions=7, run_bytes=run_bytes))
            | beam.GroupByKey()
            | beam.FlatMap(lambda element: read_buckets(element[1]))
        )
        assert_that(buckets, equal_to(expected_buckets(records)))
    runs = list(tmp_path.glob("*.lsh"))
    assert (len(runs) > 10) if run_bytes < 10_000 else (1 <= len(runs) <= 2)


def test_frames_are_listed_only_once_their_run_file_is_closed_and_a_bucket_sorts_its_members(tmp_path):
    writer = write_band_runs(str(tmp_path), partitions=3, run_bytes=1 << 30)
    writer.setup()
    writer.start_bundle()
    records = band_records(50, keys=5)
    assert [out for record in records for out in writer.process(record)] == []
    assert not list(tmp_path.glob("*.lsh"))  # nothing is written, so nothing listed, before the run ends
    frames = [output.value for output in writer.finish_bundle()]
    assert sorted({partition for partition, _ in frames}) == sorted(
        {HashPartition(3)(key) for key, _ in records})
    shuffled = [frame for _, frame in frames]
    random.Random(1).shuffle(shuffled)
    assert list(read_buckets(shuffled)) == expected_buckets(records)


def test_a_truncated_run_file_is_an_error_naming_it(tmp_path):
    writer = write_band_runs(str(tmp_path), partitions=1)
    writer.setup()
    writer.start_bundle()
    for record in band_records(100, keys=10):
        list(writer.process(record))
    (_, frame), = [output.value for output in writer.finish_bundle()]
    path = frame[0]
    with open(path, "r+b") as f:
        f.truncate(frame[2] // 2)
    with pytest.raises(OSError, match=path.rsplit("/", 1)[-1]):
        list(read_buckets([frame]))
