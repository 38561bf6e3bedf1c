"""The bad-input corpus: broken and hostile files in every reader's formats, written once per session.

Each item also records an *independent* count of what its good records are, computed with the
standard library from the bytes written (never with our readers), so tests can check that the
readers' documents + drops reconcile with the inputs.
"""

from __future__ import annotations

import bz2
import gzip
import json
import re
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.sources.test_stackexchange import answer, question, write_posts
from tests.sources.test_wikipedia import EXPORT_NS, page_xml

SECRET = "TOP-SECRET-7f3a9c"  # text of a file hostile XML tries to pull in

# The "single large document" of the issue: 100 MB, above the 10 MB default of C4's max_line_bytes
# and below a raised one.
LARGE_DOCUMENT_BYTES = 100 * 1024 * 1024


@dataclass
class Item:
    paths: list[Path]
    good: list[str] = field(default_factory=list)  # texts (or ids) of the good records, in order
    notes: dict = field(default_factory=dict)


def json_line(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode("utf-8") + b"\n"


def complete_lines_of_truncated_gzip(data: bytes) -> int:
    """Lines a gzip file still holds entirely up to where it was cut, decompressed with zlib."""
    decompressor = zlib.decompressobj(wbits=31)
    return decompressor.decompress(data).count(b"\n")


def pages_of_complete_bz2_streams(data: bytes) -> int:
    """<page> elements in the bz2 streams of `data` that decompress completely."""
    text, rest = b"", data
    while rest:
        decompressor = bz2.BZ2Decompressor()
        try:
            out = decompressor.decompress(rest)
        except OSError:
            break
        if not decompressor.eof:
            break
        text += out
        rest = decompressor.unused_data
    return text.count(b"<page>")


def siteinfo_head(dbname: str = "enwiki") -> str:
    return (
        f'<mediawiki xmlns="{EXPORT_NS}" version="0.10" xml:lang="en">'
        f"<siteinfo><sitename>Wikipedia</sitename><dbname>{dbname}</dbname>"
        f"<base>https://en.wikipedia.org/wiki/Main_Page</base><namespaces>"
        '<namespace key="0" case="first-letter" /></namespaces></siteinfo>'
    )


def article(n: int) -> str:
    return f"Article {n} is about topic number {n}, described in one plain sentence."


def warc_record(number: int, status: str = "200 OK") -> bytes:
    """One WARC/1.0 response record with an HTML page, written out by hand (with its separator)."""
    url = "https://cc.example/404" if status.startswith("404") else f"https://cc.example/{number}"
    body = f"<html><body><p>Page {number} of the crawl.</p></body></html>".encode()
    http = f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n".encode() + body
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{uuid.UUID(int=number)}>\r\n"
            f"WARC-Date: 2024-05-01T00:00:00Z\r\nWARC-Target-URI: {url}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n")
    return head.encode() + http + b"\r\n\r\n"


def warc_with_corrupt_records(gzipped: bool) -> tuple[bytes, list[str], list[tuple[int, int | None]]]:
    """A WARC (one gzip member per record, or plain) with damage between and inside good records.

    Returns the file's bytes, the URLs of the good records (HTML responses, one a 404), and the byte
    ranges [start, stop) that hold no readable record (stop None: to the end), known from how the
    file was put together, not from any reader."""
    parts: list[tuple[bytes, bool]] = []  # (bytes as written, whether they are a good record)

    def good(number: int, status: str = "200 OK") -> None:
        record = warc_record(number, status)
        parts.append((gzip.compress(record, mtime=0) if gzipped else record, True))

    def bad(data: bytes) -> None:
        parts.append((data, False))

    good(1)
    good(2)
    if gzipped:
        bad(gzip.compress(b"not a WARC record at all\r\n\r\n", mtime=0))  # good gzip, bad record
        good(3)
        bad(b"\x00\xff raw bytes between two members " * 8)  # not gzip at all
        good(4, "404 Not Found")  # a good record that is a drop for another reason
        member = gzip.compress(warc_record(5), mtime=0)
        bad(member[:-8] + bytes(4) + member[-4:])  # CRC of record 5 zeroed: found after its payload
        good(6)
        member = gzip.compress(warc_record(7), mtime=0)
        bad(member[:30] + bytes([member[30] ^ 0xFF]) + member[31:])  # damaged deflate data
        good(8)
        bad(gzip.compress(warc_record(9), mtime=0)[:60])  # the file cut inside record 9
    else:
        bad(b"a line that is no WARC record\r\n\r\n")
        good(3)
        good(4, "404 Not Found")
        record = warc_record(5)
        length = re.search(rb"Content-Length: (\d+)", record)
        bad(record[:length.start(1)] + str(int(length.group(1)) + 25).encode() + record[length.end(1):])
        good(6)
        bad(warc_record(7).replace(b"Content-Length", b"Content-Lenght"))  # no Content-Length
        good(8)
        bad(warc_record(9)[:200])  # the file cut inside record 9
    data = b"".join(part for part, _ in parts)
    offsets = [sum(len(part) for part, _ in parts[:n]) for n in range(len(parts) + 1)]
    regions = [(offsets[n], offsets[n + 1] if n + 1 < len(parts) else None)
               for n, (_, is_good) in enumerate(parts) if not is_good]
    records = [gzip.decompress(part) if gzipped else part for part, is_good in parts if is_good]
    urls = [re.search(rb"WARC-Target-URI: (\S+)", record).group(1).decode() for record in records]
    return data, urls, regions


