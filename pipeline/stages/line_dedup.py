"""CCNet's line-level dedup, across the whole corpus, as Beam shuffles.

CCNet (Wenzek et al. 2019; cc_net/dedup.py): every line is normalised (`normalize_for_dedup`:
stripped, lower case, digits -> 0, CCNet's list of Unicode punctuation and non-printing characters
removed; no accent stripping, no Unicode normal form) and hashed (first 8 bytes of SHA-1). A line
whose hash occurs in two or more documents is removed from all of them, first occurrence included; a
line repeated inside one document only keeps its first occurrence. Documents left with no line are
dropped. tests/pipeline/stages/test_line_dedup_ccnet.py holds a re-implementation of cc_net's code and
compares the two on real text: the same normalised lines and the same lines removed.

Differences, on purpose (each tested there):
- occurrences are counted per distinct document *text*, not per document. Two byte-identical copies
  of a page would otherwise strip each other empty, and the copy that document dedup would keep
  would be lost with the other. Counted once, their lines survive, and exact dedup
  (pipeline/stages/dedup/deduplicate.py) keeps one copy;
- `min_chars_after` (default 300) drops a document left shorter than that. CCNet has no length rule
  after dedup: its 300 characters are checked when a page is read (`CCShardReader(min_len=300)`, our
  `ccnet_min_length` rule); 0 gives CCNet's behaviour;
- a document left with blank lines only is dropped (`no_lines_left`); CCNet keeps it, but its WET
  reader skips blank lines, so it never has one;
- the scope is the whole run; cc_net's mine.py dedups each shard against its group of shards.

Global, bounded: each document is spilled to a file (`plumbing/files_as_shuffle.py`) and emits (line hash,
(text hash, id, file tag)) for its distinct lines. These occurrences, one per line of the corpus, go to their
partition of line hashes through run files (`plumbing/group_through_files.py`), not a GroupByKey, which Beam's
local runners hold in the runner's memory several times over. Each partition is read back and decides,
per line, whether two distinct texts hold it; the marks are grouped by file and each file is read
back beside its marks. No step holds more than one partition's occurrences (`line_dedup.partitions`)
or one file's marks, and no document crosses a shuffle.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import apache_beam as beam

from llamapipe.pipeline.config import LineDedupConfig
from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.plumbing.files_as_shuffle import FILES, GroupByFile, SpillDocuments, documents_beside
from llamapipe.pipeline.plumbing.group_through_files import GroupThroughFiles, HashPartition, read_records
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.registry import LINE_DEDUP

STAGE = LINE_DEDUP.name
RUNS_NAMESPACE = "line_runs"  # run files' suffix and counter namespace

# CCNet's UNICODE_PUNCT keys (cc_net/text_normalizer.py) and the C0/C1 control characters.
_CCNET_PUNCT = "，。、„”“«»１」「《》´∶：？！（）；–—．～’…━〈〉【】％►"
_CONTROL = "".join(map(chr, [*range(0, 32), *range(127, 160)]))
_PUNCT_OR_NON_PRINTING = re.compile(f"[{re.escape(_CCNET_PUNCT + _CONTROL)}]")
_DIGIT = re.compile(r"\d")


def normalize_for_dedup(line: str) -> str:
    """CCNet's line normalisation for dedup."""
    line = line.strip()
    if not line:
        return line
    line = _DIGIT.sub("0", line.lower())
    return _PUNCT_OR_NON_PRINTING.sub("", line)


def line_hash(line: str) -> bytes:
    """First 8 bytes of SHA-1 of the normalised line (CCNet's hash)."""
    return hashlib.sha1(normalize_for_dedup(line).encode("utf-8")).digest()[:8]


