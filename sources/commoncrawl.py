"""CommonCrawl reader: WARC files (raw HTML responses) and WET files (text Common Crawl extracted).

WARC `response` records with an HTML payload become documents with `text=""` and the decoded page in
an extra `html` key (the extraction stage turns it into text); WET `conversion` records become
documents with `text` set. Every other record (request, metadata, warcinfo, revisit, resource,
non-HTML responses) is not a document: it is only counted as `skipped.<kind>`. Plain `.warc`/`.wet`
files are read as well as gzipped ones.

Splitting big files. Uncompressed WARC/WET files above `split_bytes` are split at record offsets: a
planning pass reads each record's header and seeks over its payload (a few KB read per record), so
parts start exactly at records and know how many records come before them. Measured on the demo
corpus' records (44 MB, 9.6k small records): planning 0.08 s against 0.47 s to read the file; real
Common Crawl records are several times larger, so the share is smaller still.

`.warc.gz` files are read whole, on purpose. Common Crawl writes one gzip member per record, but
member boundaries are not recorded in the file: finding them means inflating everything. Measured on
the demo corpus (`benchmarks/readers.py`, 19 MB .warc.gz, 9.6k members, one core): inflating to find
the members takes 0.35 s, reading the file takes 0.70 s, so a planning pass would cost half a read,
serially, before any part could start, for at best a 2x gain on that file. Common Crawl instead
publishes many files of ~1 GB (tens of thousands per crawl: e.g. 64-100k in the 2017-2020 crawls),
so per-file parallelism already keeps every worker busy. (Jumping to a guessed offset and searching
for the next gzip header is not safe either: a record whose payload is itself a small .warc.gz, stored
verbatim by deflate, holds valid-looking members.)

Provenance: meta `source_file`, `offset` (of the record in the file; for .warc.gz the offset of its
gzip member, as in Common Crawl's own index) and `warc_record_id`.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO

import apache_beam as beam
from charset_normalizer import from_bytes
from warcio.archiveiterator import ArchiveIterator

from llamapipe.sources.base import (
    FileSplit,
    RangeReader,
    ReadFileDoFn,
    ReadSourceFiles,
    SourceOptions,
    dropped,
    is_compressed,
    make_document,
    open_raw,
    provenance,
    short_name,
)

SOURCE = "commoncrawl"

HTML_MIME_TYPES = frozenset({"text/html", "application/xhtml+xml"})

# Where a page does not declare its charset in the HTTP header, browsers look for <meta> in the
# first 1024 bytes; real pages put long scripts first, so we look a little further.
META_SNIFF_BYTES = 4096
DETECTION_SAMPLE_BYTES = 64 * 1024

# WHATWG encoding standard: browsers decode these labels with a superset codec, and pages labelled
# with them rely on that (e.g. "iso-8859-1" pages full of cp1252 curly quotes).
BROWSER_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "tis-620": "cp874",
}

BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
# <meta charset="x">, <meta http-equiv="Content-Type" content="text/html; charset=x">, and the
# old <meta http-equiv="charset" content="x"> (seen in the ClueWeb09 Japanese pages).
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE
)
_META_HTTP_EQUIV_CHARSET = re.compile(
    rb"""<meta\b[^>]*?http-equiv\s*=\s*["']?charset["']?[^>]*?\bcontent\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""",
    re.IGNORECASE,
)


@dataclass
class Options(SourceOptions):
    # Pages above this size are dropped unread: real articles are far smaller, and multi-megabyte
    # bodies are mostly data dumps that would only slow extraction down.
    max_page_bytes: int = 5_000_000


# ---------------------------------------------------------------------------------------------
# Charset handling (pure helpers)


def codec_name(label: str | None) -> str | None:
    """Python codec for a charset label as found in the wild, or None when Python does not know it."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None
    return BROWSER_SUPERSETS.get(name, name)


def declared_charset(content_type: str | None) -> str | None:
    """Codec named by the `charset=` parameter of a Content-Type header."""
    match = _CHARSET_PARAM.search(content_type or "")
    return codec_name(match.group(1)) if match else None


def meta_charset(head: bytes) -> str | None:
    """Codec declared by a <meta> tag in the first bytes of an HTML page."""
    head = head[:META_SNIFF_BYTES]
    match = _META_CHARSET.search(head) or _META_HTTP_EQUIV_CHARSET.search(head)
    if not match:
        return None
    name = codec_name(match.group(1).decode("ascii", "replace"))
    # A <meta> we could read as ASCII cannot be in UTF-16/32: browsers read such pages as UTF-8.
    if name and name.startswith(("utf-16", "utf-32", "utf_16", "utf_32")):
        return "utf-8"
    return name


def detect_charset(body: bytes) -> str | None:
    """Guess the codec of an undeclared page: valid UTF-8 first (cheap, and by far the most common),
    then a statistical guess on a sample."""
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(body[:DETECTION_SAMPLE_BYTES]).best()
    return codec_name(best.encoding) if best is not None else None


def choose_charset(content_type: str | None, body: bytes) -> str:
    """Charset in browser order: byte-order mark, HTTP header, <meta>, detection, else UTF-8."""
    for bom, name in BOMS:
        if body.startswith(bom):
            return name
    return declared_charset(content_type) or meta_charset(body) or detect_charset(body) or "utf-8"


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(page text, codec used). Undecodable bytes become U+FFFD rather than failing the page."""
    charset = choose_charset(content_type, body)
    return body.decode(charset, errors="replace"), charset


