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

Corrupt records. A record is released only once it has been read whole: its gzip member inflated
to the end with a good CRC (this reader inflates, member by member; warcio parses the decompressed
record), its Content-Length all there, and a blank line after it. A record that fails any of this
costs only itself: reading resumes at the next record, and the bytes in between are one drop
(`corrupt_record`, detail: byte range and cause). In a .warc.gz the next record is the end of the bad
member when its gzip data is sound, else the next gzip header whose member inflates to `WARC/1.`
(the caveat above holds for this search: after a damaged member whose payload is itself a .warc.gz,
reading can resume inside that payload). In a plain file it is the next line `WARC/1.0` or
`WARC/1.1`.

Why not FastWARC (issue 28; FastWARC 2.0.1, which resiliparse brings): it parses 6x faster (2.2
against 14.2 ms CPU for the 48 records of the real `dolma_sample-0000.warc.gz`, ours including charset
detection and the documents), but with one gzip member damaged in the middle of that file its iterator
raises `OSError: Gzip decompression error` after 24 records and the other 23 are lost, where this
reader drops the one bad record and reads on. The guarantee above is the reader's first job; and WARC
parsing is about 4% of the CommonCrawl path's CPU (`benchmarks/cc_profile.py`), so the most FastWARC
could give is that. (Parsing each member this reader has inflated with FastWARC instead of warcio would
keep the guarantee; not measured yet.)

