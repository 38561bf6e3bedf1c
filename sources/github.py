"""GitHub reader: rows of a code export (BigQuery `github_repos` style) with RedPajama's cleaning.

Input rows `{"content", "repo_name", "path", "license", "language"?}` come as json lines (optionally
gzipped) or Parquet. Big uncompressed json-lines files are split into line ranges, Parquet files into
runs of row groups of about `split_bytes` (compressed); gzip files are read whole.

Cleaning follows RedPajama-Data v1 (`data_prep/github`): permissive licences
only, an extension whitelist, leading licence headers removed, files dropped on line-length,
alphanumeric and alphabetic-per-token thresholds, then exact file-level dedup.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow.parquet as pq

from llamapipe.pipeline.plumbing.drops import DOCUMENTS, DROPPED, drop, outputs, split_drops
from llamapipe.pipeline.plumbing.files_as_shuffle import FILES, GroupByFile, SpillDocuments, documents_beside
from llamapipe.pipeline.plumbing.names import CLEAN_STAGE, READ_STAGE
from llamapipe.sources.c4 import encodes_as_utf8, read_json_lines_split
from llamapipe.sources.reading import (
    FileSplit,
    ReadFileDoFn,
    ReadSourceFiles,
    SourceOptions,
    make_document,
    open_raw,
    plan_line_splits,
    provenance,
    reader_work_folder,
    short_name,
)

SOURCE = "github"

# RedPajama kept repositories whose BigQuery licence matched 'mit%', 'bsd%' or 'apache%'; these are
# the keys of those licences in GitHub's licence list (lower case, SPDX-like).
DEFAULT_LICENSES = [
    "mit", "mit-0",
    "apache-2.0", "apache-1.1",
    "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "bsd-4-clause", "0bsd",
]

# RedPajama's whitelist (github_run_filter.py). It matched path suffixes case-sensitively; we match
# case-insensitively, so `.C`/`.H` (C++) also cover `.c`/`.h`, and `README.MD` counts as markdown.
DEFAULT_EXTENSIONS = [
    ".asm", ".bat", ".cmd", ".c", ".h", ".cs", ".cpp", ".hpp", ".c++", ".h++", ".cc", ".hh", ".C", ".H",
    ".cmake", ".css", ".dockerfile", ".f90", ".f", ".f03", ".f08", ".f77", ".f95", ".for", ".fpp", ".go",
    ".hs", ".html", ".java", ".js", ".jl", ".lua", ".md", ".markdown", ".php", ".php3", ".php4", ".php5",
    ".phps", ".phpt", ".pl", ".pm", ".pod", ".perl", ".ps1", ".psd1", ".psm1", ".py", ".rb", ".rs", ".sql",
    ".scala", ".sh", ".bash", ".command", ".zsh", ".ts", ".tsx", ".tex", ".vb", "Dockerfile", "Makefile",
    ".xml", ".rst", ".m", ".smali",
]

# Spellings of the allowed licences seen in other exports, mapped to GitHub's keys.
LICENSE_ALIASES = {
    "apache": "apache-2.0",
    "apache-2": "apache-2.0",
    "apache2": "apache-2.0",
    "apache-license-2.0": "apache-2.0",
    "apache-license-version-2.0": "apache-2.0",
    "mit-license": "mit",
    "the-mit-license": "mit",
    "bsd": "bsd-3-clause",
    "bsd-2": "bsd-2-clause",
    "bsd-3": "bsd-3-clause",
    "new-bsd": "bsd-3-clause",
    "simplified-bsd": "bsd-2-clause",
}

# Documentation formats whose `#`/`--` lines are headings and rules, not comments.
PROSE_EXTENSIONS = (".md", ".markdown", ".rst", ".txt", ".pod", ".tex")

PARQUET_BATCH_ROWS = 1024
FIELDS = ("content", "repo_name", "path", "license", "language")


@dataclass
class Options(SourceOptions):
    licenses: list[str] = field(default_factory=lambda: list(DEFAULT_LICENSES))
    extensions: list[str] = field(default_factory=lambda: list(DEFAULT_EXTENSIONS))
    max_line_length: int = 1000
    max_mean_line_length: float = 100
    min_alphanumeric_fraction: float = 0.25
    min_alpha_per_token: float = 1.5
    max_line_bytes: int = 50_000_000  # a json line longer than this is a corrupt file, not a source file


# ---------------------------------------------------------------------------------------------
# Pure cleaning helpers


_SPDX_OR = re.compile(r"\s+or\s+", re.IGNORECASE)


def normalize_license(name: str) -> str:
    """'Apache License 2.0' -> 'apache-license-2.0' -> 'apache-2.0'; 'MIT' -> 'mit'."""
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    return LICENSE_ALIASES.get(key, key)


def license_names(value: object) -> list[str]:
    """The licence field as a list. Exports hold one key, a list or an SPDX `a OR b` expression (dual
    licensing), or nothing."""
    if isinstance(value, list | tuple):
        return [name for item in value if isinstance(item, str) for name in license_names(item)]
    if isinstance(value, str):
        return [name.strip() for name in _SPDX_OR.split(value.strip().strip("()")) if name.strip()]
    return []


def license_label(value: object) -> str | None:
    """The licence for meta, always one string (an SPDX `OR` expression when there are several)."""
    return " OR ".join(license_names(value)) or None


def license_allowed(value: object, allowed: Iterable[str]) -> bool:
    """Allowed when any of the file's licences is (a dual-licensed file may be used under either)."""
    allowed_keys = {normalize_license(name) for name in allowed}
    return any(normalize_license(name) in allowed_keys for name in license_names(value))


