"""Cutting an XML dump into records parsed one by one (sources/xmlrecords.py)."""

from __future__ import annotations

import codecs
import io
import tracemalloc

import pytest

from llamapipe.sources.xmlrecords import (
    READ_CHUNK_BYTES,
    BadRecord,
    NotADocument,
    Utf8Reader,
    declared_encoding,
    document_encoding,
    parse_records,
    split_records,
)

POSTS = (b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
         + b"".join(b'  <row Id="%d" Body="%s"/>\n' % (n, b"x" * (n * 7 % 40)) for n in range(1, 30))
         + b"</posts>")


class FailingStream(io.RawIOBase):
    """The first `good` bytes of `data`, then an error (a truncated bz2 stream, a decompression limit)."""

    def __init__(self, data: bytes, good: int):
        self._data = data[:good]

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._data:
            raise EOFError("compressed stream ended early")
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


@pytest.mark.parametrize("chunk_bytes", [1, 2, 5, 64, 1 << 20])
def test_pieces_cover_the_stream_at_every_record_start_whatever_the_read_size(chunk_bytes):
    pieces = list(split_records(io.BytesIO(POSTS), "row", chunk_bytes=chunk_bytes))
    assert pieces[0].head and not any(piece.head for piece in pieces[1:])
    assert b"".join(piece.data for piece in pieces) == POSTS
    assert len(pieces) == 1 + 29
    for piece in pieces:
        assert POSTS[piece.offset:].startswith(piece.data)
        assert piece.line == POSTS[:piece.offset].count(b"\n") + 1
    assert all(piece.data.startswith(b"<row ") for piece in pieces[1:])


def test_a_tag_that_only_starts_like_the_record_tag_is_no_record():
    data = b"<posts><rows/><row Id='1'/><rowx/><row/></posts>"
    assert [piece.data for piece in split_records(io.BytesIO(data), "row")] == [
        b"<posts><rows/>", b"<row Id='1'/><rowx/>", b"<row/></posts>"]


@pytest.mark.parametrize("chunk_bytes", [3, 100, 999])
def test_a_record_over_the_limit_is_skipped_not_kept_and_the_next_one_read(chunk_bytes):
    data = b"<posts>\n<row a='1'/>\n<row b='" + b"y\n" * 3000 + b"'/>\n<row c='3'/>\n</posts>"
    pieces = list(split_records(io.BytesIO(data), "row", max_record_bytes=1000, chunk_bytes=chunk_bytes))
    assert [(piece.oversize, len(piece.data)) for piece in pieces] == [
        (False, 8), (False, 13), (True, 0), (False, len(b"<row c='3'/>\n</posts>"))]
    big, last = pieces[2], pieces[3]
    assert data[big.offset:].startswith(b"<row b=") and data[last.offset:].startswith(b"<row c=")
    assert last.line == data[:last.offset].count(b"\n") + 1
    # the limit holds to within one read (1 MB): a longer record is not kept whole either
    data = data.replace(b"y\n" * 3000, b"y\n" * 1_000_000)
    records = list(parse_records(io.BytesIO(data), "posts", "row", max_record_bytes=1000))
    assert [item.reason if isinstance(item, BadRecord) else dict(item[1].attrib) for item in records[1:]] == [
        {"a": "1"}, "record_too_large", {"c": "3"}]


def test_a_read_error_yields_the_piece_it_cut_then_raises():
    cut = POSTS.index(b'<row Id="5"') + 30  # inside row 5
    pieces = []
    with pytest.raises(EOFError):
        for piece in split_records(FailingStream(POSTS, cut), "row", chunk_bytes=64):
            pieces.append(piece)
    assert pieces[-1].cut and pieces[-1].data.startswith(b'<row Id="5"') and not pieces[-2].cut
    # parse_records keeps a cut piece that parses (here: row 4, complete before the cut) and leaves a
    # cut piece that does not to the error that follows: no drop of its own
    items = []
    with pytest.raises(EOFError):
        for item in parse_records(FailingStream(POSTS, POSTS.index(b'<row Id="5"')), "posts", "row"):
            items.append(item)
    assert [element.get("Id") for piece, element in items[1:]] == ["1", "2", "3", "4"]
    items = []
    with pytest.raises(EOFError):
        for item in parse_records(FailingStream(POSTS, cut), "posts", "row"):
            items.append(item)
    assert not any(isinstance(item, BadRecord) for item in items) and len(items) == 1 + 4


