"""Cleaned documents on disk: every kept document once, in its source's numbered files, row groups within
the memory budget, nothing left in the temporary folder."""

from __future__ import annotations

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from llamapipe.pipeline.output.documents import DOCUMENT_SCHEMA, WriteDocuments, _finalize

SOURCES = ["commoncrawl", "wikipedia", "books"]


def documents() -> list[dict]:
    docs = [{"id": f"commoncrawl:{i}", "source": "commoncrawl", "text": f"page {i} " + "x" * 900,
             "url": f"https://example.com/{i}", "language": "en", "language_score": 0.9,
             "meta": {"warc_date": "2023-01-01"}} for i in range(600)]
    docs += [{"id": f"wikipedia:{i}", "source": "wikipedia", "text": f"article {i} " + "y" * 300,
              "meta": None} for i in range(200)]
    return docs  # no books: a source whose documents were all dropped


def write(folder, docs, row_group_bytes=100_000, buffer_bytes=150_000):
    with TestPipeline() as p:
        _ = p | beam.Create(docs) | WriteDocuments(str(folder), SOURCES, row_group_bytes, buffer_bytes)


def test_every_document_lands_once_in_its_sources_numbered_files(tmp_path):
    write(tmp_path / "documents", documents())

    by_source = {}
    for source in SOURCES:
        files = sorted((tmp_path / "documents" / source).glob("*.parquet"))
        count = len(files)
        assert [f.name for f in files] == [f"{source}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
        tables = [pq.read_table(f) for f in files]
        assert all(t.schema.equals(DOCUMENT_SCHEMA, check_metadata=True) for t in tables)
        by_source[source] = [row for t in tables for row in t.to_pylist()]
    assert sorted(r["id"] for r in by_source["commoncrawl"]) == sorted(f"commoncrawl:{i}" for i in range(600))
    assert sorted(r["id"] for r in by_source["wikipedia"]) == sorted(f"wikipedia:{i}" for i in range(200))
    assert by_source["books"] == []  # one empty, readable file
    page = next(r for r in by_source["commoncrawl"] if r["id"] == "commoncrawl:7")
    assert page["url"] == "https://example.com/7" and page["meta"] == '{"warc_date": "2023-01-01"}'
    assert page["language_score"] == pytest.approx(0.9)
    article = next(r for r in by_source["wikipedia"] if r["id"] == "wikipedia:7")
    assert (article["url"], article["language"], article["meta"]) == ("", "", "{}")
    assert not list((tmp_path / "documents").glob(".temp-*"))  # the temporary folder is gone


def test_row_groups_stay_within_the_budget(tmp_path):
    # 600 pages of ~1 kB: a row group is written once a source holds 100 kB, so about 100 rows, never
    # the whole source
    write(tmp_path / "documents", documents())
    groups = [meta.row_group(i).num_rows
              for f in (tmp_path / "documents" / "commoncrawl").glob("*.parquet")
              for meta in [pq.ParquetFile(f).metadata] for i in range(meta.num_row_groups)]
    assert sum(groups) == 600 and len(groups) >= 5 and max(groups) <= 110


def test_finalize_run_again_after_a_failure_part_way_renames_nothing_twice(tmp_path):
    temp = tmp_path / "documents" / ".temp-x"
    temp.mkdir(parents=True)
    files = []
    for i in range(3):
        path = temp / f"wikipedia-{i}.parquet"
        pq.write_table(DOCUMENT_SCHEMA.empty_table(), path)
        files.append(("wikipedia", str(path)))
    first = _finalize(files, str(tmp_path / "documents"), str(temp), ["wikipedia"])
    again = _finalize(files, str(tmp_path / "documents"), str(temp), ["wikipedia"])
    assert first == again and len(first) == 3 and not temp.exists()
    (tmp_path / "documents" / "wikipedia" / "wikipedia-00001-of-00003.parquet").unlink()
    with pytest.raises(OSError, match="lost before they were renamed"):
        _finalize(files, str(tmp_path / "documents"), str(temp), ["wikipedia"])
