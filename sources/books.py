"""Books: Project Gutenberg plain-text books (`.txt`, `.txt.gz`, `.txt.bz2`), one book = one document,
and PG-19 style json lines (`.jsonl`/`.json`, optionally compressed), one book per line:
`{"short_book_title", "publication_date", "url", "text"}` as in the Hugging Face `pg19` dataset.

The Gutenberg licence header (everything up to the `*** START OF ... ***` line) and footer
(everything from the `*** END OF ...` line) are stripped while the file is streamed line by line;
the header's Title/Author/Language/Release Date go to `meta`. PG-19 texts come without the licence,
but are passed through the same stripping (other exports keep it). Big uncompressed json-lines
files are split into line ranges.

Book-level near-duplicate removal (paper: drop a book overlapping another by > 90%) is a later,
corpus-wide stage (P4); every book carries `meta["book_dedup"] = True` so that stage applies its
book rule to it.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.plumbing.names import CLEAN_STAGE, READ_STAGE
from llamapipe.sources.c4 import encodes_as_utf8, read_json_lines_split
from llamapipe.sources.reading import (
    FileSplit,
    ReadFileDoFn,
    ReadSourceFiles,
    SourceOptions,
    make_document,
    open_input,
    plan_line_splits,
    provenance,
    short_name,
)

SOURCE = "books"


@dataclass
class Options(SourceOptions):
    # A Gutenberg book is a few hundred KB; anything far bigger is not a single book.
    max_book_bytes: int = 64 * 1024 * 1024


# Markers are ASCII, so they are matched on the raw bytes before the encoding is known.
# "*** START OF THE PROJECT GUTENBERG EBOOK X ***", "***START OF THE PROJECT GUTENBERG EBOOK X***",
# "*** START OF THIS PROJECT GUTENBERG EBOOK X ***", "*** START OF THE COPYRIGHTED PROJECT GUTENBERG ..."
START_MARKER = re.compile(
    rb"^\s*\*+\s*START\s*OF\s*(?:THE|THIS)?\s*(?:COPYRIGHTED\s*)?PROJECT\s*GUTENBERG", re.IGNORECASE
)
# Pre-2000s books: the licence ("small print") ends with "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ...".
SMALL_PRINT_END = re.compile(rb"^\s*\*?\s*END\s*\*?\s*THE\s*SMALL\s*PRINT", re.IGNORECASE)
END_MARKER = re.compile(
    rb"^\s*(?:\*+\s*END\s*OF\s*(?:THE|THIS)?\s*(?:COPYRIGHTED\s*)?PROJECT\s*GUTENBERG"
    rb"|End\s+of\s+(?:the\s+|this\s+)?Project\s+Gutenberg"
    rb"|Ende\s+diese[sr]?\s+Projec?kt\s+Gutenberg)",
    re.IGNORECASE,
)
UTF8_BOM = b"\xef\xbb\xbf"

# Transcriber credits right after the START line are not book text.
CREDIT = re.compile(
    r"^\s*(?:Produced\s+by|E-?text\s+prepared\s+by|This\s+e-?(?:text|book)\s+was\s+(?:produced|prepared)\s+by"
    r"|Transcribed\s+(?:from|by)|Prepared\s+by|Scanned\s+by|Proofread\s+by)",
    re.IGNORECASE,
)
HEADER_FIELD = re.compile(
    r"^(Title|Author|Language|Release\s+Date|Posting\s+Date|Character\s+set\s+encoding)\s*:\s*(.*)$",
    re.IGNORECASE,
)
EBOOK_NUMBER = re.compile(r"\[\s*E-?(?:Book|text)\s*#\s*(\d+)\s*\]", re.IGNORECASE)
# Gutenberg's own file names: "pg972", "972", "44157-0" (UTF-8), "44157-8" (8-bit)
FILE_EBOOK_NUMBER = re.compile(r"^(?:pg(\d+)(?:[-_].*)?|(\d+)(?:-[08])?)$")

LANGUAGE_CODES = {
    "bulgarian": "bg", "catalan": "ca", "chinese": "zh", "croatian": "hr", "czech": "cs", "danish": "da",
    "dutch": "nl", "english": "en", "esperanto": "eo", "finnish": "fi", "french": "fr", "german": "de",
    "greek": "el", "hungarian": "hu", "italian": "it", "japanese": "ja", "latin": "la",
    "norwegian": "no", "polish": "pl", "portuguese": "pt", "romanian": "ro", "russian": "ru",
    "serbian": "sr", "slovenian": "sl", "spanish": "es", "swedish": "sv", "tagalog": "tl",
    "ukrainian": "uk", "welsh": "cy",
}


class BookTooLarge(ValueError):
    pass


@dataclass
class RawBook:
    """A book split into its licence header and its body (still bytes: the encoding is decided on
    the whole text). `has_start`/`has_end`: whether the START/END markers were found."""

    header: list[bytes] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    has_start: bool = False
    has_end: bool = False


def split_book(lines: Iterable[bytes]) -> RawBook:
    """Stream a book's lines into header and body; stops reading at the END marker (the footer is
    the licence). Without a START marker the whole text (up to END) is the body."""
    book = RawBook()
    pending: list[bytes] = []  # lines before a START marker: header if one comes, body otherwise
    for number, line in enumerate(lines):
        if number == 0 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM):]
        if not book.has_start and (START_MARKER.match(line) or SMALL_PRINT_END.match(line)):
            book.has_start = True
            book.header, pending = pending, []
            continue
        if END_MARKER.match(line):
            book.has_end = True
            break
        (book.body if book.has_start else pending).append(line)
    if not book.has_start:
        book.body = pending
    return book


def read_lines(stream, max_bytes: int) -> Iterator[bytes]:
    """Lines of a binary stream; raises BookTooLarge once more than `max_bytes` have been read."""
    total = 0
    while True:
        line = stream.readline(max_bytes - total + 1)
        if not line:
            return
        total += len(line)
        if total > max_bytes:
            raise BookTooLarge(f"more than {max_bytes} bytes before the end of the book")
        yield line


def _codec_name(declared: str) -> str | None:
    """Python codec for a header's "Character set encoding: ISO-646-US (US-ASCII)"-style value."""
    for token in re.findall(r"[A-Za-z0-9_.:-]+", declared):
        try:
            return codecs.lookup(token).name
        except LookupError:
            continue
    return None


