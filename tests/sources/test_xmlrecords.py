"""Cutting an XML dump into records parsed one by one (sources/xmlrecords.py)."""

from __future__ import annotations

import io

import pytest

from llamapipe.sources.xmlrecords import (
    BadRecord,
    NotADocument,
    declared_encoding,
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
    with pytest.raises(ValueError, match="not supported"):
        declared_encoding(b'<?xml version="1.0" encoding="UTF-16"?>')
    assert declared_encoding(b"<posts>") is None


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
