"""C4 reader: json lines -> documents, with a drop for every line that is not a usable document."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.sources.c4 import Options, Read, ReadC4FileDoFn, read_json_lines


def line(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode("utf-8") + b"\n"


def direct_read(path, options: Options | None = None):
    outputs = list(ReadC4FileDoFn(options or Options()).process(str(path)))
    return ([item for item in outputs if isinstance(item, dict)],
            [item.value for item in outputs if not isinstance(item, dict)])


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
        out["documents"],
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
    assert [(number, value, problem) for number, value, problem in read_json_lines(str(path), 1000)] == [
        (1, {"text": "first"}, ""), (2, {"text": "second"}, "")]


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
            assert doc["meta"] == {"timestamp": row["date"]}
