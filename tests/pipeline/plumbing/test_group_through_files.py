"""A GroupByKey through run files (pipeline/plumbing/group_through_files.py), as the token rows take it to
their shard: every record comes back in its partition exactly once, a partition with no records still comes
out when it is asked for, and the runner gets frame references, not records."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.plumbing.group_through_files import GroupThroughFiles, read_records


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


def test_a_run_of_dict_records_is_written_once_it_holds_about_run_bytes(tmp_path):
    # Stack Exchange posts are dicts: their bodies must count, or a worker buffers far past run_bytes.
    from llamapipe.pipeline.plumbing.group_through_files import WriteRuns

    posts = [(f"site/{i}", {"id": str(i), "body": "x" * 1000}) for i in range(100)]
    writer = WriteRuns(str(tmp_path), by_key, "test_runs", run_bytes=10_000)
    writer.setup()
    writer.start_bundle()
    frames = [frame for post in posts for frame in writer.process(post)]
    frames += [value.value for value in writer.finish_bundle()]
    runs = list(tmp_path.glob("*.test_runs"))
    assert 9 <= len(runs) <= 11  # about 100 KB of bodies in runs of 10 KB
    assert sorted(read_records(sorted(frame for _, frame in frames))) == sorted(posts)