def extension_allowed(path: str, extensions: Iterable[str]) -> bool:
    name = posixpath.basename(path).lower()
    return name.endswith(tuple(extension.lower() for extension in extensions))


# Words of licence boilerplate. Kept specific: a leading "# Check user permissions" is code's own comment.
_LICENSE_WORDS = re.compile(
    r"licen[cs]|copyright|©|spdx|all rights reserved|warrant|permission (?:is hereby granted|notice)",
    re.IGNORECASE,
)
_SHEBANG = re.compile(r"#![^\n]*(?:\n|\Z)")
_BLANK_LINES = re.compile(r"(?:[ \t]*\r?\n)+")
_BLOCK_COMMENT = re.compile(r"[ \t]*/\*.*?\*/[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# A run of line comments. `#` lines that are C preprocessor directives are code, not comments.
_PREPROCESSOR = r"[ \t]*(?:include|define|undef|ifn?def|if|elif|else|endif|pragma|import|error|line)\b"
_LINE_COMMENTS = re.compile(rf"(?:[ \t]*(?://|--|#(?!{_PREPROCESSOR}))[^\n]*(?:\n|\Z))+")


def strip_license_header(content: str, path: str = "") -> str:
    """Remove leading comment blocks that are licence/copyright boilerplate; keep a shebang line.

    Only comments that mention licence words are removed (RedPajama greedily dropped every leading
    `#`/`//`/`--` line, which also ate C `#include`s, and any `/* */` with 'copyright' in the first
    100 lines, wherever it was). Prose files are left alone: a Markdown `# Licence` is a heading.
    """
    if path and extension_allowed(path, PROSE_EXTENSIONS):
        return content
    shebang = _SHEBANG.match(content) if content.startswith("#!") else None
    prefix = shebang.group(0) if shebang else ""
    rest = content[len(prefix):]
    removed = False
    while True:
        blank = _BLANK_LINES.match(rest)
        start = blank.end() if blank else 0
        comment = _BLOCK_COMMENT.match(rest, start) or _LINE_COMMENTS.match(rest, start)
        if not comment or not _LICENSE_WORDS.search(comment.group(0)):
            break
        rest = rest[comment.end():]
        removed = True
    if not removed:
        return content
    blank = _BLANK_LINES.match(rest)
    return prefix + (rest[blank.end():] if blank else rest)


def quality_problem(content: str, options: Options) -> str:
    """The first RedPajama quality threshold `content` fails, as a drop reason, or ""."""
    lines = content.splitlines()
    if not lines:
        return "empty"
    if max(map(len, lines)) > options.max_line_length:
        return "line_too_long"
    # RedPajama: len(content) / number of lines (newline characters included).
    if len(content) / len(lines) > options.max_mean_line_length:
        return "mean_line_too_long"
    if sum(map(str.isalnum, content)) / len(content) < options.min_alphanumeric_fraction:
        return "low_alphanumeric"
    # RedPajama divided by the number of tokens of the Pythia (GPT-NeoX) BPE tokenizer; we count
    # whitespace-separated words, which needs no tokenizer. A file has fewer words than BPE tokens,
    # so our ratio is higher and the same 1.5 threshold drops fewer files.
    tokens = len(content.split())
    if tokens == 0 or sum(map(str.isalpha, content)) / tokens < options.min_alpha_per_token:
        return "low_alpha_per_token"
    return ""


def language_name(value: object) -> str | None:
    """`language` as one name: a string, or the biggest of BigQuery's [{name, bytes}] list."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, list | tuple) and value:
        named = [item for item in value if isinstance(item, dict) and isinstance(item.get("name"), str)]
        if named:
            return max(named, key=lambda item: item.get("bytes") or 0)["name"]
        if isinstance(value[0], str):
            return value[0]
    return None


def content_key(document: dict) -> str:
    return hashlib.sha256(document["text"].encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Beam steps


def is_parquet(path: str) -> bool:
    return path.lower().endswith(".parquet")


def plan_row_group_splits(path: str, split_bytes: int) -> list[FileSplit]:
    """Runs of consecutive row groups of about `split_bytes` compressed bytes (at least one row group
    each). Reads only the file's footer. `start`/`stop` are row-group numbers."""
    with closing(open_raw(path)) as raw:
        metadata = pq.ParquetFile(raw).metadata
    splits: list[FileSplit] = []
    first_group, rows_before, rows, size = 0, 0, 0, 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        size += sum(row_group.column(i).total_compressed_size for i in range(row_group.num_columns))
        rows += row_group.num_rows
        if size >= split_bytes or group == metadata.num_row_groups - 1:
            splits.append(FileSplit(path, first_group, group + 1, rows_before))
            first_group, rows_before, rows, size = group + 1, rows_before + rows, 0, 0
    if len(splits) <= 1:
        return [FileSplit(path)]
    return splits


def iter_parquet_rows(split: FileSplit) -> Iterator[tuple[int, int, dict]]:
    """(row group, row number in the file, row) of a Parquet file or of a run of its row groups, one
    batch at a time (never a whole row group in memory)."""
    with closing(open_raw(split.path)) as raw:
        parquet = pq.ParquetFile(raw)
        columns = [name for name in FIELDS if name in parquet.schema_arrow.names]
        stop = parquet.metadata.num_row_groups if split.stop is None else split.stop
        row = split.records_before
        for group in range(split.start, stop):
            batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group], columns=columns)
            for batch in batches:
                for values in batch.to_pylist():
                    yield group, row, values
                    row += 1


