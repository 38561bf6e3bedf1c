"""CommonCrawl reader: WARC/WET records -> documents, drops and skip counters."""

from __future__ import annotations

import gzip
import io
import re
import zlib
from pathlib import Path

import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from llamapipe.sources import commoncrawl
from llamapipe.sources.commoncrawl import (
    Options,
    Read,
    ReadWarcFileDoFn,
    choose_charset,
    declared_charset,
    detect_charset,
    meta_charset,
)

RUSSIAN = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 20


def http_response(status: str, content_type: str | None, extra: list | None = None) -> StatusAndHeaders:
    headers = [("Content-Type", content_type)] if content_type else []
    return StatusAndHeaders(status, headers + (extra or []), protocol="HTTP/1.1")


def write_warc(path: Path, records: list[tuple], gzip: bool = True) -> Path:
    """records: (type, uri, payload bytes, http headers or None, record Content-Type)."""
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=gzip)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        for kind, uri, payload, http_headers, warc_content_type in records:
            writer.write_record(writer.create_warc_record(
                uri, kind, payload=io.BytesIO(payload), http_headers=http_headers,
                warc_content_type=warc_content_type or "",
            ))
    return path


def run_read(paths: list[Path], check_documents, check_drops, options: Options | None = None,
             namespace: str = "commoncrawl") -> dict:
    """Run Read in a TestPipeline, check its outputs with the given matchers, return its counters
    (those of `namespace`: "commoncrawl.read" has the documents and drops)."""
    options = options or Options()
    options.inputs = [str(path) for path in paths]
    pipeline = TestPipeline()
    out = pipeline | Read(options)
    assert_that(out["documents"], check_documents, label="CheckDocuments")
    assert_that(out["dropped"], check_drops, label="CheckDrops")
    result = pipeline.run()
    result.wait_until_finish()
    return {
        item.key.metric.name: item.committed
        for item in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]
    }


def direct_read(path: Path, options: Options | None = None):
    """The DoFn alone (no pipeline): fast for checks on many real files."""
    outputs = list(ReadWarcFileDoFn(options or Options()).process(str(path)))
    documents = [item for item in outputs if isinstance(item, dict)]
    drops = [item.value for item in outputs if not isinstance(item, dict)]
    return documents, drops


# ---------------------------------------------------------------------------------------------
# Charset helpers


def test_declared_charset_uses_browser_supersets_and_ignores_unknown_labels():
    assert declared_charset("text/html; charset=UTF-8") == "utf-8"
    assert declared_charset('text/html; charset="ISO-8859-1"') == "cp1252"  # as browsers decode it
    assert declared_charset("text/html; charset=x-no-such-codec") is None
    assert declared_charset("text/html") is None


def test_meta_charset_reads_both_meta_forms_within_the_first_4kb():
    assert meta_charset(b'<html><head><meta charset="windows-1251">') == "cp1251"
    assert meta_charset(b'<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=Shift_JIS">') == "cp932"
    assert meta_charset(b"<META HTTP-EQUIV='CHARSET' CONTENT='EUC-JP'>") == "euc_jp"
    assert meta_charset(b" " * 5000 + b'<meta charset="koi8-r">') is None
    # A <meta> readable as ASCII means the page is not really UTF-16.
    assert meta_charset(b'<meta charset="utf-16">') == "utf-8"


def test_charset_order_is_bom_then_header_then_meta_then_detection():
    body = b'<meta charset="koi8-r"><p>' + RUSSIAN.encode("cp1251")
    assert choose_charset("text/html; charset=windows-1251", body) == "cp1251"
    assert choose_charset("text/html", body) == "koi8-r"
    assert choose_charset("text/html", b"\xef\xbb\xbf<p>x</p>") == "utf-8-sig"
    assert detect_charset("<p>déjà vu</p>".encode()) == "utf-8"
    undeclared = ("<p>" + RUSSIAN + "</p>").encode("cp1251")
    assert undeclared.decode(choose_charset("text/html", undeclared)) == "<p>" + RUSSIAN + "</p>"


