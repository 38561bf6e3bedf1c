"""C4 reader: json lines `{"text", "url", "timestamp"}` (`.json`, `.jsonl`, optionally gzipped).

Some copies of C4 name the crawl time `date` instead of `timestamp` (e.g. OLMo's fixtures); both are
accepted and stored as meta `timestamp`. The C4 line/document heuristics themselves are a separate
cleaning stage; this module only turns lines into documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam

from llamapipe.sources.base import (
    ReadFileDoFn,
    ReadFiles,
    SourceOptions,
    dropped,
    make_document,
    open_input,
    short_name,
)

SOURCE = "c4"


@dataclass
class Options(SourceOptions):
    # One json line is one document; C4 documents are a few KB. A longer line is a corrupt file (e.g.
    # a missing newline), and reading it whole could exhaust a worker's memory.
    max_line_bytes: int = 10_000_000


def encodes_as_utf8(*values: str) -> bool:
    """False for strings with lone surrogates (json allows `"\\ud800"`); they cannot be written out."""
    try:
        for value in values:
            value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_json_lines(path: str, max_line_bytes: int) -> Iterator[tuple[int, object, str]]:
    """Yield (line number from 1, parsed value, problem) for each non-blank line of a json-lines file.

    `problem` is "" for a good line, else the drop reason: `record_too_large`, `bad_encoding` (not
    UTF-8) or `malformed_json`; the value is then None. Lines are streamed, never the whole file.
    """
    with open_input(path) as stream:
        line_number = 0
        while True:
            line = stream.readline(max_line_bytes + 1)
            if not line:
                return
            line_number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                _skip_rest_of_line(stream)
                yield line_number, None, "record_too_large"
                continue
            if line_number == 1 and line.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark
                line = line[3:]
            if not line.strip():
                continue
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError:
                yield line_number, None, "bad_encoding"
                continue
            try:
                value = json.loads(decoded)
            except (ValueError, RecursionError):
                yield line_number, None, "malformed_json"
                continue
            yield line_number, value, ""


def _skip_rest_of_line(stream) -> None:
    while True:
        chunk = stream.readline(1 << 20)
        if not chunk or chunk.endswith(b"\n"):
            return


class ReadC4FileDoFn(ReadFileDoFn):
    """One C4 json-lines file -> documents, plus drops for lines that are not usable documents."""

    source = SOURCE

    def __init__(self, options: Options):
        super().__init__()
        self._max_line_bytes = options.max_line_bytes

    def read(self, path: str) -> Iterator:
        name = short_name(path)
        for line_number, row, problem in read_json_lines(path, self._max_line_bytes):
            doc_id = f"{SOURCE}:{name}:{line_number}"
            if problem:
                yield dropped(SOURCE, "read", problem, doc_id, f"{path} line {line_number}")
                continue
            yield self._document(row, doc_id, path, line_number)

    def _document(self, row: object, doc_id: str, path: str, line_number: int):
        where = f"{path} line {line_number}"
        text = row.get("text") if isinstance(row, dict) else None
        url = row.get("url") if isinstance(row, dict) else None
        if not isinstance(text, str) or not isinstance(url, str | None):
            return dropped(SOURCE, "read", "bad_schema", doc_id, f"{where}: needs a string 'text'")
        if not encodes_as_utf8(text, url or ""):
            return dropped(SOURCE, "read", "bad_encoding", doc_id, f"{where}: lone surrogate")
        if not text.strip():
            return dropped(SOURCE, "read", "empty", doc_id, where)
        timestamp = row.get("timestamp", row.get("date"))
        return make_document(
            SOURCE, doc_id, text, url or "",
            timestamp=str(timestamp) if timestamp is not None else None,
        )


class Read(beam.PTransform):
    """C4 json-lines files -> {"documents": ..., "dropped": ...}."""

    def __init__(self, options: Options):
        super().__init__()
        self._options = options

    def expand(self, pbegin):
        return pbegin | "ReadC4Files" >> ReadFiles(self._options.inputs, ReadC4FileDoFn(self._options))
