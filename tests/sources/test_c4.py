"""C4 reader: json lines -> documents, with a drop for every line that is not a usable document."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.sources.c4 import Options, Read, ReadC4FileDoFn, read_json_lines
from llamapipe.sources.reading import FileSplit, plan_line_splits


def line(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode("utf-8") + b"\n"


def direct_read(path, options: Options | None = None):
    outputs = list(ReadC4FileDoFn(options or Options()).process(str(path)))
    return ([item for item in outputs if isinstance(item, dict)],
            [item.value for item in outputs if not isinstance(item, dict)])


def without_provenance(document: dict) -> dict:
    meta = {k: v for k, v in document["meta"].items() if k not in ("source_file", "line", "offset")}
    return {**document, "meta": meta}


def test_every_line_is_a_document_or_exactly_one_drop(tmp_path):
    path = tmp_path / "c4-train.00000-of-01024.json.gz"
    with gzip.open(path, "wb") as out:
        out.write(line(
            text="Beans are roasted.", url="https://a.example/1", timestamp="2019-04-25T12:57:54Z"))
        out.write(b'{"text": "cut off\n')                                         # 2 malformed_json
        out.write(line(url="https://a.example/3"))                               # 3 bad_schema
        out.write(line(text=17, url="https://a.example/4"))                      # 4 bad_schema
        out.write(line(text="   \n", url="https://a.example/5"))                 # 5 empty
        out.write(b'{"text": "caf\xe9", "url": "https://a.example/6"}\n')        # 6 bad_encoding (latin-1)
        out.write(b"\n")                                                         # 7 blank: not a record
        out.write(line(text="Crème brûlée.", url="https://a.example/8", date="2019-04-20T01:02:03Z"))
        out.write(b'{"text": "\\ud800 lone surrogate"}\n')                      # 9 bad_encoding
        out.write(b"[1, 2]\n")                                                   # 10 bad_schema
    other = tmp_path / "other.jsonl"
    other.write_bytes(line(text="Plain jsonl works too.", url=""))

    pipeline = TestPipeline()
    out = pipeline | Read(Options(inputs=[str(tmp_path / "*")]))
    assert_that(
        out["documents"] | "NoProvenance" >> beam.Map(without_provenance),
        equal_to([
            {"id": "c4:c4-train.00000-of-01024.json.gz:1", "source": "c4", "text": "Beans are roasted.",
             "url": "https://a.example/1", "meta": {"timestamp": "2019-04-25T12:57:54Z"}},
            {"id": "c4:c4-train.00000-of-01024.json.gz:8", "source": "c4", "text": "Crème brûlée.",
             "url": "https://a.example/8", "meta": {"timestamp": "2019-04-20T01:02:03Z"}},
            {"id": "c4:other.jsonl:1", "source": "c4", "text": "Plain jsonl works too.", "url": "",
             "meta": {}},
        ]),
        label="CheckDocuments",
    )
    assert_that(
        out["dropped"] | "IdAndReason" >> beam.Map(lambda d: (d["id"], d["stage"], d["reason"])),
        equal_to([
            ("c4:c4-train.00000-of-01024.json.gz:2", "read", "malformed_json"),
            ("c4:c4-train.00000-of-01024.json.gz:3", "read", "bad_schema"),
            ("c4:c4-train.00000-of-01024.json.gz:4", "read", "bad_schema"),
            ("c4:c4-train.00000-of-01024.json.gz:5", "read", "empty"),
            ("c4:c4-train.00000-of-01024.json.gz:6", "read", "bad_encoding"),
            ("c4:c4-train.00000-of-01024.json.gz:9", "read", "bad_encoding"),
            ("c4:c4-train.00000-of-01024.json.gz:10", "read", "bad_schema"),
        ]),
        label="CheckDrops",
    )
    pipeline.run().wait_until_finish()


def test_overlong_line_is_one_drop_and_reading_continues(tmp_path):
    path = tmp_path / "long.json"
    path.write_bytes(line(text="x" * 5000) + line(text="short one") + b'{"text": "no newline at end"}')
    documents, drops = direct_read(path, Options(max_line_bytes=1000))
    assert [(doc["id"], doc["text"]) for doc in documents] == [
        ("c4:long.json:2", "short one"), ("c4:long.json:3", "no newline at end")]
    assert [(drop["id"], drop["reason"]) for drop in drops] == [("c4:long.json:1", "record_too_large")]


def test_byte_order_mark_and_crlf_lines_are_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + line(text="first").replace(b"\n", b"\r\n") + line(text="second"))
    with open(path, "rb") as stream:
        lines = list(read_json_lines(stream, 1000))
    first_length = len(b"\xef\xbb\xbf" + line(text="first").replace(b"\n", b"\r\n"))
    assert lines == [(1, 0, {"text": "first"}, ""), (2, first_length, {"text": "second"}, "")]


def test_truncated_gzip_keeps_earlier_lines_and_records_the_rest_as_one_drop(tmp_path):
    # Big enough that the cut falls well after open_input's first 1 MB read-ahead buffer.
    total = 200_000
    data = gzip.compress(b"".join(line(text=f"document {n}") for n in range(total)))
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    documents, drops = direct_read(path)
    assert 0 < len(documents) < total
    assert [doc["text"] for doc in documents] == [f"document {n}" for n in range(len(documents))]
    assert [(drop["id"], drop["reason"]) for drop in drops] == [("c4:cut.json.gz", "unreadable_file")]


def test_real_c4_samples_use_date_as_timestamp(realdata):
    files = sorted((realdata / "c4").glob("*.json.gz"))
    assert files
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            rows = [json.loads(raw) for raw in stream if raw.strip()]
        documents, drops = direct_read(path)
        assert drops == []
        assert len(documents) == len(rows)
        for number, (doc, row) in enumerate(zip(documents, rows, strict=True), start=1):
            assert doc["id"] == f"c4:{path.name}:{number}"
            assert doc["text"] == row["text"] and doc["url"] == row["url"]
            assert doc["meta"]["timestamp"] == row["date"]
            assert doc["meta"]["source_file"] == str(path) and doc["meta"]["line"] == number


# --- splitting big files and provenance ------------------------------------------------------------


def mixed_lines(count: int) -> bytes:
    """Lines of varied length, with blank, malformed and CRLF lines among them."""
    out = []
    for n in range(count):
        if n % 97 == 5:
            out.append(b"\n")
        elif n % 89 == 7:
            out.append(b'{"text": "broken\n')
        else:
            raw = line(text=f"document {n} " + "word " * (n % 40), url=f"https://a.example/{n}")
            out.append(raw.replace(b"\n", b"\r\n") if n % 3 == 0 else raw)
    return b"".join(out)


def test_line_splits_start_at_line_starts_and_count_the_lines_before(tmp_path):
    data = mixed_lines(2000)
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    splits = plan_line_splits(str(path), len(data), 4096)
    assert len(splits) > 20
    assert splits[0].start == 0 and splits[-1].stop is None
    for before, after in zip(splits, splits[1:], strict=False):
        assert before.stop == after.start  # contiguous, nothing read twice or skipped
        assert data[after.start - 1:after.start] == b"\n"
        assert after.records_before == data[:after.start].count(b"\n")
        assert after.start - before.start >= 4096
    # compressed files and small files are not split
    assert plan_line_splits(str(path) + ".gz", len(data), 4096) == [FileSplit(str(path) + ".gz")]
    assert plan_line_splits(str(path), len(data), len(data)) == [FileSplit(str(path))]


def test_a_split_read_gives_exactly_the_documents_and_drops_of_a_whole_read(tmp_path):
    data = mixed_lines(3000)
    whole = tmp_path / "whole" / "part.jsonl.gz"  # gzip: always read whole
    whole.parent.mkdir()
    whole.write_bytes(gzip.compress(data))
    split = tmp_path / "split" / "part.jsonl"
    split.parent.mkdir()
    split.write_bytes(data)
    options = Options(inputs=[str(split)], split_bytes=10_000)
    assert len(ReadC4FileDoFn(options).plan(str(split), len(data), options.split_bytes)) > 10

    def comparable(document):
        meta = {k: v for k, v in document["meta"].items() if k != "source_file"}
        return document["id"].replace(".jsonl.gz:", ".jsonl:"), document["text"], document["url"], meta

    expected_documents, expected_drops = direct_read(whole)
    assert len(expected_documents) > 2500 and len(expected_drops) > 20
    with TestPipeline() as pipeline:
        out = pipeline | Read(options)
        assert_that(out["documents"] | "Comparable" >> beam.Map(comparable),
                    equal_to([comparable(d) for d in expected_documents]), label="SameDocuments")
        expected = [(d["id"].replace(".jsonl.gz:", ".jsonl:"), d["reason"]) for d in expected_drops]
        assert_that(out["dropped"] | "DropIds" >> beam.Map(lambda d: (d["id"], d["reason"])),
                    equal_to(expected), label="SameDrops")


def test_provenance_points_at_the_line(tmp_path):
    data = mixed_lines(500)
    path = tmp_path / "trace.jsonl"
    path.write_bytes(data)
    outputs = []
    for part in plan_line_splits(str(path), len(data), 2000):
        outputs.extend(item for item in ReadC4FileDoFn(Options()).process(part) if isinstance(item, dict))
    assert len(outputs) > 400
    lines = data.split(b"\n")
    for document in outputs:
        meta = document["meta"]
        assert meta["source_file"] == str(path)
        at_offset = data[meta["offset"]:].split(b"\n", 1)[0]
        assert at_offset == lines[meta["line"] - 1]
        assert json.loads(at_offset)["text"] == document["text"]