# ---------------------------------------------------------------------------------------------
# WARC record helpers


def record_id(raw_id: str | None) -> str:
    """`<urn:uuid:...>` -> `urn:uuid:...`."""
    return (raw_id or "").strip().strip("<>").strip()


def target_url(raw_uri: str | None) -> str:
    """WARC-Target-URI without the angle brackets GNU Wget (and the WARC 1.0 spec's example) put around it."""
    return (raw_uri or "").strip().strip("<>").strip()


def mime_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def read_at_most(stream: BinaryIO, limit: int) -> bytes:
    """Read up to `limit` bytes (fewer only at the end of the stream)."""
    chunks = []
    remaining = limit
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class TruncatedArchiveError(IOError):
    pass


class CheckedArchiveIterator(ArchiveIterator):
    """ArchiveIterator that notices a gzip file cut off mid-member (an interrupted download).

    warcio silently ends iteration there, losing the last records without a trace; we raise instead,
    so the reader records the rest of the file as one drop. Relies on warcio's reader internals and
    does nothing if they change.
    """

    truncated = False

    def close(self):
        reader = getattr(self, "reader", None)
        decompressor = getattr(reader, "decompressor", None)
        if decompressor is not None and getattr(reader, "num_read", 0) > 0:
            self.truncated = not getattr(decompressor, "eof", True)
        super().close()


MAX_WARC_HEADER_BYTES = 1024 * 1024
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def _record_header(raw: BinaryIO, offset: int) -> bytes:
    """The header block (up to and including the blank line) of the WARC record at `offset`."""
    raw.seek(offset)
    block = b""
    while len(block) < MAX_WARC_HEADER_BYTES:
        chunk = raw.read(4096)
        if not chunk:
            break
        block += chunk
        end = block.find(b"\r\n\r\n")
        end = end + 4 if end >= 0 else -1
        if end < 0:
            end = block.find(b"\n\n")  # WARC files written with bare newlines
            end = end + 2 if end >= 0 else -1
        if end >= 0:
            return block[:end]
    raise ValueError(f"no WARC header end within {MAX_WARC_HEADER_BYTES} bytes at byte {offset}")


def _skip_newlines(raw: BinaryIO, offset: int) -> int:
    """The offset of the first byte at or after `offset` that is not CR or LF (the record separator)."""
    while True:
        raw.seek(offset)
        chunk = raw.read(64)
        stripped = chunk.lstrip(b"\r\n")
        offset += len(chunk) - len(stripped)
        if stripped or not chunk:
            return offset


def plan_warc_splits(path: str, size: int, split_bytes: int) -> list[FileSplit]:
    """Parts of about `split_bytes` of an uncompressed WARC file, each starting at a record.

    Walks the records by their Content-Length, reading headers only. Raises on anything that is not
    a well-formed record sequence (the file is then read whole, where warcio decides)."""
    if is_compressed(path) or size <= split_bytes or split_bytes <= 0:
        return [FileSplit(path)]
    splits: list[FileSplit] = []
    start, records_before_start, records = 0, 0, 0
    with closing(open_raw(path)) as raw:
        offset = _skip_newlines(raw, 0)
        while offset < size:
            header = _record_header(raw, offset)
            if not header.startswith(b"WARC/"):
                raise ValueError(f"no WARC record at byte {offset}")
            length = _CONTENT_LENGTH.search(header)
            if length is None:
                raise ValueError(f"WARC record at byte {offset} has no Content-Length")
            end = offset + len(header) + int(length.group(1))
            if end > size:
                raise ValueError(f"WARC record at byte {offset} runs past the end of the file")
            records += 1
            offset = _skip_newlines(raw, end)
            if offset - start >= split_bytes and offset < size:
                splits.append(FileSplit(path, start, offset, records_before_start))
                start, records_before_start = offset, records
    if not splits:
        return [FileSplit(path)]
    splits.append(FileSplit(path, start, None, records_before_start))
    return splits


def _kind_label(kind: str | None) -> str:
    """Record type as a metric-name-safe word (a corrupt header must not invent arbitrary metric names)."""
    label = re.sub(r"[^a-z0-9_]", "_", (kind or "unknown").lower())[:32]
    return label or "unknown"


