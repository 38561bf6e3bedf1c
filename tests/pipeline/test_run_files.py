"""A GroupByKey through run files (pipeline/run_files.py), as the token rows take it to their shard:
every record comes back in its partition exactly once, a partition with no records still comes out
when it is asked for, and the runner gets frame references, not records."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.run_files import GroupThroughFiles, read_records


def by_key(key):
    return key


def test_records_come_back_per_partition_and_an_empty_partition_still_comes_out(tmp_path):
    records = [(("wiki", i % 3), (f"doc-{i:04d}", bytes([i % 256]) * (i % 50), i % 7 == 0))
               for i in range(600)]
    wanted = [("wiki", 0), ("wiki", 1), ("wiki", 2), ("wiki", 3)]  # shard 3 gets no record

    def contents(element):
        partition, frames = element
        assert all(isinstance(frame, tuple) and len(frame) == 3 for frame in frames)  # references only
        return partition, sorted(value for _, value in read_records(frames))

    expected = [(shard, sorted(value for key, value in records if key == shard)) for shard in wanted]
    with TestPipeline() as p:
        grouped = (
            p
            | beam.Create(records)
            | GroupThroughFiles(str(tmp_path), by_key, "test_runs", every_partition=wanted)
            | beam.Map(contents)
        )
        assert_that(grouped, equal_to(expected))
    assert list(tmp_path.glob("*.test_runs"))
