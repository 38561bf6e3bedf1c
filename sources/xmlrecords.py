"""Reading an XML dump one record at a time, so that a malformed record costs only itself.

Both XML sources are one root element holding a long run of one repeated record element: Wikipedia's
`<mediawiki>` of `<page>`s, Stack Exchange's `<posts>` of `<row/>`s. One parser over the whole file
stops at the first error and loses everything after it. Instead the byte stream is cut before every
start tag of the record element (`split_records`), and each piece is parsed on its own inside an empty
root element (`RecordParser`): a malformed piece is one drop, and reading resumes at the next record.

Why cutting at the start tag is sound: in well-formed XML a `<` is always markup (text and attribute
values must write it `&lt;`), so `<page>` can only start a page; comments and CDATA sections, where
it could appear literally, are not used around records in the dumps. A piece is one record and what
follows it up to the next record (whitespace, in a dump as written); that tail is parsed with the
record. The bytes before the first record are the *head* (XML declaration, DOCTYPE, root start tag,
Wikipedia's <siteinfo>); the root's end tag and anything after it are cut off the last piece.

Encodings: records are found by their ASCII start tag, so the bytes searched must be ASCII-compatible.
A document in UTF-16 or UTF-32 (told by its byte-order mark or, without one, by how its XML declaration
`<?xml` starts, as XML 1.0 appendix F describes) is transcoded to UTF-8 as it streams (`Utf8Reader`,
constant memory) and parsed as UTF-8; any other encoding its XML declaration names (ISO-8859-1, ...) is
handed to the parser for the head and for every record. A part of a document (a multistream dump's
stream of pages) has no declaration of its own: its reader passes the encoding found at the document's
start (`document_encoding`).

Safety: pieces are parsed by lxml with no DTD loading, no network access, no entity resolution and
libxml2's default size limits (`huge_tree` off). A DOCTYPE can only be in the head and never applies
to a record, so an external entity (XXE) or an entity bomb declared there is, in the record that uses
it, an undefined entity: a parse error and one drop. Memory is bounded by `max_record_bytes` (to
within one read of 1 MB): a longer piece is not kept (it is reported as `oversize`) while the scan
goes on to the next record.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

READ_CHUNK_BYTES = 1 << 20

# Far above a real record (a Wikipedia article is at most 2 MB of wikitext, a post 30k characters),
# small enough for a worker to hold: a file whose record never ends must not fill its memory.
DEFAULT_MAX_RECORD_BYTES = 64 * 1024**2

_XML_DECLARATION_ENCODING = re.compile(
    rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")

# XML 1.0, appendix F: the first four bytes of a document in 16- or 32-bit characters, with a byte-order
# mark, or without one then starting with its XML declaration (`<?` or, in UTF-32, `<`), and the codec
# that reads it from there (byte order explicit, the mark skipped). UTF-32 first: its little-endian mark
# starts like UTF-16's.
WIDE_STARTS: tuple[tuple[bytes, str, int], ...] = (  # (first bytes, codec, byte-order mark length)
    (codecs.BOM_UTF32_BE, "utf-32-be", 4),
    (codecs.BOM_UTF32_LE, "utf-32-le", 4),
    (b"\x00\x00\x00<", "utf-32-be", 0),
    (b"<\x00\x00\x00", "utf-32-le", 0),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (b"\x00<\x00?", "utf-16-be", 0),
    (b"<\x00?\x00", "utf-16-le", 0),
)


@dataclass(frozen=True)
class Piece:
    """A run of bytes of the stream: the head, or one record with what follows it."""

    data: bytes
    offset: int  # of its first byte, in the stream as read (decompressed)
    line: int  # line number of its first byte, from 1
    head: bool = False
    # Longer than max_record_bytes: `data` is empty, the bytes were skipped.
    oversize: bool = False
    # Reading the stream failed right after these bytes, so the record may be incomplete: a reader
    # keeps it if it parses and otherwise leaves it to the drop it records for the failed read.
    cut: bool = False


def split_records(stream: BinaryIO, tag: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                  chunk_bytes: int = READ_CHUNK_BYTES) -> Iterator[Piece]:
    """The head, then one piece per `<tag` start tag, of an XML stream; constant memory.

    The head is always yielded first (empty for a stream that starts with a record)."""
    start_tag = re.compile(b"<" + re.escape(tag.encode()) + rb"[\s/>]")
    overlap = len(tag) + 1  # a start tag cut by a chunk boundary is found in the next search
    buffer = bytearray()
    begin = 0  # where the current piece starts in `buffer`
    offset, line, head = 0, 1, True  # of the current piece
    oversize = False  # the current piece is too long: its bytes before `begin` were not kept
    skipped = skipped_newlines = 0  # how many, and their newlines
    search_from = 0

    def piece(end: int, cut: bool = False) -> Piece:
        return Piece(b"" if oversize else bytes(buffer[begin:end]), offset, line, head, oversize, cut)

    while True:
        try:
            chunk = stream.read(chunk_bytes)
        except Exception:
            yield piece(len(buffer), cut=True)
            raise
        if not chunk:
            yield piece(len(buffer))
            return
        del buffer[:begin]  # once per chunk: deleting per piece would move the buffer each time
        search_from -= begin
        begin = 0
        buffer += chunk
        while (found := start_tag.search(buffer, search_from)) is not None:
            end = found.start()
            yield piece(end)
            offset += skipped + end - begin
            line += skipped_newlines + buffer.count(b"\n", begin, end)
            begin, head, oversize, skipped, skipped_newlines = end, False, False, 0, 0
            search_from = end + 1  # past this piece's own start tag
        if len(buffer) - begin > max_record_bytes:
            # Too long to keep: forget all but the bytes a start tag could begin in.
            keep_from = len(buffer) - overlap
            skipped += keep_from - begin
            skipped_newlines += buffer.count(b"\n", begin, keep_from)
            begin = search_from = keep_from
            oversize = True
        search_from = max(search_from, len(buffer) - overlap)


def is_wide(encoding: str) -> bool:
    """UTF-16 or UTF-32: characters of 2 or 4 bytes, ASCII not readable in the raw bytes."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def wide_start(start: bytes) -> tuple[str, int] | None:
    """(codec, byte-order mark length) when the first four bytes of a document show it is in UTF-16 or
    UTF-32, else None (an ASCII-compatible encoding, named by its XML declaration if not UTF-8)."""
    for first_bytes, codec, mark_length in WIDE_STARTS:
        if start.startswith(first_bytes):
            return codec, mark_length
    return None