def text_hash(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()[:12]


def remove_lines(text: str, duplicated: set[bytes]) -> tuple[str, int]:
    """The text without duplicated lines and without repeats of a line inside it (the first stays).
    Returns (text, number of lines removed)."""
    seen: set[bytes] = set()
    kept, removed = [], 0
    for line in text.split("\n"):
        h = line_hash(line)
        if h in duplicated or h in seen:
            removed += 1
        else:
            kept.append(line)
        seen.add(h)
    return "\n".join(kept), removed


class LineOccurrences(beam.DoFn):
    """(file tag, document) -> (line hash, (text hash, document id, file tag)) for each distinct line
    of a document of the configured sources."""

    def __init__(self, sources: set[str]):
        self._sources = sources

    def process(self, spilled: tuple[str, dict]):
        tag, doc = spilled
        if doc["source"] not in self._sources:
            return
        identity = text_hash(doc["text"])
        for h in {line_hash(line) for line in doc["text"].split("\n")}:
            yield h, (identity, doc["id"], tag)


class MarkDuplicatedLines(beam.DoFn):
    """(partition, frames of its line occurrences) -> (file tag, (document id, line hash)) for every
    holder of a line that two distinct texts hold."""

    def process(self, element):
        _, frames = element
        holders: dict[bytes, list[tuple]] = defaultdict(list)
        for h, holder in read_records(frames):
            holders[h].append(holder)
        for h, line_holders in holders.items():
            if _two_distinct_texts(line_holders):
                for _, doc_id, tag in line_holders:
                    yield tag, (doc_id, h)


def _two_distinct_texts(holders) -> bool:
    """Reads the holders only until a second distinct text shows up."""
    first = None
    for identity, *_ in holders:
        if first is None:
            first = identity
        elif identity != first:
            return True
    return False


class RemoveDuplicatedLines(beam.DoFn):
    """(file tag, {files, marks}) -> the spilled file's documents, without their duplicated lines."""

    def __init__(self, folder: str, sources: set[str], min_chars_after: int):
        self._folder = folder
        self._sources = sources
        self._min_chars = min_chars_after

    def process(self, element):
        grouped, documents = documents_beside(self._folder, element, STAGE)
        duplicated: dict[str, set[bytes]] = {}
        for doc_id, h in grouped["marks"]:
            duplicated.setdefault(doc_id, set()).add(h)
        for doc in documents:
            if doc["source"] not in self._sources:
                yield doc
                continue
            text, removed = remove_lines(doc["text"], duplicated.get(doc["id"], set()))
            source = doc["source"]
            if removed:
                LineDedup.counter(source, "lines_removed").inc(removed)
            if not text.strip():
                detail = f"{removed} lines removed"
                yield drop(source, STAGE, "no_lines_left", doc["id"], detail, doc["text"])
            elif len(text.strip()) < self._min_chars:
                detail = f"{len(text.strip())} characters left after removing {removed} lines"
                yield drop(source, STAGE, "too_short_after_line_dedup", doc["id"], detail, doc["text"])
            else:
                yield {**doc, "text": text} if removed else doc


class LineDedup(Stage):
    """Documents of the configured sources lose their duplicated lines; others pass unchanged. Every
    document goes through a spilled file in `work_folder` (one output from one step: a Flatten of
    the two parts would be held in memory by the local runners)."""

    entry = LINE_DEDUP

    def __init__(self, options: LineDedupConfig, work_folder: str):
        super().__init__()
        self._options = options
        self._folder = work_folder

    def expand(self, docs):
        sources = set(self._options.sources)
        if not self._options.enabled or not sources:
            return self.unchanged(docs)
        spilled = docs | "Spill" >> beam.ParDo(SpillDocuments(self._folder)).with_outputs(FILES, main="docs")
        marks = (
            spilled.docs
            | "LineOccurrences" >> beam.ParDo(LineOccurrences(sources))
            | "GroupByLine" >> GroupThroughFiles(self._folder, HashPartition(self._options.partitions),
                                                 RUNS_NAMESPACE)
            | "MarkDuplicatedLines" >> beam.ParDo(MarkDuplicatedLines())
        )
        by_file = {"marks": marks} | "JoinMarks" >> GroupByFile(spilled[FILES])
        return self.split(by_file, "RemoveLines", RemoveDuplicatedLines(
            self._folder, sources, self._options.min_chars_after))
