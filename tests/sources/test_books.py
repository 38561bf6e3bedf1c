"""Books reader: Gutenberg header/footer stripping, decoding, header metadata, drops."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import re

from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from llamapipe.sources import books

MODERN_HEADER = """The Project Gutenberg EBook of Les Fleurs, by Jean Dupont\r
\r
This eBook is for the use of anyone anywhere at no cost and with\r
almost no restrictions whatsoever.  You may copy it, give it away or\r
re-use it under the terms of the Project Gutenberg License included\r
with this eBook or online at www.gutenberg.org\r
\r
\r
Title: Les Fleurs\r
       ou le jardin d'été\r
\r
Author: Jean Dupont\r
\r
Release Date: March 3, 2004 [EBook #11456]\r
\r
Language: French\r
\r
Character set encoding: ISO-8859-1\r
\r
*** START OF THIS PROJECT GUTENBERG EBOOK LES FLEURS ***\r
\r
\r
\r
\r
Produced by Marie Curie and the Online Distributed\r
Proofreading Team at http://www.pgdp.net\r
\r
\r
\r
\r
LES FLEURS\r
\r
Le jardin était plein de roses.\r
\r
FIN\r
\r
\r
\r
End of the Project Gutenberg EBook of Les Fleurs, by Jean Dupont\r
\r
*** END OF THIS PROJECT GUTENBERG EBOOK LES FLEURS ***\r
\r
***** This file should be named 11456-8.txt or 11456-8.zip *****\r
\r
*** START: FULL LICENSE ***\r
THE FULL PROJECT GUTENBERG LICENSE\r
"""

NO_SPACE_VARIANT = """The Project Gutenberg eBook, A Tale, by Ann Author


Title: A Tale

Author: Ann Author

Release Date: June 14, 2009  [eBook #3261]

Language: English

***START OF THE PROJECT GUTENBERG EBOOK A TALE***

Once upon a time there was a tale.

The end.

End of Project Gutenberg's A Tale, by Ann Author

***** This file should be named 3261.txt or 3261.zip *****
Section 1.  General Terms of Use and Redistributing Project Gutenberg-tm
"""

SMALL_PRINT_VARIANT = """**The Project Gutenberg Etext of Old Poems**
Copyright laws are changing all over the world.

**Welcome To The World of Free Plain Vanilla Electronic Texts**

***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***
Why is this "Small Print!" statement here?  You know: lawyers.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

OLD POEMS

The sea is wide.
"""

NO_HEADER_BOOK = """CHAPTER I

It was a dark and stormy night.
"""


def write(path, text: str, encoding: str = "utf-8", compress=None) -> None:
    data = text.encode(encoding) if isinstance(text, str) else text
    path.write_bytes(compress(data) if compress else data)


def run_read(inputs, check_documents, check_drops, **options) -> None:
    with TestPipeline() as pipeline:
        outputs = pipeline | books.Read(books.Options(inputs=inputs, **options))
        assert_that(outputs["documents"], check_documents, label="CheckDocuments")
        assert_that(outputs["dropped"], check_drops, label="CheckDrops")


def test_read_books_of_every_header_variant(tmp_path):
    write(tmp_path / "11456-8.txt.gz", MODERN_HEADER, "iso-8859-1", gzip.compress)
    write(tmp_path / "pg3261.txt.bz2", NO_SPACE_VARIANT, compress=bz2.compress)
    write(tmp_path / "oldpoems.txt", SMALL_PRINT_VARIANT)
    write(tmp_path / "stormy.txt", b"\xef\xbb\xbf" + NO_HEADER_BOOK.encode())
    write(tmp_path / "only-licence.txt", NO_SPACE_VARIANT.split("Once upon")[0] + "\n\n*** END OF THE "
          "PROJECT GUTENBERG EBOOK A TALE ***\n")
    write(tmp_path / "latin.txt", "Caf\xe9 cr\xe8me.\n", "latin-1")  # not UTF-8, no declared charset

    def check_documents(documents):
        by_id = {d["id"]: d for d in documents}
        assert sorted(by_id) == [
            "books:11456-8", "books:latin", "books:oldpoems", "books:pg3261", "books:stormy"]

        french = by_id["books:11456-8"]
        assert french["text"] == "LES FLEURS\n\nLe jardin était plein de roses.\n\nFIN"
        assert french["url"] == "https://www.gutenberg.org/ebooks/11456"
        assert french["meta"]["title"] == "Les Fleurs ou le jardin d'été"
        assert french["meta"]["author"] == "Jean Dupont"
        assert french["meta"]["language"] == "French"
        assert french["meta"]["language_code"] == "fr"
        assert french["meta"]["release_date"] == "March 3, 2004"
        assert french["meta"]["encoding"] == "iso8859-1"
        assert french["meta"]["gutenberg_header"] is True

        tale = by_id["books:pg3261"]
        assert tale["text"] == "Once upon a time there was a tale.\n\nThe end."
        assert tale["meta"]["release_date"] == "June 14, 2009"
        assert tale["url"] == "https://www.gutenberg.org/ebooks/3261"

        assert by_id["books:oldpoems"]["text"] == "OLD POEMS\n\nThe sea is wide."

        stormy = by_id["books:stormy"]
        assert stormy["text"] == "CHAPTER I\n\nIt was a dark and stormy night."  # BOM gone
        assert stormy["meta"]["gutenberg_header"] is False
        assert stormy["url"] == ""

        assert by_id["books:latin"]["text"] == "Café crème."
        assert by_id["books:latin"]["meta"]["encoding"] == "latin-1"

    def check_drops(drops):
        # a file that is nothing but the licence
        assert [(d["stage"], d["reason"], d["id"]) for d in drops] == [
            ("clean", "empty", "books:only-licence")]

    run_read([str(tmp_path / "*")], check_documents, check_drops)


def test_book_over_the_size_cap_is_dropped(tmp_path):
    write(tmp_path / "big.txt", "*** START OF THE PROJECT GUTENBERG EBOOK BIG ***\n" + "word " * 1000)
    write(tmp_path / "small.txt", "*** START OF THE PROJECT GUTENBERG EBOOK SMALL ***\nA short book.\n")

    def check_documents(documents):
        assert [d["id"] for d in documents] == ["books:small"]

    def check_drops(drops):
        assert [(d["stage"], d["reason"], d["id"]) for d in drops] == [
            ("read", "book_too_large", "books:big")]

    run_read([str(tmp_path / "*.txt")], check_documents, check_drops, max_book_bytes=1000)


def test_split_book_stops_reading_at_the_end_marker():
    consumed = []

    def lines():
        for line in [b"Title: X\n", b"*** START OF THE PROJECT GUTENBERG EBOOK X ***\n", b"Body.\n",
                     b"*** END OF THE PROJECT GUTENBERG EBOOK X ***\n", b"licence\n", b"more licence\n"]:
            consumed.append(line)
            yield line

    raw = books.split_book(lines())
    assert (raw.header, raw.body, raw.has_start, raw.has_end) == ([b"Title: X\n"], [b"Body.\n"], True, True)
    assert len(consumed) == 4  # the licence footer is never read


def test_parse_header_fields():
    meta = books.parse_header("Title: The Cook's Almanac\n\nAuthor: Jane Example\n\n"
                              "Posting Date: March 9, 2010 [EBook #4321]\n[Last updated: May 2, 2016]\n\n"
                              "Language: English\n")
    assert meta == {"title": "The Cook's Almanac", "author": "Jane Example", "language": "English",
                    "release_date": "March 9, 2010", "ebook_number": "4321"}


def test_decode_uses_the_declared_charset_when_not_utf8():
    header = b"Character set encoding: Windows-1252\n"
    assert books.decode_book(header, b"\x93quoted\x94") == (header.decode(), "\u201cquoted\u201d", "cp1252")
    assert books.decode_book(b"Character set encoding: ISO-646-US (US-ASCII)\n", b"plain")[2] == "utf-8"


# --- real books ------------------------------------------------------------------------------------


# Read from the raw files at test time (their text is never copied into the repository).
RAW_START = re.compile(r"^\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
RAW_END = re.compile(r"^(?:\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg)",
                     re.IGNORECASE)
RAW_CREDIT = re.compile(r"^\s*(?:Produced|Transcribed)\s+(?:by|from)\b", re.IGNORECASE)
RAW_DATE = re.compile(r"^(?:Release|Posting) Date:\s*(.*?)\s*\[e-?book\s*#(\d+)\]",
                      re.IGNORECASE | re.MULTILINE)


def raw_header_field(header: str, name: str) -> str:
    """A header field's value; indented lines under it continue it ("Title: X\n       or, Y")."""
    match = re.search(rf"^{name}:[ \t]*(.*(?:\n[ \t]+\S.*)*)", header, re.MULTILINE)
    assert match, name
    return " ".join(part.strip() for part in match.group(1).split("\n"))


def raw_book(path) -> tuple[str, list[str], int]:
    """(header, non-blank body lines, credit paragraphs skipped) of a raw Gutenberg file: the body lies
    between the START and END marker lines, without the transcriber-credit paragraphs at its start
    that the reader documents removing."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    start = next(n for n, line in enumerate(lines) if RAW_START.match(line))
    end = next(n for n, line in enumerate(lines) if n > start and RAW_END.match(line))
    paragraphs: list[list[str]] = [[]]
    for line in lines[start + 1:end]:
        if line.strip():
            paragraphs[-1].append(line.rstrip())
        elif paragraphs[-1]:
            paragraphs.append([])
    paragraphs = [paragraph for paragraph in paragraphs if paragraph]
    credits = 0
    while RAW_CREDIT.match(paragraphs[credits][0]):
        credits += 1
    body = [line for paragraph in paragraphs[credits:] for line in paragraph]
    return "\n".join(lines[:start]), body, credits


def test_real_books(realdata):
    paths = sorted((realdata / "books").glob("*.txt"))
    assert len(paths) == 3
    licence = re.compile(r"project gutenberg|gutenberg-tm|gutenberg license", re.IGNORECASE)
    raw = {f"books:{path.stem}": raw_book(path) for path in paths}
    assert all(credits >= 1 for _, _, credits in raw.values())  # each sample has a credit paragraph to drop
    # (header, first body line, last body line, digest of all non-blank body lines): small to pickle
    expected = {doc_id: (header, body[0], body[-1], _digest(body))
                for doc_id, (header, body, _) in raw.items()}
    accented = [line for line in raw["books:pg44157_entre-nous_french_utf8-bom"][1] if not line.isascii()]
    assert accented

    def check_documents(documents):
        by_id = {d["id"]: d for d in documents}
        assert sorted(by_id) == ["books:pg3261_news-from-nowhere", "books:pg44157_entre-nous_french_utf8-bom",
                                 "books:pg972_the-devils-dictionary"]
        for document in documents:
            text = document["text"]
            assert not licence.search(text), document["id"]
            assert "\r" not in text and not text.startswith("\ufeff")
            assert document["meta"]["gutenberg_header"] is True
            assert "Produced by" not in text[:500]
            header, first_line, last_line, body = expected[document["id"]]
            # first and last body lines, and every non-blank line between, as in the raw file
            assert text.startswith(first_line) and text.endswith(last_line), document["id"]
            assert _digest([line for line in text.split("\n") if line.strip()]) == body, document["id"]
            meta = document["meta"]
            for field in ("Title", "Author", "Language"):
                assert meta[field.lower()] == raw_header_field(header, field), (document["id"], field)
            date, number = RAW_DATE.search(header).groups()
            assert meta["release_date"] == date
            assert document["url"] == f"https://www.gutenberg.org/ebooks/{number}"
        devil = by_id["books:pg972_the-devils-dictionary"]
        assert devil["meta"]["language"] == "English" and devil["url"] == "https://www.gutenberg.org/ebooks/972"
        nowhere = by_id["books:pg3261_news-from-nowhere"]  # "***START OF THE PROJECT..." without spaces
        assert re.search(r"^Title:.*\n[ \t]+\S", expected[nowhere["id"]][0], re.MULTILINE)  # a two-line title
        french = by_id["books:pg44157_entre-nous_french_utf8-bom"]
        assert french["meta"]["language"] == "French" and french["meta"]["language_code"] == "fr"
        assert french["meta"]["encoding"] == "utf-8"
        assert all(line in french["text"] for line in accented)  # decoded as UTF-8

    run_read([str(p) for p in paths], check_documents, lambda drops: _assert_empty(drops))


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _assert_empty(drops):
    assert drops == []


# --- PG-19 json lines, the near-dup flag, provenance ---------------------------------------------------


def pg19_row(number: int, title: str, text: str, date: int = 1900) -> bytes:
    row = {"short_book_title": title, "publication_date": date,
           "url": f"http://www.gutenberg.org/ebooks/{number}", "text": text}
    return json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"


def test_pg19_json_lines_one_book_per_line(tmp_path):
    data = (pg19_row(10146, "Le Tour du Monde", "CHAPITRE I\n\nPhileas Fogg était un gentleman.\n", 1873)
            + pg19_row(3261, "A Tale", NO_SPACE_VARIANT)  # an export that kept the licence
            + b'{"short_book_title": "cut", "text": "no end\n'
            + pg19_row(5, "Empty", "\n\n")
            + json.dumps({"short_book_title": "No text"}).encode() + b"\n")
    path = tmp_path / "pg19-train.jsonl.gz"
    write(path, data, compress=gzip.compress)

    def check_documents(documents):
        by_id = {d["id"]: d for d in documents}
        assert sorted(by_id) == ["books:pg19-train.jsonl.gz:1", "books:pg19-train.jsonl.gz:2"]
        verne = by_id["books:pg19-train.jsonl.gz:1"]
        assert verne["text"] == "CHAPITRE I\n\nPhileas Fogg était un gentleman."
        assert verne["url"] == "http://www.gutenberg.org/ebooks/10146"
        assert verne["meta"]["title"] == "Le Tour du Monde"
        assert verne["meta"]["publication_date"] == 1873 and verne["meta"]["ebook_number"] == "10146"
        tale = by_id["books:pg19-train.jsonl.gz:2"]
        assert tale["text"] == "Once upon a time there was a tale.\n\nThe end."
        assert tale["meta"]["title"] == "A Tale" and tale["meta"]["gutenberg_header"] is True
        for document in documents:
            assert document["meta"]["book_dedup"] is True
            assert document["meta"]["source_file"] == str(path)

    def check_drops(drops):
        assert sorted((d["stage"], d["reason"], d["id"]) for d in drops) == [
            ("clean", "empty", "books:pg19-train.jsonl.gz:4"),
            ("read", "bad_schema", "books:pg19-train.jsonl.gz:5"),
            ("read", "malformed_json", "books:pg19-train.jsonl.gz:3")]

    run_read([str(path)], check_documents, check_drops)


def test_big_pg19_file_is_split_into_line_ranges_and_every_book_traces_back(tmp_path):
    data = b"".join(pg19_row(n, f"Book {n}", f"Chapter one of book {n}.\n\n" + "Words. " * (n % 300))
                    for n in range(400))
    path = tmp_path / "pg19.jsonl"
    write(path, data)
    splits = books.ReadBookFile(books.Options()).plan(str(path), len(data), split_bytes=len(data) // 8)
    assert len(splits) >= 7

    def check_documents(documents):
        assert len(documents) == 400
        for document in documents:
            meta = document["meta"]
            line = data[meta["offset"]:].split(b"\n", 1)[0]
            assert json.loads(line)["url"] == document["url"]
            assert document["id"] == f"books:pg19.jsonl:{meta['line']}"

    run_read([str(path)], check_documents, _assert_empty, split_bytes=len(data) // 8)


def test_text_books_are_flagged_for_book_dedup_and_trace_to_their_file(tmp_path):
    write(tmp_path / "pg3261.txt", NO_SPACE_VARIANT)

    def check_documents(documents):
        metas = [d["meta"] for d in documents]
        assert [(m["book_dedup"], m["source_file"], m["offset"]) for m in metas] == [
            (True, str(tmp_path / "pg3261.txt"), 0)]

    run_read([str(tmp_path / "*.txt")], check_documents, _assert_empty)