def decode_book(header: bytes, body: bytes) -> tuple[str, str, str]:
    """(header text, body text, encoding): UTF-8 if valid, else the charset the header declares,
    else latin-1 (which decodes any byte)."""
    try:
        return header.decode("utf-8"), body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = re.search(rb"Character\s+set\s+encoding\s*:\s*([^\r\n]*)", header, re.IGNORECASE)
    codec = _codec_name(declared.group(1).decode("ascii", "ignore")) if declared else None
    if codec and codec != "utf-8":
        try:
            return header.decode(codec), body.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            pass
    return header.decode("latin-1"), body.decode("latin-1"), "latin-1"


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_header(header: str) -> dict[str, str]:
    """Title, author, language, release date and ebook number from the Gutenberg header."""
    fields: dict[str, str] = {}
    last_key = ""
    for line in header.split("\n"):
        match = HEADER_FIELD.match(line.strip())
        if match:
            last_key = re.sub(r"\s+", "_", match.group(1).lower())
            fields.setdefault(last_key, match.group(2).strip())
        elif last_key in ("title", "author") and line[:1].isspace() and line.strip():
            fields[last_key] += " " + line.strip()  # "Title: X\n       or, Y" continues the title
        else:
            last_key = ""
    meta: dict[str, str] = {}
    for key in ("title", "author", "language"):
        if fields.get(key):
            meta[key] = fields[key]
    date = fields.get("release_date") or fields.get("posting_date") or ""
    number = EBOOK_NUMBER.search(date) or EBOOK_NUMBER.search(header)
    if number:
        meta["ebook_number"] = number.group(1)
    date = EBOOK_NUMBER.sub("", date).strip()
    if date:
        meta["release_date"] = date
    return meta