def build_corpus(root: Path) -> dict[str, Item]:
    corpus: dict[str, Item] = {}

    # C4: a gzip member cut in half; everything decompressible before the cut is good.
    lines = [json_line(text=f"document {n}", url=f"https://c4.example/{n}") for n in range(50_000)]
    data = gzip.compress(b"".join(lines))
    cut = data[: len(data) // 2]
    path = root / "c4" / "truncated" / "c4-train.00000-of-01024.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(cut)
    complete = complete_lines_of_truncated_gzip(cut)
    corpus["c4_truncated_gzip"] = Item([path], [f"document {n}" for n in range(complete)])

    # Wikipedia: a multistream .bz2 (no index, so read whole) whose 4th stream of pages is cut off.
    streams = [siteinfo_head()]
    streams += ["".join(page_xml(f"Article {n}", n, article(n)) for n in range(s * 10 + 1, s * 10 + 11))
                for s in range(4)]
    streams.append("</mediawiki>")
    data = b"".join(bz2.compress(stream.encode()) for stream in streams)
    stream_sizes = [len(bz2.compress(stream.encode())) for stream in streams]
    cut = data[: sum(stream_sizes[:4]) + stream_sizes[4] // 2]
    path = root / "wikipedia" / "truncated" / "enwiki-20230301-pages-articles-multistream.xml.bz2"
    path.parent.mkdir(parents=True)
    path.write_bytes(cut)
    corpus["wikipedia_truncated_bz2"] = Item(
        [path], [article(n) for n in range(1, pages_of_complete_bz2_streams(cut) + 1)])

    # Wikipedia: an unclosed tag, and an undefined entity, in the 4th of 6 pages (one page a line).
    for name, damage in (("unclosed", "<title>Broken<revision>"), ("entity", "<title>&bogus;</title>")):
        pages = [page_xml(f"Article {n}", n, article(n)) for n in range(1, 7)]
        pages[3] = f"<page>{damage}<ns>0</ns><id>4</id></page>"
        path = root / "wikipedia" / name / "enwiki-20230301-pages-articles.xml"
        path.parent.mkdir(parents=True)
        path.write_text(siteinfo_head() + "\n" + "\n".join(pages) + "\n</mediawiki>")
        text = path.read_bytes()
        corpus[f"wikipedia_{name}"] = Item(
            [path], [article(n) for n in (1, 2, 3, 5, 6)],
            {"pages": text.count(b"<page>"), "bad_line": text[:text.index(b"<id>4</id>")].count(b"\n") + 1})

    # Posts.xml: an undefined entity (&bogus;) in the 3rd question's attribute (the 4th row).
    rows = [question(1, "First", "<p>one</p>"), answer(2, 1, "<p>a1</p>"),
            question(3, "Second", "<p>two</p>"), question(5, "Third", "<p>three</p>"),
            question(6, "Fourth", "<p>four</p>")]
    good = write_posts(root / "se" / "good.xml", rows).read_bytes()
    data = good.replace(b'Body="&lt;p&gt;three', b'Body="&bogus;&lt;p&gt;three')
    path = root / "se" / "entity" / "coffee.stackexchange.com_Posts.xml"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    corpus["stackexchange_bad_entity"] = Item(
        [path], [f"stackexchange:coffee.stackexchange.com/{n}" for n in (1, 3, 6)],
        {"rows": data.count(b"<row "), "bad_row": 4,
         "bad_line": data[:data.index(b"&bogus;")].count(b"\n") + 1})

    # External entity (XXE) and billion laughs, in Posts.xml and in a Wikipedia dump.
    secret = root / "secret.txt"
    secret.write_text(SECRET)
    xxe = f'<!DOCTYPE mediawiki [<!ENTITY leak SYSTEM "file://{secret}">]>'
    # Ten levels of ten references: 10**10 "lol"s (30 GB) if expanded.
    laughs = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 11))
    bomb = f"<!DOCTYPE mediawiki [{laughs}]>"
    # The hostile record is the 2nd of 3 (pages, rows): the 1st and 3rd are good.
    for name, doctype, reference in (("xxe", xxe, "&leak;"), ("laughs", bomb, "&l10;")):
        pages = [page_xml("Good", 1, article(1)),
                 page_xml("Evil", 2, "PLACEHOLDER").replace("PLACEHOLDER", reference),
                 page_xml("After", 3, article(3))]
        path = root / "wikipedia" / name / "enwiki-20230301-pages-articles.xml"
        path.parent.mkdir(parents=True)
        path.write_text(
            '<?xml version="1.0"?>\n' + doctype + siteinfo_head() + "".join(pages) + "</mediawiki>")
        posts = root / "se" / name / "evil.stackexchange.com_Posts.xml"
        posts.parent.mkdir(parents=True)
        posts.write_text(
            '<?xml version="1.0"?>\n' + doctype.replace("mediawiki", "posts") + "\n<posts>\n"
            '<row Id="1" PostTypeId="1" Title="Safe" Body="&lt;p&gt;safe&lt;/p&gt;"/>\n'
            f'<row Id="2" PostTypeId="1" Title="Evil" Body="{reference}"/>\n'
            '<row Id="3" PostTypeId="1" Title="After" Body="&lt;p&gt;after&lt;/p&gt;"/>\n</posts>\n')
        corpus[f"wikipedia_{name}"] = Item([path], [article(1), article(3)], {"entity": reference[1:-1]})
        corpus[f"stackexchange_{name}"] = Item(
            [posts], ["stackexchange:evil.stackexchange.com/1", "stackexchange:evil.stackexchange.com/3"],
            {"entity": reference[1:-1]})

    # Corrupt WARC records between good ones (see warc_with_corrupt_records).
    for kind, name in (("gzip", "corrupt.warc.gz"), ("plain", "corrupt.warc")):
        path = root / "commoncrawl" / kind / name
        path.parent.mkdir(parents=True)
        data, good, regions = warc_with_corrupt_records(gzipped=kind == "gzip")
        path.write_bytes(data)
        corpus[f"commoncrawl_corrupt_{kind}"] = Item([path], good, {"regions": regions})

    # Decompression bombs: a few good lines/rows, then a long run of one byte that compresses ~1000:1.
    path = root / "c4" / "bomb" / "c4-bomb.json.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wb") as out:
        for n in range(3):
            out.write(json_line(text=f"good {n}"))
        out.write(b'{"text": "' + b"A" * (64 * 1024 * 1024) + b'"}\n')
    corpus["c4_bomb"] = Item([path], [f"good {n}" for n in range(3)], {"compressed": path.stat().st_size})
    posts = root / "se" / "bomb" / "bomb.stackexchange.com_Posts.xml.bz2"
    posts.parent.mkdir(parents=True)
    head = b'<?xml version="1.0"?>\n<posts>\n<row Id="1" PostTypeId="1" Title="Safe" Body="safe"/>\n'
    posts.write_bytes(bz2.compress(head + b'<row Id="2" PostTypeId="1" Body="' + b"A" * (64 * 1024 * 1024)))
    corpus["stackexchange_bomb"] = Item([posts], ["stackexchange:bomb.stackexchange.com/1"])

    # Invalid UTF-8 and mixed encodings: latin-1 and cp1252 bytes between good UTF-8 lines.
    path = root / "c4" / "encoding" / "mixed.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(json_line(text="Crème brûlée, UTF-8.")
                     + '{"text": "caf\xe9 latin-1"}\n'.encode("latin-1")
                     + json_line(text="日本語の文。") + '{"text": "\u201cquoted\u201d"}\n'.encode("cp1252")
                     + b'{"text": "bad \xff\xfe bytes"}\n' + json_line(text="Last good line."))
    corpus["c4_mixed_encoding"] = Item([path], ["Crème brûlée, UTF-8.", "日本語の文。", "Last good line."],
                                       {"bad_lines": [2, 4, 5]})
    code = "def hello():\n    return 'hello world from a python file'\n"
    path = root / "github" / "encoding" / "code.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(
        json_line(content=code, repo_name="a/b", path="one.py", license="mit")
        + '{"content": "x = \'\xe9\'", "repo_name": "a/b", "path": "two.py"}\n'.encode("latin-1")
        + json_line(content=code.replace("hello", "bye"), repo_name="a/b", path="three.py", license="mit"))
    corpus["github_mixed_encoding"] = Item([path], ["github:a/b/one.py", "github:a/b/three.py"])
    path = root / "books" / "encoding" / "pg19.jsonl"
    path.parent.mkdir(parents=True)
    book = "Chapter one.\n\nIt was a dark and stormy night; the rain fell in torrents.\n"
    path.write_bytes(json_line(text=book, short_book_title="Good")
                     + '{"text": "Ch\xe2pitre \xe9t\xe9", "short_book_title": "Bad"}\n'.encode("latin-1")
                     + json_line(text=book, short_book_title="Also good"))
    corpus["books_mixed_encoding"] = Item([path], ["Good", "Also good"])

    # A single large document between two small ones.
    path = root / "c4" / "large" / "large.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(json_line(text="small before") + json_line(text="x" * LARGE_DOCUMENT_BYTES)
                     + json_line(text="small after"))
    corpus["c4_large_document"] = Item([path], ["small before", "small after"])

    # Empty files, one per reader and format.
    empty = {
        "c4": ["c4.json", "c4.json.gz"],
        "github": ["code.jsonl", "code.parquet"],
        "books": ["book.txt", "pg19.jsonl"],
        "wikipedia": ["enwiki-20230301-pages-articles.xml", "enwiki-20230301-pages-articles.xml.bz2"],
        "stackexchange": ["empty.stackexchange.com_Posts.xml", "empty2.stackexchange.com_Posts.xml.bz2"],
        "commoncrawl": ["empty.warc.gz", "empty.warc"],
        "arxiv": ["2101.00001.tar.gz", "2101.00002.zip"],
    }
    for source, names in empty.items():
        folder = root / "empty" / source
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"")
        corpus[f"{source}_empty"] = Item([folder / name for name in names])

    # Binary junk in text fields: raw bytes (not UTF-8), and control characters escaped in valid json.
    path = root / "c4" / "junk" / "junk.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(json_line(text="good text")
                     + b'{"text": "' + bytes(range(0x80, 0x100)) + b'"}\n'
                     + json_line(text="nul\x00 bell\x07 escape\x1b text")
                     + b"\x00\x01\x02\x03 PK\x03\x04 not json at all\n"
                     + json_line(text="good again"))
    corpus["c4_binary_junk"] = Item([path], ["good text", "nul\x00 bell\x07 escape\x1b text", "good again"])

    # json lines with the wrong schema.
    path = root / "github" / "schema" / "code.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(json_line(content=code, repo_name="a/b", path="one.py", license="mit")
                     + json_line(content=17, repo_name="a/b", path="two.py")
                     + json_line(text="a C4 row in the wrong source")
                     + b"[1, 2, 3]\n" + b'"just a string"\n' + b"null\n"
                     + json_line(content=code, repo_name=["a"], path="x.py")
                     + json_line(content=code.replace("hello", "bye"), repo_name="a/b", path="three.py",
                                 license="mit"))
    corpus["github_wrong_schema"] = Item([path], ["github:a/b/one.py", "github:a/b/three.py"])
    path = root / "books" / "schema" / "pg19.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(json_line(text=book, short_book_title="Good") + json_line(title="no text")
                     + json_line(text=["a", "list"]) + b"42\n"
                     + json_line(text=book, short_book_title="Last"))
    corpus["books_wrong_schema"] = Item([path], ["Good", "Last"])
    return corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Item]:
    return build_corpus(tmp_path_factory.mktemp("hostile"))