# ---------------------------------------------------------------------------------------------
# Synthetic WARC / WET files


def test_warc_records_become_documents_drops_or_skip_counts(tmp_path):
    page = "<html><body><p>Привет, мир</p></body></html>"
    warc = write_warc(tmp_path / "crawl.warc.gz", [
        ("request", "https://example.org/a", b"", StatusAndHeaders("GET /a", [], protocol="HTTP/1.1"), None),
        ("response", "https://example.org/a", page.encode("utf-8"),
         http_response("200 OK", "text/html; charset=utf-8"), None),
        ("response", "https://example.org/cp1251", page.encode("cp1251"),
         http_response("200 OK", "text/html; charset=windows-1251"), None),
        ("response", "https://example.org/logo.png", b"\x89PNG....",
         http_response("200 OK", "image/png"), None),
        ("response", "https://example.org/missing", b"<html>not found</html>",
         http_response("404 Not Found", "text/html"), None),
        ("response", "https://example.org/empty", b"", http_response("200 OK", "text/html"), None),
        ("response", "https://example.org/big", b"<p>" + b"x" * 5000 + b"</p>",
         http_response("200 OK", "text/html"), None),
        ("metadata", "https://example.org/a", b"fetchTimeMs: 12\r\n", None, "application/warc-fields"),
        ("resource", "https://example.org/r", b"<html>resource</html>", None, "text/html"),
    ])
    def check_documents(documents):
        assert sorted(doc["url"] for doc in documents) == ["https://example.org/a", "https://example.org/cp1251"]
        for doc in documents:
            assert doc["text"] == ""
            assert doc["html"] == page  # same page whether sent as UTF-8 or as windows-1251
            assert doc["source"] == "commoncrawl"
            assert re.fullmatch(r"commoncrawl:[0-9a-f-]{36}", doc["id"])
            assert "urn:uuid:" + doc["id"].removeprefix("commoncrawl:") == doc["meta"]["warc_record_id"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]+Z", doc["meta"]["warc_date"])

    def check_drops(drops):
        assert sorted(drop["reason"] for drop in drops) == ["empty", "http_status", "page_too_large"]
        for drop in drops:
            assert drop["stage"] == "read" and drop["id"].startswith("commoncrawl:")

    counters = run_read([warc], check_documents, check_drops, Options(max_page_bytes=1000))
    assert counters["skipped.request"] == 1
    assert counters["skipped.warcinfo"] == 1
    assert counters["skipped.metadata"] == 1
    assert counters["skipped.resource"] == 1
    assert counters["skipped.non_html_response"] == 1


def test_wet_conversion_records_carry_text_and_no_html(tmp_path):
    wet = write_warc(tmp_path / "crawl.warc.wet.gz", [
        ("conversion", "<https://example.org/a>", "Première ligne\nSecond line".encode(), None, "text/plain"),
        ("conversion", "https://example.org/blank", b"  \n", None, "text/plain"),
    ])
    documents, drops = direct_read(wet)
    assert [(doc["url"], doc["text"]) for doc in documents] == [
        ("https://example.org/a", "Première ligne\nSecond line")]
    assert "html" not in documents[0]
    assert [drop["reason"] for drop in drops] == ["empty"]


def test_uncompressed_warc_and_wget_style_bracketed_uris(tmp_path):
    warc = write_warc(tmp_path / "plain.warc", [
        ("response", "<https://example.org/x>", b"<p>hello</p>", http_response("200 OK", "text/html"), None),
    ], gzip=False)
    documents, drops = direct_read(warc)
    assert [doc["url"] for doc in documents] == ["https://example.org/x"] and drops == []


def _gzip_members(data: bytes) -> list[bytes]:
    members, position = [], 0
    while position < len(data):
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        decompressor.decompress(data[position:])
        end = len(data) - len(decompressor.unused_data)
        members.append(data[position:end])
        position = end
    return members


def _with_content_length(record: bytes, delta: int) -> bytes:
    """The record with its WARC Content-Length changed by `delta` (the payload left as it is)."""
    length = re.search(rb"Content-Length: (\d+)", record)
    return record[:length.start(1)] + str(int(length.group(1)) + delta).encode() + record[length.end(1):]


