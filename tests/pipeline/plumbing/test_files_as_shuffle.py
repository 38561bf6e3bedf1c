"""Files as the shuffle (pipeline/plumbing/files_as_shuffle.py): documents go through files between stages
unchanged, only the files their bundles completed are read, and a damaged file is an error that names it."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.plumbing.files_as_shuffle import (
    FILES,
    MergeThroughFiles,
    SpillDocuments,
    read_spilled,
    spill_path,
)


def documents(source: str, count: int) -> list[dict]:
    return [{"id": f"{source}:{i}", "source": source, "text": f"text {i} " * (i % 7 + 1), "url": "",
             "meta": {"offsets": (i, i + 1), "nested": {"n": i}}, **({"html": "<p>x</p>"} if i % 2 else {})}
            for i in range(count)]


def test_a_merge_through_files_gives_back_every_document_as_it_was(tmp_path):
    web, code = documents("commoncrawl", 40), documents("github", 25)
    with TestPipeline() as p:
        merged = (p | "Web" >> beam.Create(web), p | "Code" >> beam.Create(code)) | MergeThroughFiles(
            str(tmp_path))
        assert_that(merged, equal_to(web + code))
    assert list(tmp_path.glob("*.docs.zst"))


def test_large_bundles_are_cut_into_several_files_each_listed_once_complete(tmp_path):
    docs = documents("c4", 50)
    with TestPipeline() as p:
        out = p | beam.Create(docs) | beam.ParDo(SpillDocuments(str(tmp_path), max_bytes=500)).with_outputs(
            FILES, main="tagged")
        tags = out[FILES] | "AllTags" >> beam.combiners.ToList()
        ids = (out.tagged | "ReadBack" >> beam.combiners.ToList()
               | beam.Map(lambda tagged: sorted(d["id"] for _, d in tagged)))
        assert_that(ids, equal_to([sorted(d["id"] for d in docs)]), label="tagged")

        def check(all_tags):
            assert len(all_tags) > 1 and len(set(all_tags)) == len(all_tags)
            read = [d for tag in all_tags for d in read_spilled(str(tmp_path), tag)]
            assert sorted(d["id"] for d in read) == sorted(d["id"] for d in docs)

        _ = tags | beam.Map(check)


def test_files_no_bundle_listed_are_never_read(tmp_path):
    """What a failed, retried bundle leaves behind: a file whose tag never reached the pipeline."""
    stray = SpillDocuments(str(tmp_path))
    stray.start_bundle()
    list(stray.process({"id": "c4:stray", "source": "c4", "text": "left by a failed attempt"}))
    docs = documents("c4", 5)
    with TestPipeline() as p:
        merged = (p | beam.Create(docs),) | MergeThroughFiles(str(tmp_path))
        assert_that(merged, equal_to(docs))


def test_a_truncated_file_is_an_error_naming_it(tmp_path):
    writer = SpillDocuments(str(tmp_path))
    writer.start_bundle()
    (tag, _), = list(writer.process({"id": "c4:1", "source": "c4", "text": "x" * 10_000}))
    list(writer.finish_bundle())
    path = spill_path(str(tmp_path), tag)
    import zstandard

    with open(path, "rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f).read()
    with open(path, "wb") as f:
        f.write(zstandard.ZstdCompressor().compress(raw[:-10]))
    with pytest.raises(OSError, match=tag):
        list(read_spilled(str(tmp_path), tag))


def test_a_run_leaves_no_spilled_copy_of_the_corpus_behind(demo_run):
    """The spilled files are a copy of the corpus: gone once the cleaning pipeline has finished."""
    work = demo_run["out"] / "_work"
    assert work.is_dir() and not (work / "spill").exists()