def clean_body(body: str) -> str:
    """Trim blank lines around the body and the transcriber credit paragraphs at its start."""
    paragraphs = re.split(r"\n[ \t]*\n", body.strip("\n"))
    while paragraphs and (not paragraphs[0].strip() or CREDIT.match(paragraphs[0])):
        paragraphs.pop(0)
    text = "\n\n".join(paragraphs)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def file_stem(path: str) -> str:
    name = short_name(path)
    for suffix in (".gz", ".bz2", ".xz", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def is_json_lines(path: str) -> bool:
    name = short_name(path).lower()
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    return name.endswith((".jsonl", ".json"))


GUTENBERG_URL_NUMBER = re.compile(r"gutenberg\.org/(?:ebooks|files)/(\d+)")


@dataclass
class CleanBook:
    text: str
    meta: dict


def clean_book(raw: RawBook) -> CleanBook:
    """Decode a split book, read its header fields, trim its body."""
    header, body, encoding = decode_book(b"".join(raw.header), b"".join(raw.body))
    meta = parse_header(normalise_newlines(header)) if raw.has_start else {}
    meta.update(encoding=encoding, gutenberg_header=raw.has_start, gutenberg_footer=raw.has_end)
    return CleanBook(clean_body(normalise_newlines(body)), meta)


class ReadBookFile(ReadFileDoFn):
    """A Gutenberg text file -> one document (or one drop); a PG-19 style json-lines file (or a line
    range of one) -> one document or one drop per line."""

    source = SOURCE

    def __init__(self, options: Options):
        super().__init__()
        self._max_bytes = options.max_book_bytes
        self._max_decompressed_bytes = options.max_decompressed_bytes

    def plan(self, path: str, size: int, split_bytes: int) -> list[FileSplit]:
        return plan_line_splits(path, size, split_bytes) if is_json_lines(path) else [FileSplit(path)]

    def read_split(self, split: FileSplit) -> Iterator:
        if is_json_lines(split.path):
            yield from self._read_json_lines(split)
            return
        if not split.whole_file:
            raise ValueError(f"a text book is read whole, got {split.describe()}")
        yield from self._read_text_book(split.path)

    def _read_text_book(self, path: str) -> Iterator:
        stem = file_stem(path)
        doc_id = f"{SOURCE}:{stem}"
        try:
            with open_input(path) as stream:
                raw = split_book(read_lines(stream, self._max_bytes))
        except BookTooLarge as exc:
            yield drop(SOURCE, READ_STAGE, "book_too_large", doc_id, str(exc))
            return
        book = clean_book(raw)
        if not book.text.strip():
            yield drop(SOURCE, CLEAN_STAGE, "empty", doc_id, path)
            return
        number = book.meta.pop("ebook_number", None)
        if number is None:
            from_name = FILE_EBOOK_NUMBER.match(stem)
            number = (from_name.group(1) or from_name.group(2)) if from_name else None
        yield self._document(doc_id, book, f"https://www.gutenberg.org/ebooks/{number}" if number else "",
                             provenance(path, offset=0))

    def _read_json_lines(self, split: FileSplit) -> Iterator:
        name = short_name(split.path)
        for line in read_json_lines_split(split, self._max_bytes, self._max_decompressed_bytes):
            doc_id = f"{SOURCE}:{name}:{line.number}"
            where = f"{split.path} line {line.number}"
            if line.problem:
                reason = "book_too_large" if line.problem == "record_too_large" else line.problem
                yield drop(SOURCE, READ_STAGE, reason, doc_id, where)
                continue
            row = line.value
            text = row.get("text") if isinstance(row, dict) else None
            if not isinstance(text, str):
                yield drop(SOURCE, READ_STAGE, "bad_schema", doc_id, f"{where}: needs a string 'text'")
                continue
            if not encodes_as_utf8(text):
                yield drop(SOURCE, READ_STAGE, "bad_encoding", doc_id, f"{where}: lone surrogate")
                continue
            book = clean_book(split_book(text.encode("utf-8").splitlines(keepends=True)))
            if not book.text.strip():
                yield drop(SOURCE, CLEAN_STAGE, "empty", doc_id, where)
                continue
            url = row.get("url") if isinstance(row.get("url"), str) else ""
            number = GUTENBERG_URL_NUMBER.search(url)
            book.meta.pop("ebook_number", None)
            title = row.get("short_book_title", row.get("title"))
            if isinstance(title, str) and title.strip():
                book.meta["title"] = title.strip()
            date = row.get("publication_date")
            yield self._document(
                doc_id, book, url, provenance(split.path, line=line.number, offset=line.offset),
                ebook_number=number.group(1) if number else None,
                publication_date=date if isinstance(date, int | str) and not isinstance(date, bool) else None,
            )

    @staticmethod
    def _document(doc_id: str, book: CleanBook, url: str, position: dict, **extra) -> dict:
        language = book.meta.get("language", "")
        return make_document(
            SOURCE, doc_id, book.text, url,
            **book.meta, **extra,
            language_code=LANGUAGE_CODES.get(language.strip().lower()),
            # P4 applies the book-level near-duplicate rule (> 90% overlap) to documents with this flag.
            book_dedup=True,
            **position,
        )


class Read(ReadSourceFiles):
    """Gutenberg books and PG-19 style json lines -> {"documents", "dropped"}."""

    dofn_class = ReadBookFile
    step_label = "ReadBooks"
