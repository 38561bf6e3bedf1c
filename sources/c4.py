"""C4 reader: json lines `{"text", "url", "timestamp"}` (`.json`, `.jsonl`, optionally gzipped).

Some copies of C4 name the crawl time `date` instead of `timestamp` (e.g. OLMo's fixtures); both are
accepted and stored as meta `timestamp`. The C4 line/document heuristics themselves are a separate
cleaning stage; this module only turns lines into documents.

Uncompressed files are split into line ranges of about `split_bytes` (`plan_line_splits`). Gzip
files are read whole: a deflate stream cannot be entered in the middle, and C4 is published as 1024
files of ~300 MB per split of `en`, so there are enough files to keep every worker busy. Document
ids are `c4:<file>:<line>` whichever way a file was read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.plumbing.names import READ_STAGE
from llamapipe.sources.reading import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    FileSplit,
    ReadFileDoFn,
    ReadSourceFiles,
    SourceOptions,
    make_document,
    open_split,
    plan_line_splits,
    provenance,
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


class JsonLine(NamedTuple):
    number: int  # line number in the file, from 1
    offset: int  # byte offset of the line in the (decompressed) file
    value: object  # the parsed value, None when `problem` is set
    problem: str  # "" for a good line, else the drop reason


def read_json_lines(stream: BinaryIO, max_line_bytes: int, lines_before: int = 0,
                    offset: int = 0) -> Iterator[JsonLine]:
    """Parse each non-blank line of a json-lines stream (a whole file, or a part of one that starts
    at byte `offset`, after `lines_before` lines).

    `problem` is `record_too_large`, `bad_encoding` (not UTF-8) or `malformed_json` for a line that
    is not usable. Lines are streamed, never the whole file.
    """
    line_number = lines_before
    while True:
        line_offset = offset
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        offset += len(line)
        line_number += 1
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            offset += _skip_rest_of_line(stream)
            yield JsonLine(line_number, line_offset, None, "record_too_large")
            continue
        if line_number == 1 and line.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark
            line = line[3:]
        if not line.strip():
            continue
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError:
            yield JsonLine(line_number, line_offset, None, "bad_encoding")
            continue
        try:
            value = json.loads(decoded)
        except (ValueError, RecursionError):
            yield JsonLine(line_number, line_offset, None, "malformed_json")
            continue
        yield JsonLine(line_number, line_offset, value, "")


def read_json_lines_split(split: FileSplit, max_line_bytes: int,
                          max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> Iterator[JsonLine]:
    """The json lines of one split (see `plan_line_splits`); a compressed file stops with
    `DecompressionLimitError` past `max_bytes` decompressed."""
    with open_split(split, max_bytes) as stream:
        yield from read_json_lines(stream, max_line_bytes, split.records_before, split.start)


def _skip_rest_of_line(stream) -> int:
    """Read to the end of the current line; returns the number of bytes skipped."""
    skipped = 0
    while True:
        chunk = stream.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


class ReadC4FileDoFn(ReadFileDoFn):
    """A C4 json-lines file, or a line range of one -> documents, plus drops for unusable lines."""

    source = SOURCE

    def __init__(self, options: Options):
        super().__init__()
        self._max_line_bytes = options.max_line_bytes
        self._max_decompressed_bytes = options.max_decompressed_bytes

    def plan(self, path: str, size: int, split_bytes: int) -> list[FileSplit]:
        return plan_line_splits(path, size, split_bytes)

    def read_split(self, split: FileSplit) -> Iterator:
        name = short_name(split.path)
        for line in read_json_lines_split(split, self._max_line_bytes, self._max_decompressed_bytes):
            doc_id = f"{SOURCE}:{name}:{line.number}"
            if line.problem:
                yield drop(SOURCE, READ_STAGE, line.problem, doc_id, f"{split.path} line {line.number}")
                continue
            yield self._document(line, doc_id, split.path)

    def _document(self, line: JsonLine, doc_id: str, path: str):
        where = f"{path} line {line.number}"
        row = line.value
        text = row.get("text") if isinstance(row, dict) else None
        url = row.get("url") if isinstance(row, dict) else None
        if not isinstance(text, str) or not isinstance(url, str | None):
            return drop(SOURCE, READ_STAGE, "bad_schema", doc_id, f"{where}: needs a string 'text'")
        if not encodes_as_utf8(text, url or ""):
            return drop(SOURCE, READ_STAGE, "bad_encoding", doc_id, f"{where}: lone surrogate")
        if not text.strip():
            return drop(SOURCE, READ_STAGE, "empty", doc_id, where)
        timestamp = row.get("timestamp", row.get("date"))
        return make_document(
            SOURCE, doc_id, text, url or "",
            timestamp=str(timestamp) if timestamp is not None else None,
            **provenance(path, line=line.number, offset=line.offset),
        )


class Read(ReadSourceFiles):
    """C4 json-lines files -> {"documents": ..., "dropped": ...}."""

    dofn_class = ReadC4FileDoFn
    step_label = "ReadC4Files"
