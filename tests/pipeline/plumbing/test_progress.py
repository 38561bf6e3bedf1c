"""Live progress: counts printed while a DirectRunner pipeline runs, in one process and in several."""

from __future__ import annotations

import io
import re
import tempfile
import time
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.plumbing.progress import LiveProgress, format_progress, progress_enabled

ELEMENTS = 400


def _slow(x: int) -> int:
    time.sleep(0.01)  # 4 s in all: long enough for counts to be seen before the end
    return x


def test_the_line_shows_each_stage_in_and_out():
    counts = Counter({"read": 2133, "extract": 2000, "langid": 10})
    # quality has had 10 documents in and none out yet; dedup nothing at all: not shown
    assert format_progress(counts, ["read", "extract", "langid", "quality", "dedup"], 75.2, {}) == \
        "1:15 read 2,133 | extract 2,133→2,000 | langid 2,000→10 | quality 10→0"
    assert format_progress(Counter({"tokenize": 5}), ["tokenize"], 3, {"tokenize": 1261}) == \
        "0:03 tokenize 5/1,261"
    assert format_progress(Counter({"read": 250_000}), ["read"], 0, {}) == "0:00 read 250k"


def test_only_local_runners_write_progress(monkeypatch):
    assert progress_enabled(PipelineOptions(["--runner=DirectRunner"]))
    assert progress_enabled(PipelineOptions([]))
    assert not progress_enabled(PipelineOptions(["--runner=DataflowRunner"]))
    # the local runner's workers share this machine's disk: with an output on an object store the counts
    # wait in a local temporary folder, not under a local folder named "gs:"
    remote = LiveProgress("gs://bucket/out/_work", PipelineOptions(["--runner=DirectRunner"]))
    assert remote.enabled and "://" not in remote.folder and remote.folder.startswith(tempfile.gettempdir())
    monkeypatch.setenv("LLAMAPIPE_PROGRESS", "0")
    assert not progress_enabled(PipelineOptions(["--runner=DirectRunner"]))


@pytest.mark.parametrize("mode", ["in_memory", "multi_processing"])
def test_counts_are_printed_while_the_pipeline_runs(tmp_path, mode):
    options = PipelineOptions(["--runner=DirectRunner", f"--direct_running_mode={mode}",
                               f"--direct_num_workers={1 if mode == 'in_memory' else 2}"])
    stream = io.StringIO()
    with LiveProgress(str(tmp_path), options, stream=stream, interval=0.2) as progress, \
            beam.Pipeline(options=options) as p:
        numbers = p | beam.Create(range(ELEMENTS)) | beam.Reshuffle()
        progress.count(numbers, "read")
        slow = numbers | beam.Map(_slow)
        progress.count(slow, "slow")
        assert_that(slow, equal_to(list(range(ELEMENTS))))  # the counted elements go on unchanged

    lines = stream.getvalue().splitlines()
    seen = [int(m.group(1).replace(",", "")) for line in lines if (m := re.search(r"→([\d,]+)$", line))]
    assert seen, stream.getvalue()
    assert seen[-1] == ELEMENTS  # the last line has every element
    assert any(0 < n < ELEMENTS for n in seen), lines  # and some line came while the pipeline ran
    assert seen == sorted(seen)
    assert not list((tmp_path / "progress").glob("*/*.json"))  # the counts files are cleaned up
