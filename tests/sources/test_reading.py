"""The file-reading scaffold: splits spread over workers, each path read once, planning fallback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.sources import c4
from llamapipe.sources.reading import FileSplit, ReadFileDoFn, ReadFiles, make_document


def write_lines(path: Path, count: int) -> None:
    path.write_bytes(b"".join(json.dumps({"text": f"document {n} " + "word " * (n % 50)}).encode() + b"\n"
                              for n in range(count)))


def test_parts_of_one_big_file_are_read_by_several_worker_processes(tmp_path):
    write_lines(tmp_path / "one-big-file.jsonl", 20_000)
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    with beam.Pipeline(options=options) as pipeline:
        inputs = [str(tmp_path / "one-big-file.jsonl")]
        read = pipeline | c4.Read(c4.Options(inputs=inputs, split_bytes=50_000))
        (read["documents"]
         | "IdAndWorker" >> beam.Map(lambda document: json.dumps([document["id"], os.getpid()]))
         | "Write" >> beam.io.WriteToText(str(tmp_path / "out" / "read")))
    rows = [json.loads(line) for path in (tmp_path / "out").glob("read*")
            for line in path.read_text().split("\n") if line]
    ids = [doc_id for doc_id, _ in rows]
    assert sorted(ids) == sorted(f"c4:one-big-file.jsonl:{n}" for n in range(1, 20_001))  # each line once
    assert len({pid for _, pid in rows}) == 2


class WholeFileReader(ReadFileDoFn):
    """Emits one document per read call, naming the split it was given."""

    source = "c4"

    def __init__(self, fail_planning: bool = False):
        super().__init__()
        self._fail_planning = fail_planning

    def plan(self, path: str, size: int, split_bytes: int):
        if self._fail_planning:
            yield FileSplit(path, 0, 1)
            raise OSError("index unreadable")
        yield from (FileSplit(path, 0, 1), FileSplit(path, 1, None))

    def read_split(self, split: FileSplit):
        yield make_document("c4", f"{Path(split.path).name}@{split.start}:{split.stop}", "text")


def test_each_path_is_read_once_and_failed_planning_reads_the_whole_file(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    patterns = [str(tmp_path / "*.txt"), str(tmp_path / "a.*")]  # both match a.txt
    with TestPipeline() as pipeline:
        split = pipeline | "Split" >> ReadFiles(patterns, WholeFileReader())
        assert_that(split["documents"] | "SplitIds" >> beam.Map(lambda d: d["id"]),
                    equal_to(["c4:a.txt@0:1", "c4:a.txt@1:None"]), label="TwoParts")
        whole = pipeline | "Fallback" >> ReadFiles(patterns, WholeFileReader(fail_planning=True))
        assert_that(whole["documents"] | "WholeIds" >> beam.Map(lambda d: d["id"]),
                    equal_to(["c4:a.txt@0:None"]), label="WholeFileOnly")