GZIP_DAMAGES = {
    # name: (what it does to the members [warcinfo, r0 ... r5], the responses it costs)
    "garbage_member": (lambda m: m[:3] + [gzip.compress(b"not a WARC record\r\n\r\n")] + m[3:], []),
    "raw_garbage": (lambda m: m[:3] + [b"\x00 not gzip at all \xff" * 20] + m[3:], []),
    "bad_deflate": (lambda m: m[:3] + [m[3][:40] + bytes([m[3][40] ^ 0x55]) + m[3][41:]] + m[4:], [2]),
    "bad_crc": (lambda m: m[:3] + [m[3][:-8] + bytes(4) + m[3][-4:]] + m[4:], [2]),
    "short_content_length": (
        lambda m: m[:3] + [gzip.compress(_with_content_length(gzip.decompress(m[3]), -10))] + m[4:], [2]),
    "truncated_tail": (lambda m: m[:6] + [m[6][: len(m[6]) // 2]], [5]),
    "two_regions": (lambda m: m[:2] + [b"junk" * 50] + m[2:5] + [m[5][:-8] + bytes(4) + m[5][-4:]] + m[6:],
                    [4]),
}


def _responses(count: int) -> list[tuple]:
    return [("response", f"https://example.org/{n}", b"<p>page %d</p>" % n * 50,
             http_response("200 OK", "text/html"), None) for n in range(count)]


def _read_damaged(path, originals: list[bytes], damage, lost: list[int]):
    """Write the damaged records to `path` and read it: the responses not `lost` must all come out.
    Returns (the file's parts, their offsets, the indices of the parts that are not an original, drops)."""
    parts = damage(originals)
    path.write_bytes(b"".join(parts))
    offsets = [sum(len(part) for part in parts[:n]) for n in range(len(parts) + 1)]
    bad = [n for n, part in enumerate(parts) if part not in originals]
    documents, drops = direct_read(path)
    assert [doc["url"] for doc in documents] == [f"https://example.org/{n}" for n in range(6)
                                                 if n not in lost]
    return parts, offsets, bad, documents, drops


@pytest.mark.parametrize("damage", sorted(GZIP_DAMAGES))
def test_a_corrupt_gzip_record_costs_only_itself(tmp_path, damage):
    good = write_warc(tmp_path / "good.warc.gz", _responses(6))
    members = _gzip_members(good.read_bytes())  # warcinfo + 6 responses, one gzip member each
    broken = tmp_path / "broken.warc.gz"
    parts, offsets, bad, documents, drops = _read_damaged(broken, members, *GZIP_DAMAGES[damage])
    # the damaged regions: the parts that are not an original member
    expected_regions = [(offsets[n], "the end" if n == len(parts) - 1 else f"byte {offsets[n + 1]}")
                        for n in bad]
    assert [(drop["reason"], drop["id"]) for drop in drops] == [
        ("corrupt_record", f"commoncrawl:broken.warc.gz@{start}") for start, _ in expected_regions]
    for drop, (start, stop) in zip(drops, expected_regions, strict=True):
        assert f"bytes {start} to {stop} hold no readable record" in drop["detail"]
    # the documents after a damaged region still point at their own gzip member
    for document in documents:
        at = zlib.decompressobj(31).decompress(broken.read_bytes()[document["meta"]["offset"]:])
        assert document["meta"]["warc_record_id"].encode() in at[:1000]


PLAIN_DAMAGES = {
    # name: (what it does to the records [warcinfo, r0 ... r5], the responses it costs)
    "garbage_line": (lambda r: r[:3] + [b"this line is no WARC record\r\n\r\n"] + r[3:], []),
    "long_content_length": (lambda r: r[:3] + [_with_content_length(r[3], 40)] + r[4:], [2]),
    "no_content_length": (lambda r: r[:3] + [r[3].replace(b"Content-Length", b"Content-Lenght", 1)] + r[4:],
                          [2]),
    "truncated_tail": (lambda r: r[:6] + [r[6][: len(r[6]) // 2]], [5]),
    "truncated_in_headers": (lambda r: r[:6] + [r[6][:100]], [5]),
}


@pytest.mark.parametrize("damage", sorted(PLAIN_DAMAGES))
def test_a_corrupt_plain_record_costs_only_itself(tmp_path, damage):
    good = write_warc(tmp_path / "good.warc", _responses(6), gzip=False).read_bytes()
    starts = [m.start() for m in re.finditer(rb"WARC/1\.[01]\r\n", good)]
    records = [good[a:b] for a, b in zip(starts, starts[1:] + [len(good)], strict=True)]
    parts, offsets, bad, documents, drops = _read_damaged(tmp_path / "broken.warc", records,
                                                          *PLAIN_DAMAGES[damage])
    assert [(drop["reason"], drop["id"]) for drop in drops] == [
        ("corrupt_record", f"commoncrawl:broken.warc@{offsets[n]}") for n in bad]
    stop = "the end" if bad[-1] == len(parts) - 1 else f"byte {offsets[bad[-1] + 1]}"
    assert f"bytes {offsets[bad[-1]]} to {stop} hold no readable record" in drops[-1]["detail"]
    if damage.startswith("truncated"):
        assert "truncated" in drops[-1]["detail"]


def test_corrupt_records_in_a_pipeline_are_counted_drops(tmp_path):
    good = write_warc(tmp_path / "good.warc.gz", _responses(3))
    members = _gzip_members(good.read_bytes())
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(b"".join(members[:2]) + gzip.compress(b"not a WARC record\r\n\r\n") + members[2]
                       + members[3][: len(members[3]) // 2])
    counters = run_read(
        [broken],
        lambda documents: equal_to(["https://example.org/0", "https://example.org/1"])(
            [doc["url"] for doc in documents]),
        lambda drops: equal_to(["corrupt_record", "corrupt_record"])([drop["reason"] for drop in drops]),
        namespace="commoncrawl.read",
    )
    assert counters["dropped.corrupt_record"] == 2 and counters["documents"] == 2


# ---------------------------------------------------------------------------------------------
# Real samples


def _html_response_count(path: Path) -> int:
    count = 0
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response" and record.http_headers:
                mime = (record.http_headers.get_header("Content-Type") or "").split(";")[0].strip().lower()
                count += mime in commoncrawl.HTML_MIME_TYPES
    return count


def test_real_samples_parse_with_one_document_per_html_response(realdata):
    files = sorted((realdata / "commoncrawl").glob("*.warc*"))
    assert len(files) >= 6
    for path in files:
        documents, drops = direct_read(path)
        assert drops == [], path.name
        if ".wet" in path.name:
            assert documents and all(doc["text"].strip() and "html" not in doc for doc in documents)
        else:
            assert len(documents) == _html_response_count(path), path.name
        for doc in documents:
            assert not doc["url"].startswith("<") and not doc["url"].endswith(">")
            assert doc["meta"]["warc_record_id"] and doc["meta"]["warc_date"]
        assert len({doc["id"] for doc in documents}) == len(documents)


def test_real_wget_warc_has_bracketed_uris_stripped(realdata):
    documents, _ = direct_read(realdata / "commoncrawl" / "dolma_sample-0000.warc.gz")
    assert len(documents) == 22
    assert all(doc["url"].startswith("https://") for doc in documents)


def test_real_clueweb_euc_jp_pages_decode_to_japanese_and_keep_bad_dates(realdata):
    path = realdata / "commoncrawl" / "resiliparse_clueweb-quirk.warc.gz"
    with open(path, "rb") as stream:
        headers = [record.rec_headers for record in ArchiveIterator(stream) if record.rec_type == "response"]
    raw_dates = {h.get_header("WARC-Record-ID").strip("<>"): h.get_header("WARC-Date") for h in headers}
    documents, _ = direct_read(path)
    assert len(documents) == len(raw_dates) == 29
    for doc in documents:
        assert doc["meta"]["charset"] == "euc_jp"
        japanese = re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", doc["html"])
        assert len(japanese) > 200
        assert doc["html"].count("\ufffd") < 5
        assert doc["meta"]["warc_date"] == raw_dates[doc["meta"]["warc_record_id"]]  # kept although invalid


def test_real_chunked_response_body_is_dechunked(realdata):
    documents, _ = direct_read(realdata / "commoncrawl" / "warcio_example-iana.org-chunked.warc")
    assert len(documents) == 1
    html = documents[0]["html"]
    assert html.lstrip().lower().startswith("<!doctype html")
    assert html.rstrip().endswith("</html>")
    assert not re.search(r"\r\n[0-9a-fA-F]{1,6}\r\n", html)  # no chunk-size lines left in the page


# ---------------------------------------------------------------------------------------------
# Plain WET, splitting uncompressed WARC files at records, provenance


def many_responses(count: int) -> list[tuple]:
    records = []
    for n in range(count):
        url = f"https://example.org/page/{n}"
        request = StatusAndHeaders(f"GET /page/{n}", [], protocol="HTTP/1.1")
        records.append(("request", url, b"", request, None))
        status = "404 Not Found" if n % 13 == 4 else "200 OK"
        body = f"<html><body><p>Page {n}. ".encode() + b"text " * (n % 50) + b"</p></body></html>"
        records.append(("response", url, body, http_response(status, "text/html; charset=utf-8"), None))
    return records


def test_plain_wet_file_is_read(tmp_path):
    wet = write_warc(tmp_path / "CC-MAIN-x.warc.wet", [
        ("conversion", "https://example.org/a", "Texte à la ligne\nligne 2".encode(), None, "text/plain"),
        ("conversion", "https://example.org/b", b"Second page", None, "text/plain"),
    ], gzip=False)
    documents, drops = direct_read(wet)
    assert [(doc["url"], doc["text"]) for doc in documents] == [
        ("https://example.org/a", "Texte à la ligne\nligne 2"), ("https://example.org/b", "Second page")]
    assert drops == []


def test_uncompressed_warc_is_split_at_records_with_the_result_of_a_whole_read(tmp_path):
    plain = write_warc(tmp_path / "crawl.warc", many_responses(120), gzip=False)
    data = plain.read_bytes()
    splits = ReadWarcFileDoFn(Options()).plan(str(plain), len(data), split_bytes=len(data) // 9)
    assert 6 <= len(splits) <= 9
    assert [s.stop for s in splits[:-1]] == [s.start for s in splits[1:]] and splits[-1].stop is None
    assert all(data[s.start:].startswith(b"WARC/1.") for s in splits)
    # records_before counts the records (warcinfo included) before each part
    assert [s.records_before for s in splits] == [data[:s.start].count(b"WARC/1.") for s in splits]

    expected_documents, expected_drops = direct_read(plain)  # a path: the whole file
    assert len(expected_documents) == 120 - 9 and len(expected_drops) == 9  # 404s

    def same_documents(documents):
        assert sorted(documents, key=lambda d: d["id"]) == sorted(expected_documents, key=lambda d: d["id"])

    def same_drops(drops):
        assert sorted(d["id"] for d in drops) == sorted(d["id"] for d in expected_drops)

    run_read([plain], same_documents, same_drops, Options(split_bytes=len(data) // 9))


def test_provenance_offset_is_where_the_record_starts(tmp_path):
    records = many_responses(30)
    for path in (write_warc(tmp_path / "a.warc.gz", records),
                 write_warc(tmp_path / "a.warc", records, gzip=False)):
        data = path.read_bytes()
        documents, _ = direct_read(path)
        assert len(documents) == 28  # 30 responses, 2 of them 404s
        for document in documents:
            meta = document["meta"]
            assert meta["source_file"] == str(path)
            at = data[meta["offset"]:]
            if path.suffix == ".gz":  # a gzip member starts there: Common Crawl's index offsets
                at = zlib.decompressobj(31).decompress(at[:100_000])
            assert at.startswith(b"WARC/1.") and meta["warc_record_id"].encode() in at[:1000]