def test_each_malformed_record_is_one_bad_record_with_its_line_and_cause():
    data = (b'<?xml version="1.0"?>\n<!DOCTYPE posts [<!ENTITY e "expanded">]>\n<posts>\n'
            b'<row Id="1"/>\n<row Id="2" Body="&e;"/>\n<row Id="3" Body="a < b"/>\n'
            b"<row Id='4'><unclosed></row>\n<row Id='5'/> text and <other/> elements after a row\n"
            b"<row Id='6'/>\n</posts>\n")
    items = list(parse_records(io.BytesIO(data), "posts", "row"))
    head, records = items[0], items[1:]
    assert head[0].head and head[1].tag == "posts"
    summary = [(item.reason, item.line, item.detail) if isinstance(item, BadRecord) else item[1].get("Id")
               for item in records]
    assert summary[0] == "1" and summary[4:] == ["5", "6"]
    assert summary[1] == ("malformed_xml", 5, "<row> at line 5: Entity 'e' not defined (line 5)")
    assert summary[2][:2] == ("malformed_xml", 6) and "Unescaped '<'" in summary[2][2]
    assert summary[3][:2] == ("malformed_xml", 7) and "mismatch" in summary[3][2]


def test_the_declared_encoding_applies_to_every_record():
    data = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<posts><row T="café"/></posts>'.encode("latin-1")
    assert declared_encoding(data) == "ISO-8859-1"
    assert [item[1].get("T") for item in parse_records(io.BytesIO(data), "posts", "row")][1:] == ["café"]
    with pytest.raises(LookupError):
        list(parse_records(io.BytesIO(b'<?xml version="1.0" encoding="uf-8"?><posts/>'), "posts", "row"))
    with pytest.raises(ValueError, match="ASCII-compatible"):  # says UTF-16, is not
        declared_encoding(b'<?xml version="1.0" encoding="UTF-16"?>')
    assert declared_encoding(b"<posts>") is None


WIDE_POSTS = ('<?xml version="1.0" encoding="{name}"?>\n<posts>\n'
              + "".join(f'  <row Id="{n}" Body="caf\u00e9 \U0001d11e {n}"/>\n' for n in range(1, 30))
              + "</posts>")
# (codec, byte-order mark, the name in the XML declaration): a mark, or the declaration alone
WIDE_ENCODINGS = [
    ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16"),
    ("utf-16-be", codecs.BOM_UTF16_BE, "UTF-16"),
    ("utf-16-le", b"", "UTF-16"),
    ("utf-16-be", b"", "UTF-16"),
    ("utf-32-le", codecs.BOM_UTF32_LE, "UTF-32"),
    ("utf-32-be", b"", "UTF-32"),
]


def rows(items) -> list:
    return [(item[0].line, dict(item[1].attrib)) if isinstance(item, tuple) else item for item in items][1:]


@pytest.mark.parametrize(("codec", "mark", "name"), WIDE_ENCODINGS)
def test_a_utf16_or_utf32_document_gives_the_records_of_its_utf8_original(codec, mark, name):
    utf8 = WIDE_POSTS.format(name="UTF-8").encode("utf-8")
    wide = mark + WIDE_POSTS.format(name=name).encode(codec)
    expected = rows(parse_records(io.BytesIO(utf8), "posts", "row"))
    assert len(expected) == 29 and expected[0] == (3, {"Id": "1", "Body": "caf\u00e9 \U0001d11e 1"})
    assert rows(parse_records(io.BytesIO(wide), "posts", "row")) == expected
    assert document_encoding(wide[:200]) == codec
    # a part of the document (records only, as a multistream dump's page stream), told the encoding
    part = WIDE_POSTS.format(name=name).split("<posts>\n", 1)[1].encode(codec)
    records = list(parse_records(io.BytesIO(part), "posts", "row", require_document=False, encoding=codec))
    assert [dict(element.attrib) for _, element in records[1:]] == [attributes for _, attributes in expected]