class ReadCodeFileDoFn(ReadFileDoFn):
    """An export file (json lines or Parquet), or a part of one -> one raw document per source file,
    plus drops."""

    source = SOURCE

    def __init__(self, options: Options):
        super().__init__()
        self._max_line_bytes = options.max_line_bytes
        self._max_decompressed_bytes = options.max_decompressed_bytes

    def plan(self, path: str, size: int, split_bytes: int) -> list[FileSplit]:
        if is_parquet(path):
            return plan_row_group_splits(path, split_bytes) if size > split_bytes else [FileSplit(path)]
        return plan_line_splits(path, size, split_bytes)

    def read_split(self, split: FileSplit) -> Iterator:
        path, name = split.path, short_name(split.path)
        if is_parquet(path):
            for group, row_number, row in iter_parquet_rows(split):
                yield self._document(row, f"{SOURCE}:{name}:{row_number}", f"{path} row {row_number}",
                                     provenance(path, row_group=group, row=row_number))
            return
        for line in read_json_lines_split(split, self._max_line_bytes, self._max_decompressed_bytes):
            where = f"{path} line {line.number}"
            if line.problem:
                yield drop(SOURCE, READ_STAGE, line.problem, f"{SOURCE}:{name}:{line.number}", where)
            else:
                yield self._document(line.value, f"{SOURCE}:{name}:{line.number}", where,
                                     provenance(path, line=line.number, offset=line.offset))

    def _document(self, row: object, fallback_id: str, where: str, position: dict):
        if not isinstance(row, dict):
            return drop(SOURCE, READ_STAGE, "bad_schema", fallback_id, f"{where}: not an object")
        content, repo, path = row.get("content"), row.get("repo_name"), row.get("path")
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8")
            except UnicodeDecodeError:
                return drop(SOURCE, READ_STAGE, "bad_encoding", fallback_id, f"{where}: content is not UTF-8")
        if not all(isinstance(value, str) for value in (content, repo, path)) or not repo or not path:
            return drop(SOURCE, READ_STAGE, "bad_schema", fallback_id,
                        f"{where}: needs string content, repo_name and path")
        doc_id = f"{SOURCE}:{repo}/{path}"
        if not encodes_as_utf8(content, repo, path):
            return drop(SOURCE, READ_STAGE, "bad_encoding", doc_id, f"{where}: lone surrogate")
        return make_document(
            SOURCE, doc_id, content, f"https://github.com/{repo}/blob/HEAD/{path}",
            repo_name=repo, path=path, license=license_label(row.get("license")),
            language=language_name(row.get("language")), **position,
        )


