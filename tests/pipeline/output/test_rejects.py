"""Rejects: a deterministic sample of drops with their text, at least one per reason; inspectable."""

from __future__ import annotations

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.output.rejects import WriteRejects
from llamapipe.pipeline.plumbing.sampling import id_fraction


def drops() -> list[dict]:
    out = [{"source": "commoncrawl", "stage": "quality", "reason": "too_short", "id": f"commoncrawl:{i}",
            "detail": "", "text": f"short page {i}"} for i in range(2000)]
    out.append({"source": "c4", "stage": "quality", "reason": "c4_lorem_ipsum", "id": "c4:rare",
                "detail": "one of a kind", "text": "Lorem ipsum dolor sit amet."})
    out.append({"source": "commoncrawl", "stage": "read", "reason": "http_status", "id": "commoncrawl:404",
                "detail": "404"})  # a drop without text (a reader's)
    return out


def write(tmp_path, rate: float) -> list[dict]:
    with TestPipeline() as p:
        _ = p | beam.Create(drops()) | WriteRejects(str(tmp_path / "rejects" / "rejects"), rate, 100)
    files = sorted((tmp_path / "rejects").glob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_sample_by_rate_plus_one_per_reason(tmp_path):
    rows = write(tmp_path, 0.01)
    short = [r for r in rows if r["reason"] == "too_short"]
    expected = sum(id_fraction(f"commoncrawl:{i}") < 0.01 for i in range(2000))
    assert len(short) == expected and 5 < expected < 40  # about 1%, the same ones on every run
    assert all(r["text"].startswith("short page") and r["sampled_by"] == "rate" for r in short)
    rare = [r for r in rows if r["reason"] == "c4_lorem_ipsum"]
    assert len(rare) == 1 and rare[0]["text"] == "Lorem ipsum dolor sit amet."
    assert [r["text"] for r in rows if r["reason"] == "http_status"] == [None]
    assert len({r["id"] for r in rows}) == len(rows)  # none written twice


def test_inspect_shows_the_rejects_of_a_reason(tmp_path, capsys):
    write(tmp_path, 0.0)
    assert main(["inspect", str(tmp_path / "rejects")]) == 0
    summary = capsys.readouterr().out
    assert "c4_lorem_ipsum" in summary and "too_short" in summary
    assert main(["inspect", str(tmp_path / "rejects"), "--reason", "c4_lorem_ipsum"]) == 0
    printed = capsys.readouterr().out
    assert "Lorem ipsum dolor sit amet." in printed and "one of a kind" in printed
    assert main(["inspect", str(tmp_path / "rejects"), "--reason", "no_such_reason"]) == 0
    assert "no sampled reject with reason 'no_such_reason'" in capsys.readouterr().out