def test_an_unpaired_surrogate_in_utf16_costs_only_its_record():
    data = bytearray(codecs.BOM_UTF16_LE + WIDE_POSTS.format(name="UTF-16").encode("utf-16-le"))
    at = data.index('Id="5"'.encode("utf-16-le"))
    data[at:at] = "\ud800".encode("utf-16-le", "surrogatepass")  # a high surrogate with no low one
    items = rows(parse_records(io.BytesIO(bytes(data)), "posts", "row"))
    assert isinstance(items[4], BadRecord) and items[4].reason == "malformed_xml" and items[4].line == 7
    assert [item[1]["Id"] for item in items if not isinstance(item, BadRecord)] == [
        str(n) for n in range(1, 30) if n != 5]


@pytest.mark.parametrize("size", [1, 3, 7, 4096, -1])
def test_utf8_reader_returns_at_most_what_is_asked_and_the_utf8_bytes(size):
    text = "".join(f"line {n}: caf\u00e9 \U0001d11e \u65e5\u672c\n" for n in range(2000))
    reader = Utf8Reader(io.BytesIO(codecs.BOM_UTF16_BE + text.encode("utf-16-be")), "utf-16-be", 2)
    chunks = []
    while chunk := reader.read(size):
        assert size < 0 or len(chunk) <= size
        chunks.append(chunk)
    assert b"".join(chunks) == text.encode("utf-8")


WORD = "w\u00f6rd "


class GeneratedUtf16Posts(io.RawIOBase):
    """A Posts.xml in UTF-16 with a byte-order mark, written as it is read: `rows` rows of about 1 KB."""

    def __init__(self, rows: int):
        self._rows, self._next, self._buffer = rows, 0, codecs.BOM_UTF16_LE + "<posts>\n".encode("utf-16-le")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self._buffer) < len(buffer) and self._next <= self._rows:
            self._next += 1
            last = self._next > self._rows
            row = "</posts>" if last else f'<row Id="{self._next}" Body="{WORD * 170}"/>\n'
            self._buffer += row.encode("utf-16-le")
        count = min(len(buffer), len(self._buffer))
        buffer[:count], self._buffer = self._buffer[:count], self._buffer[count:]
        return count


def peak_memory_reading(rows: int) -> tuple[int, int]:
    """(records read, peak of Python memory while reading) for a generated UTF-16 Posts.xml."""
    tracemalloc.start()
    try:
        count = sum(1 for item in parse_records(io.BufferedReader(GeneratedUtf16Posts(rows)), "posts", "row")
                    if isinstance(item, tuple) and not item[0].head)
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_utf16_document_is_read_in_constant_memory():
    small_count, small_peak = peak_memory_reading(5_000)  # some 10 MB of UTF-16
    large_count, large_peak = peak_memory_reading(40_000)  # some 80 MB
    assert (small_count, large_count) == (5_000, 40_000)
    # a few chunks of 1 MB (the generator's, the transcoder's, the record splitter's), whatever the size
    assert large_peak < small_peak + READ_CHUNK_BYTES, (small_peak, large_peak)
    assert large_peak < 16 * READ_CHUNK_BYTES, large_peak


def test_a_stream_with_no_document_raises_unless_it_is_a_part_of_one():
    for data in (b"", b"  \n", b"\x00\x01 binary junk PK\x03\x04"):
        with pytest.raises(NotADocument):
            list(parse_records(io.BytesIO(data), "posts", "row"))
    # an empty dump is a document; the tail stream of a multistream dump is a part of one
    assert [item[1].tag for item in parse_records(io.BytesIO(b"<posts />"), "posts", "row")] == ["posts"]
    assert [item[1] for item in parse_records(io.BytesIO(b"</mediawiki>\n"), "mediawiki", "page",
                                              require_document=False)] == [None]
    # a damaged head before good records is one BadRecord, and the records are read
    items = list(parse_records(io.BytesIO(b"<posts <row Id='1'/></posts>"), "posts", "row"))
    assert isinstance(items[0], BadRecord) and items[0].head and items[1][1].get("Id") == "1"