class ReadWarcFileDoFn(ReadFileDoFn):
    """One WARC/WET file -> HTML-page and extracted-text documents, plus drops."""

    source = SOURCE

    def __init__(self, options: Options):
        super().__init__()
        self._max_page_bytes = options.max_page_bytes

    def plan(self, path: str, size: int, split_bytes: int) -> list[FileSplit]:
        return plan_warc_splits(path, size, split_bytes)

    def read_split(self, split: FileSplit) -> Iterator:
        # warcio finds gzip members and decompresses them itself (one member per record, which is how
        # it knows where records start), so the file is opened raw, without open_input's gzip layer.
        raw = open_raw(split.path)
        if not split.whole_file:
            raw = io.BufferedReader(RangeReader(raw, split.start, split.stop), buffer_size=1 << 20)
        with closing(raw):
            records = CheckedArchiveIterator(raw)
            for number, record in enumerate(records, start=split.records_before):
                # warcio's offset of the record being read (relative to the part's start)
                where = provenance(split.path, offset=split.start + records.offset)
                kind = record.rec_type
                if kind == "response":
                    yield from self._response(record, split.path, number, where)
                elif kind == "conversion":
                    yield from self._conversion(record, split.path, number, where)
                else:
                    self._skip(_kind_label(kind))
            if records.truncated:
                raise TruncatedArchiveError("gzip stream ends inside a record (truncated file)")

    def _skip(self, kind: str) -> None:
        beam.metrics.Metrics.counter(SOURCE, f"skipped.{kind}").inc()

    def _identity(self, record, path: str, number: int, where: dict) -> tuple[str, dict]:
        headers = record.rec_headers
        warc_id = record_id(headers.get_header("WARC-Record-ID"))
        # The id is the record's UUID (unique across dumps); the full `urn:uuid:` form stays in meta.
        short_id = warc_id.removeprefix("urn:uuid:")
        doc_id = f"{SOURCE}:{short_id or f'{short_name(path)}:{number}'}"
        meta = {
            "warc_record_id": warc_id or None,
            # Kept as found: real dumps have dates like '2008-10-294T05:21:46-0700' (ClueWeb09).
            "warc_date": headers.get_header("WARC-Date"),
            **where,
        }
        return doc_id, meta

    def _payload(self, record, doc_id: str):
        """The record's payload bytes, or a drop when it is too large or empty."""
        # content_stream() undoes HTTP chunked transfer-encoding and Content-Encoding (gzip, br, ...).
        body = read_at_most(record.content_stream(), self._max_page_bytes + 1)
        if len(body) > self._max_page_bytes:
            return None, dropped(SOURCE, "read", "page_too_large", doc_id,
                                 f"payload exceeds {self._max_page_bytes} bytes")
        if not body.strip():
            return None, dropped(SOURCE, "read", "empty", doc_id, "empty payload")
        return body, None

    def _response(self, record, path: str, number: int, where: dict) -> Iterator:
        http = record.http_headers
        # Common Crawl also records the type it sniffed; use it when the server sent none.
        content_type = (
            (http.get_header("Content-Type") if http else None)
            or record.rec_headers.get_header("WARC-Identified-Payload-Type")
            or ("" if http else record.content_type)
        )
        if mime_type(content_type) not in HTML_MIME_TYPES:
            self._skip("non_html_response")
            return
        doc_id, meta = self._identity(record, path, number, where)
        if http is not None:
            status = (http.get_statuscode() or "").strip()
            if not (status.isdigit() and 200 <= int(status) < 300):
                yield dropped(SOURCE, "read", "http_status", doc_id, f"HTTP status {status or 'missing'}")
                return
        body, drop = self._payload(record, doc_id)
        if drop is not None:
            yield drop
            return
        html, charset = decode_html(body, content_type)
        url = target_url(record.rec_headers.get_header("WARC-Target-URI"))
        document = make_document(SOURCE, doc_id, "", url, charset=charset, **meta)
        document["html"] = html
        yield document

    def _conversion(self, record, path: str, number: int, where: dict) -> Iterator:
        doc_id, meta = self._identity(record, path, number, where)
        body, drop = self._payload(record, doc_id)
        if drop is not None:
            yield drop
            return
        # Common Crawl writes WET text as UTF-8; honour an explicit charset if a producer sets one.
        charset = declared_charset(record.rec_headers.get_header("Content-Type")) or "utf-8"
        text = body.decode(charset, errors="replace")
        url = target_url(record.rec_headers.get_header("WARC-Target-URI"))
        yield make_document(SOURCE, doc_id, text, url, **meta)


class Read(ReadSourceFiles):
    """WARC/WET files -> {"documents": ..., "dropped": ...}."""

    dofn_class = ReadWarcFileDoFn
    step_label = "ReadWarcFiles"