def declared_encoding(head: bytes) -> str | None:
    """The encoding named by the XML declaration at the start of `head` (ASCII-compatible bytes), None
    if there is none.

    Raises LookupError for an encoding Python does not know, and ValueError for UTF-16 or UTF-32 named
    in bytes that are not (such a document starts with a byte-order mark or a 16- or 32-bit `<?xml`)."""
    match = _XML_DECLARATION_ENCODING.match(head)
    if not match:
        return None
    name = match.group(1).decode("ascii")
    if is_wide(name):
        raise ValueError(f"the XML declaration names {name}, but the document's bytes are ASCII-compatible "
                         "(neither a byte-order mark nor a 16- or 32-bit '<?xml')")
    return name


def document_encoding(start: bytes) -> str | None:
    """The encoding of a document from its first bytes (at least its XML declaration): a UTF-16 or UTF-32
    codec with its byte order, else the encoding its declaration names; None for UTF-8."""
    wide = wide_start(start[:4])
    return wide[0] if wide else declared_encoding(start)


class Utf8Reader:
    """A byte stream in UTF-16 or UTF-32, read as UTF-8: decoded a chunk at a time, so memory does not
    grow with the stream. Line numbers stay those of the original; byte offsets are of the UTF-8 bytes.

    An unpaired surrogate (invalid UTF-16) goes on as bytes that are not UTF-8, so the record holding it
    fails to parse (one drop), as invalid UTF-8 does in a UTF-8 document. A stream that ends inside a
    character raises UnicodeDecodeError at its end, like a truncated file."""

    def __init__(self, stream: BinaryIO, codec: str, mark_length: int = 0, first_bytes: bytes = b""):
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder(codec)(errors="surrogatepass")
        self._pending = first_bytes[mark_length:]
        self._mark_left = max(mark_length - len(first_bytes), 0)  # of the mark, bytes still to skip
        self._out = bytearray()
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._out) < size):
            raw = self._pending or self._stream.read(READ_CHUNK_BYTES)
            self._pending = b""
            if self._mark_left and raw:
                raw, self._mark_left = raw[self._mark_left:], max(self._mark_left - len(raw), 0)
                if not raw:
                    continue
            self._ended = not raw
            self._out += self._decoder.decode(raw, final=self._ended).encode("utf-8", "surrogatepass")
        if size < 0 or size >= len(self._out):
            data, self._out = bytes(self._out), bytearray()
        else:
            data = bytes(self._out[:size])
            del self._out[:size]
        return data


class _Prefixed:
    """`first_bytes` (already read to look at them), then the rest of `stream`."""

    def __init__(self, first_bytes: bytes, stream: BinaryIO):
        self._first, self._stream = first_bytes, stream

    def read(self, size: int = -1) -> bytes:
        if not self._first:
            return self._stream.read(size)
        if 0 <= size <= len(self._first):
            data, self._first = self._first[:size], self._first[size:]
            return data
        data, self._first = self._first, b""
        return data + self._stream.read(-1 if size < 0 else size - len(data))


class MalformedRecord(ValueError):
    """A piece that does not parse; `line` is the line of the error in the whole stream."""

    def __init__(self, line: int, message: str):
        super().__init__(f"{message} (line {line})")
        self.line = line
        self.message = message