Provenance: meta `source_file`, `offset` (of the record in the file; for .warc.gz the offset of its
gzip member, as in Common Crawl's own index) and `warc_record_id`.
"""

from __future__ import annotations

import codecs
import io
import itertools
import re
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO

import apache_beam as beam
from charset_normalizer import from_bytes
from warcio.bufferedreaders import BufferedReader
from warcio.recordloader import ArcWarcRecordLoader

from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.plumbing.names import READ_STAGE
from llamapipe.sources.reading import (
    FileSplit,
    RangeReader,
    ReadFileDoFn,
    ReadSourceFiles,
    SourceOptions,
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


# ---------------------------------------------------------------------------------------------
# Reading records whole, and resuming after a corrupt one


class CorruptRecord(IOError):
    """A record that cannot be read whole: bad or cut gzip data, a bad header, a wrong Content-Length."""


@dataclass(frozen=True)
class CorruptRegion:
    """Bytes [start, stop) of the file that held no readable record; stop None: to the end."""

    start: int
    stop: int | None
    cause: str


GZIP_MEMBER_MAGIC = re.compile(re.escape(b"\x1f\x8b\x08"))  # gzip id bytes + deflate method
WARC_VERSION_LINE = re.compile(rb"\nWARC/1\.[01]\r?\n")  # a record's first line, after a line end
INFLATE_INPUT_BYTES = 16 * 1024  # as warcio: what one member reads past its end is at most this
SCAN_WINDOW_BYTES = 1024 * 1024
SCAN_OVERLAP_BYTES = 16  # longer than either pattern, so a match cut by a window edge is found


class RawFeed:
    """Sequential reads of the bytes [start, stop) of a seekable stream. Inflating one gzip member
    reads past its end; those bytes (the next member's start) are pushed back with `unread`."""

    def __init__(self, raw: BinaryIO, start: int, stop: int | None):
        self._raw = raw
        self._stop = stop
        self.seek(start)

    def seek(self, offset: int) -> None:
        self._raw.seek(offset)
        self.offset = offset  # of the next byte `read` returns
        self._pushed = b""

    def read(self, size: int) -> bytes:
        if self._pushed:
            data, self._pushed = self._pushed[:size], self._pushed[size:]
        else:
            if self._stop is not None:
                size = min(size, self._stop - self.offset)
            data = self._raw.read(size) if size > 0 else b""
        self.offset += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self._pushed = data + self._pushed
        self.offset -= len(data)

    def at_end(self) -> bool:
        data = self.read(1)
        self.unread(data)
        return not data


class GzipMember(io.RawIOBase):
    """The decompressed bytes of the gzip member that starts at the feed's position. End of file is
    exactly the member's end, reached only once its CRC and length have been checked; bad deflate
    data, a bad trailer or a member cut short raise CorruptRecord. (warcio, left to inflate, prints
    a zlib error and carries on, which would pass a damaged record off as a good one.)"""

    def __init__(self, feed: RawFeed):
        self._feed = feed
        self.start = feed.offset
        self.end: int | None = None  # set once the member has been inflated to its end
        self._inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        self._input = b""
        self._error: CorruptRecord | None = None  # once damaged, never read on: zlib's state is lost

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to `size` decompressed bytes (fewer at the member's end); b"" past it. Overrides
        RawIOBase.read, which would inflate into a scratch buffer and copy."""
        size = size if size is not None and size >= 0 else 1 << 20
        while self.end is None:
            if self._error is not None:
                raise self._error
            if not self._input:
                self._input = self._feed.read(INFLATE_INPUT_BYTES)
                if not self._input:
                    self._error = CorruptRecord(f"gzip member at byte {self.start} is cut short")
                    continue
            try:
                data = self._inflater.decompress(self._input, size)
            except zlib.error as exc:
                self._error = CorruptRecord(f"gzip member at byte {self.start}: {exc}")
                continue
            self._input = self._inflater.unconsumed_tail
            if self._inflater.eof:
                self._feed.unread(self._inflater.unused_data)  # the next member's first bytes
                self._input = b""
                self.end = self._feed.offset
            if data:
                return data
        return b""

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> int:
        """Inflate the rest of the member; its end offset (raises CorruptRecord if it is damaged)."""
        while self.read(1 << 16):
            pass
        return self.end


def scan_for(raw: BinaryIO, pattern: re.Pattern, start: int, stop: int | None, shift: int = 0,
             accept=lambda offset: True) -> int | None:
    """The first offset >= `start` (and < `stop`) where `pattern` matches, plus `shift`, that
    `accept` takes; None if there is none. Reads windows of the raw stream, not the whole region."""
    position, rejected = max(start - shift, 0), -1
    while stop is None or position < stop:
        raw.seek(position)
        wanted = SCAN_WINDOW_BYTES if stop is None else min(SCAN_WINDOW_BYTES, stop - position)
        window = raw.read(wanted)
        for match in pattern.finditer(window):
            candidate = position + match.start() + shift
            if start <= candidate and rejected < candidate and (stop is None or candidate < stop):
                if accept(candidate):
                    return candidate
                rejected = candidate
        if len(window) < wanted or len(window) <= SCAN_OVERLAP_BYTES:
            return None
        position += len(window) - SCAN_OVERLAP_BYTES
    return None


def _member_holds_warc_record(raw: BinaryIO, offset: int) -> bool:
    """Whether a gzip member starts at `offset` and inflates to a WARC record's first bytes."""
    raw.seek(offset)
    inflater = zlib.decompressobj(wbits=31)
    try:
        head = inflater.decompress(raw.read(64 * 1024), 16)
    except zlib.error:
        return False
    return head.startswith(b"WARC/1.")


class GzipFrames:
    """A .warc.gz as a run of gzip members (Common Crawl writes one record per member), each read on
    its own. After a corrupt member, reading resumes at the member's end if it inflates cleanly (a
    bad record in good gzip data), else at the next gzip member header whose data starts a WARC
    record. The records of a member that holds several (a file gzipped whole, which warcio refuses)
    all have the member's offset, and damage in one of them is a region from the member's start."""

    def __init__(self, raw: BinaryIO, start: int, stop: int | None):
        self._raw = raw
        self._stop = stop
        self._feed = RawFeed(raw, start, stop)
        self._member: GzipMember | None = None

    def open(self, position: int):
        """The decompressed stream of the member at `position`, None at the end of the file."""
        if self._feed.offset != position:  # after a resync; in order, the feed is already there
            self._feed.seek(position)
        if self._feed.at_end():
            return None
        self._member = GzipMember(self._feed)
        return BufferedReader(self._member)  # warcio's line reader; no decompression of its own

    def record_offset(self, reader: BufferedReader, first_line: bytes) -> int:
        return self._member.start  # Common Crawl's index offsets are those of the gzip members

    def end(self) -> int:
        """Where the next member starts (warcio has read this one to its end: nothing is left)."""
        return self._member.drain()

    def resume_after(self, bad: int) -> int | None:
        try:
            return self._member.drain()
        except CorruptRecord:
            found = scan_for(self._raw, GZIP_MEMBER_MAGIC, bad + 1, self._stop,
                             accept=lambda offset: _member_holds_warc_record(self._raw, offset))
            if found is not None:
                self._feed.seek(found)  # the scan moved the file position under the feed
            return found


class _OpenRangeReader(RangeReader):
    """A RangeReader that leaves the file open when it is closed: after a resync, the file is read on
    from another position, with a new reader."""

    def close(self) -> None:
        io.RawIOBase.close(self)


class PlainFrames:
    """An uncompressed WARC (or a part of one), read by warcio from a position to the part's end.
    After a corrupt record, reading resumes at the next line that starts a WARC record."""

    def __init__(self, raw: BinaryIO, start: int, stop: int | None):
        self._raw = raw
        self._stop = stop
        self._base = start

    def open(self, position: int):
        if self._stop is not None and position >= self._stop:
            return None
        self._raw.seek(position)
        if not self._raw.read(1):
            return None
        self._base = position
        if self._stop is None:  # to the end of the file: the file itself (measured ~10% faster)
            self._raw.seek(position)
            return BufferedReader(self._raw)
        return BufferedReader(_OpenRangeReader(self._raw, position, self._stop))

    def record_offset(self, reader: BufferedReader, first_line: bytes) -> int:
        """Where the record whose first line was just read starts: warcio's reader has read `tell()`
        bytes of the stream, of which `rem_length()` are still in its buffer."""
        return self._base + reader.tell() - reader.rem_length() - len(first_line)

    def end(self) -> None:
        return None  # the stream ran to the part's end

    def resume_after(self, bad: int) -> int | None:
        return scan_for(self._raw, WARC_VERSION_LINE, bad + 1, self._stop, shift=1)


def _is_gzipped(path: str, raw: BinaryIO, start: int) -> bool:
    """Whether to read member by member: a file that starts with a gzip header, or a .warc.gz that
    does not start with a plain record (its first member may be the damaged one). warcio also goes
    by the bytes, not the name."""
    raw.seek(start)
    head = raw.read(5)
    return head.startswith(b"\x1f\x8b") or (path.lower().endswith(".gz") and head != b"WARC/")


def _content_length(record) -> int | None:
    try:
        length = int((record.rec_headers.get_header("Content-Length") or "").strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def _read_to_end(record) -> None:
    """Read the rest of the record's block; raise CorruptRecord if it ends before its Content-Length
    (a cut file: warcio would return a short record without a word). Relies on warcio's LimitReader
    `limit`, what is left of the Content-Length: if that changes, the check does nothing."""
    while record.raw_stream.read(1 << 16):
        pass
    missing = getattr(record.raw_stream, "limit", 0)
    if missing:
        raise CorruptRecord(f"record ends {missing} bytes before its Content-Length (truncated)")


def _next_record_line(reader: BufferedReader, line: bytes) -> bytes:
    """The first line that is not blank from `line` on (blank lines separate records); b"" at the end."""
    while line and not line.strip():
        line = reader.readline()
    return line


def _parse_record(loader: ArcWarcRecordLoader, reader: BufferedReader, first_line: bytes):
    """warcio's record (headers parsed, block still to read) whose first line was just read."""
    try:
        # known_format="warc": a garbage line that happens to look like an ARC header is no record
        return loader.parse_record_stream(reader, first_line, known_format="warc")
    except CorruptRecord:
        raise
    except Exception as exc:
        # warcio fails on headers cut by the end of the file with a bare EOFError or an AttributeError
        if not reader.read(1):
            raise CorruptRecord("the file ends inside the record's headers (truncated)") from exc
        raise


def read_records(frames, start: int, handle) -> Iterator:
    """Every record of a WARC (part) through `handle(record, offset)`, which returns its outputs;
    a CorruptRegion in place of each run of bytes that holds no readable record.

    warcio parses each record (`ArcWarcRecordLoader`, as its ArchiveIterator does) from a stream the
    frames give; the loop around it is ours, because ArchiveIterator lets damage pass: a record that
    is not followed by a blank line (a wrong Content-Length) is only a message on stderr, after which
    the next record is parsed from the wrong place. (Setting one up per gzip member also cost ~18 us
    per record on the demo corpus, a quarter of the read.)

    A record's outputs are released only once it has been read whole, its separator checked and, in
    a .warc.gz, its member inflated to the end with a good CRC: a record found damaged after its
    payload was read leaves nothing but its region. Good records before and after it are all read."""
    loader = ArcWarcRecordLoader(verify_http=False, arc2warc=False)  # as ArchiveIterator
    position = start
    while position is not None:
        reader = frames.open(position)
        if reader is None:
            return
        current = position
        try:
            line = _next_record_line(reader, reader.readline())
            while line:
                current = frames.record_offset(reader, line)
                record = _parse_record(loader, reader, line)
                if _content_length(record) is None:
                    raise CorruptRecord("no valid Content-Length")
                outputs = list(handle(record, current))
                _read_to_end(record)
                line = reader.readline()
                if line.strip():
                    raise CorruptRecord("record not followed by a blank line (wrong Content-Length?)")
                line = _next_record_line(reader, line)
                yield from outputs
            position = frames.end()
        except Exception as exc:  # noqa: BLE001 - whatever breaks on one record costs that record only
            position = frames.resume_after(current)
            yield CorruptRegion(current, position, f"{type(exc).__name__}: {exc}")


class ReadWarcFileDoFn(ReadFileDoFn):
    """One WARC/WET file -> HTML-page and extracted-text documents, plus drops."""

    source = SOURCE

    def __init__(self, options: Options):
        super().__init__()
        self._max_page_bytes = options.max_page_bytes

    def plan(self, path: str, size: int, split_bytes: int) -> list[FileSplit]:
        return plan_warc_splits(path, size, split_bytes)

    def read_split(self, split: FileSplit) -> Iterator:
        # Records are inflated here, member by member (see GzipMember), and warcio parses each one
        # from the decompressed bytes; the file is opened raw, without open_input's gzip layer.
        with closing(open_raw(split.path)) as raw:
            frames_class = GzipFrames if _is_gzipped(split.path, raw, split.start) else PlainFrames
            numbers = itertools.count(split.records_before)  # a corrupt region counts as one record

            def handle(record, offset: int) -> Iterator:
                return self._record(record, split.path, next(numbers), provenance(split.path, offset=offset))

            for item in read_records(frames_class(raw, split.start, split.stop), split.start, handle):
                if isinstance(item, CorruptRegion):
                    next(numbers)
                    yield self._corrupt(item, split.path)
                else:
                    yield item

    def _record(self, record, path: str, number: int, where: dict) -> Iterator:
        kind = record.rec_type
        if kind == "response":
            yield from self._response(record, path, number, where)
        elif kind == "conversion":
            yield from self._conversion(record, path, number, where)
        else:
            self._skip(_kind_label(kind))

    @staticmethod
    def _corrupt(region: CorruptRegion, path: str):
        stop = "the end" if region.stop is None else f"byte {region.stop}"
        return drop(SOURCE, READ_STAGE, "corrupt_record", f"{SOURCE}:{short_name(path)}@{region.start}",
                    f"{path} bytes {region.start} to {stop} hold no readable record: {region.cause}")

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
            return None, drop(SOURCE, READ_STAGE, "page_too_large", doc_id,
                              f"payload exceeds {self._max_page_bytes} bytes")
        if not body.strip():
            return None, drop(SOURCE, READ_STAGE, "empty", doc_id, "empty payload")
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
                yield drop(SOURCE, READ_STAGE, "http_status", doc_id, f"HTTP status {status or 'missing'}")
                return
        body, refused = self._payload(record, doc_id)
        if refused is not None:
            yield refused
            return
        html, charset = decode_html(body, content_type)
        url = target_url(record.rec_headers.get_header("WARC-Target-URI"))
        document = make_document(SOURCE, doc_id, "", url, charset=charset, **meta)
        document["html"] = html
        yield document

    def _conversion(self, record, path: str, number: int, where: dict) -> Iterator:
        doc_id, meta = self._identity(record, path, number, where)
        body, refused = self._payload(record, doc_id)
        if refused is not None:
            yield refused
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