class CleanCodeFileDoFn(beam.DoFn):
    """RedPajama's per-file cleaning: licence and extension filters, header removal, quality filters."""

    def __init__(self, options: Options):
        super().__init__()
        self._options = options

    def process(self, document: dict) -> Iterator:
        options, meta, doc_id = self._options, document["meta"], document["id"]
        if not license_allowed(meta.get("license"), options.licenses):
            yield drop(SOURCE, CLEAN_STAGE, "license_not_allowed", doc_id, f"license {meta.get('license')!r}")
            return
        if not extension_allowed(meta["path"], options.extensions):
            yield drop(SOURCE, CLEAN_STAGE, "extension_not_allowed", doc_id, meta["path"])
            return
        text = strip_license_header(document["text"], meta["path"])
        problem = "empty" if not text.strip() else quality_problem(text, options)
        if problem:
            yield drop(SOURCE, CLEAN_STAGE, problem, doc_id)
            return
        yield {**document, "text": text}


class MarkCopiesDoFn(beam.DoFn):
    """(content hash, (id, file tag) of each file with that content) -> (file tag, (id, digest)) for
    every copy but the one with the smallest id: the marks that `KeepFirstOfDuplicatesDoFn` applies.

    One pass, one id held: a hot key (the same file in thousands of forks) stays cheap."""

    def process(self, keyed: tuple[str, Iterable[tuple[str, str]]]) -> Iterator:
        digest, copies = keyed
        kept = None
        for copy in copies:
            if kept is None:
                kept = copy
                continue
            if copy[0] < kept[0]:
                kept, copy = copy, kept
            doc_id, tag = copy
            yield tag, (doc_id, digest)


class KeepFirstOfDuplicatesDoFn(beam.DoFn):
    """(file tag, {files, copies}) -> each file of the spilled file: itself, or a drop when it is a
    marked copy."""

    def __init__(self, folder: str):
        self._folder = folder

    def process(self, element) -> Iterator:
        grouped, documents = documents_beside(self._folder, element, f"{SOURCE} exact dedup")
        copies = dict(grouped["copies"])
        for document in documents:
            digest = copies.get(document["id"])
            if digest is None:
                yield document
            else:
                yield drop(SOURCE, CLEAN_STAGE, "exact_duplicate_file", document["id"], f"sha256 {digest}")


class ReadCleanCodeFileDoFn(ReadCodeFileDoFn):
    """One split of a code export -> its files, read and cleaned (`CleanCodeFileDoFn`): everything
    GitHub's recipe does to a file on its own. The per-file stage of a run records its output
    (`pipeline/file_work.py`); the exact dedup across files is `ExactDedup`, a corpus-wide step."""

    def __init__(self, options: Options):
        super().__init__(options)
        self._clean = CleanCodeFileDoFn(options)

    def read_split(self, split: FileSplit) -> Iterator:
        for item in super().read_split(split):
            if isinstance(item, dict):
                yield from self._clean.process(item)
            else:
                yield item


class ExactDedup(beam.PTransform):
    """Cleaned GitHub files -> {"documents", "dropped"}: one file of each content, the smallest id.

    The exact dedup shuffles only (content hash, id, file) records: the cleaned files wait in
    `work_folder` (`pipeline/plumbing/files_as_shuffle.py`; Beam's local runners hold whatever crosses a
    GroupByKey in their memory, and a GitHub export is hundreds of GB). The pipeline passes a folder of its
    work folder; without one, a local temporary folder (for tests and local runners only)."""

    def __init__(self, work_folder: str | None = None):
        super().__init__()
        self._folder = work_folder

    def expand(self, inputs: dict):
        documents = inputs[DOCUMENTS]
        folder = reader_work_folder(self._folder, SOURCE)
        # Dedup after cleaning: files that differ only in their licence header are duplicates too.
        spilled = documents | "Spill" >> beam.ParDo(SpillDocuments(folder)).with_outputs(
            FILES, main="documents")
        copies = (
            spilled.documents
            | "KeyByContentHash" >> beam.MapTuple(
                lambda tag, document: (content_key(document), (document["id"], tag)))
            | "GroupByContentHash" >> beam.GroupByKey()
            | "MarkCopies" >> beam.ParDo(MarkCopiesDoFn())
        )
        by_file = {"copies": copies} | "JoinCopies" >> GroupByFile(spilled[FILES])
        deduped = split_drops(by_file, "KeepFirstOfDuplicates", KeepFirstOfDuplicatesDoFn(folder))
        return outputs(deduped[DOCUMENTS], deduped[DROPPED])


class Read(ReadSourceFiles):
    """GitHub code exports -> {"documents": ..., "dropped": ...}: each file read and cleaned, then the
    exact dedup across files."""

    dofn_class = ReadCleanCodeFileDoFn
    step_label = "ReadCodeFiles"

    @classmethod
    def corpus_step(cls, options: Options, work_folder: str | None = None) -> ExactDedup:
        return ExactDedup(work_folder)