class RecordParser:
    """Parses the head and the record pieces of one XML stream with a hardened lxml parser."""

    def __init__(self, root: str, encoding: str | None = None):
        self._root = root
        self._root_end = f"</{root}".encode()
        self._self_closed_root = re.compile(b"<" + re.escape(root.encode()) + rb"\b[^<>]*/>\s*\Z")
        self._parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
            remove_comments=True, remove_pis=True, encoding=encoding,
        )

    def head_element(self, piece: Piece):
        """The root element as opened by the head (its children: e.g. <siteinfo>), or None for a
        head that is only whitespace (and the root's end tag: the last stream of a multistream dump)."""
        data = self._before_root_end(piece.data)
        if not data.removeprefix(codecs.BOM_UTF8).strip():
            return None
        if not self._self_closed_root.search(data):  # `<posts />`: a dump without records
            data += b"</%s>" % self._root.encode()
        return self._parse(data, piece.line)

    def record_element(self, piece: Piece):
        """The record element a piece starts with (parsed inside an empty root element). Other
        elements after it are not records (they do not start with the record's tag): a reader of the
        whole document would pass over them too."""
        root = self._parse(b"<%s>%s</%s>" % (self._root.encode(), self._before_root_end(piece.data),
                                             self._root.encode()), piece.line)
        return root[0]

    def _before_root_end(self, data: bytes) -> bytes:
        """`data` up to the root's end tag: what comes after it is outside the document."""
        end = data.find(self._root_end)
        return data if end < 0 else data[:end]

    def _parse(self, data: bytes, first_line: int):
        try:
            return etree.fromstring(data, self._parser)
        except etree.XMLSyntaxError as exc:
            # The parser's own log holds this parse's errors only (the exception's is lxml's log of the
            # thread, with earlier parses' errors); the first is the cause, later ones its consequences.
            errors = self._parser.error_log.filter_from_errors()
            first = errors[0] if len(errors) else None
            message = first.message if first is not None else str(exc)
            line = first.line if first is not None and first.line > 0 else (exc.lineno or 1)
            raise MalformedRecord(first_line + line - 1, message) from exc


@dataclass(frozen=True)
class BadRecord:
    """A piece that could not be read: a record (or the head) to count as one drop."""

    line: int  # where the piece starts
    reason: str  # "malformed_xml" or "record_too_large"
    detail: str
    head: bool = False


class NotADocument(ValueError):
    """The stream holds neither a root element nor any record: not this kind of dump at all."""


def parse_records(stream: BinaryIO, root: str, tag: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                  require_document: bool = True,
                  encoding: str | None = None) -> Iterator[tuple[Piece, object] | BadRecord]:
    """Each piece of an XML stream, parsed: (head piece, root element or None for an empty head),
    then (record piece, record element) per record, with a BadRecord in place of any piece that does
    not parse or is too long.

    With `require_document`, a stream with no record whose head holds no root element (an empty
    file, binary junk) raises NotADocument, so that it is one drop for the file and not a drop for a
    head that never was one. A piece cut short by a failed read is left out when it does not parse:
    the read error is raised next and the caller counts what it cost.

    `encoding`: of a part of a document, as `document_encoding` found it at the document's start; None
    for a whole document, whose first bytes tell (see the module's docstring)."""
    if encoding is None:
        start = stream.read(4)
        wide = wide_start(start)
        stream = Utf8Reader(stream, *wide, first_bytes=start) if wide else _Prefixed(start, stream)
        encoding = wide[0] if wide else None
    elif is_wide(encoding):
        stream = Utf8Reader(stream, encoding)
    pieces = split_records(stream, tag, max_record_bytes)
    head = next(pieces)
    # An unknown encoding, or UTF-16/32 named by ASCII-compatible bytes, raises: the file cannot be read.
    if encoding is None:
        encoding = declared_encoding(head.data)
    parser = RecordParser(root, "utf-8" if encoding and is_wide(encoding) else encoding)
    head_result = _parse_piece(parser, head, tag, max_record_bytes)
    records = 0
    for piece in pieces:
        if records == 0 and head_result is not None:
            yield head_result
        records += 1
        result = _parse_piece(parser, piece, tag, max_record_bytes)
        if result is not None:
            yield result
    if records == 0:
        has_root = isinstance(head_result, tuple) and head_result[1] is not None
        if has_root or not require_document:
            if head_result is not None:
                yield head_result
            return
        cause = head_result.detail if isinstance(head_result, BadRecord) else "no XML content"
        raise NotADocument(f"not a <{root}> document: {cause}")


def _parse_piece(parser: RecordParser, piece: Piece, tag: str, max_record_bytes: int):
    what = "the head" if piece.head else f"<{tag}> at line {piece.line}"
    if piece.oversize:
        if piece.cut:
            return None
        return BadRecord(piece.line, "record_too_large",
                         f"{what}: longer than {max_record_bytes} bytes", piece.head)
    try:
        element = parser.head_element(piece) if piece.head else parser.record_element(piece)
    except MalformedRecord as exc:
        if piece.cut:
            return None
        return BadRecord(piece.line, "malformed_xml",
                         f"{what}: {exc.message} (line {exc.line})", piece.head)
    return piece, element
