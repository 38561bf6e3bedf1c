"""Stack Exchange reader: `Posts.xml` of a site dump -> one document per question with its answers.

Reading is streamed row by row (a site's Posts.xml reaches ~100 GB), each row parsed on its own
(sources/xmlrecords.py): a malformed row is one drop, `malformed_xml` with its line and cause, and
the rows after it are read. All posts of a thread are in their site's file, so answers are brought to
their question within the file's reader (`ReadThreadsDoFn`): through local partition files of
`site/question id` hashes, one partition held at a time, so a file is recorded on its own by a run
(`pipeline/file_work.py`). (Before per-file records, posts crossed the workers through run files and
HTML was stripped in parallel; now a file's threads are assembled by the worker that reads it, so a
site's file is one unit of parallel work: the dump's 28 kept sites are 28 units, stackoverflow.com's
about half of all posts.)
Document text: "Q: <title>\n<question>\nA: <best answer>\nA: <next answer>..." (RedPajama's format).

Only the `max_sites` largest sites by post count are kept (paper: 28). The count needs every input:
each file's reader emits its site's post count, and a corpus-wide step (`KeepLargestSites`) drops the
threads of the other sites (`site_not_largest`, one drop per thread; drops made while reading, such as
orphan answers, keep their own reason).

Both dump schemas are read: the pre-2021 one and the 2021+ one (which adds `ContentLicense`, and
whose tags are written `|a|b|` instead of `<a><b>`). Only `Id`, `PostTypeId` and, for answers,
`ParentId` are required; a missing `Title`, `Body` or `Score` reads as empty / 0.

Provenance: meta `source_file` and `line` (the question's row in Posts.xml).
"""

from __future__ import annotations

import os
import pickle
import posixpath
import re
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import apache_beam as beam
import lxml.html
from apache_beam.io.filesystems import FileSystems
from lxml import etree

from llamapipe.pipeline.plumbing.drops import DOCUMENTS, DROPPED, drop, outputs, split_drops
from llamapipe.pipeline.plumbing.files_as_shuffle import FILES, SpillDocuments, read_spilled
from llamapipe.pipeline.plumbing.names import CLEAN_STAGE, READ_STAGE
from llamapipe.sources.reading import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    ReadFileDoFn,
    ReadSourceFiles,
    SourceOptions,
    is_compressed,
    make_document,
    open_input,
    provenance,
    reader_work_folder,
    short_name,
)
from llamapipe.sources.xmlrecords import BadRecord, parse_records

SOURCE = "stackexchange"

QUESTION = "1"
ANSWER = "2"
SITE_POSTS = "site_posts"  # side output of the reader: (site, posts) per file
# Posts of a file are grouped into threads through local partition files of about this many bytes
# of Posts.xml each (a partition's posts are held in memory while its threads are assembled).
PARTITION_BYTES = 64 << 20
COMPRESSION_RATIO = 5  # a compressed dump's size is multiplied by this to size its partitions


@dataclass
class Options(SourceOptions):
    min_answers: int = 0
    max_sites: int = 28  # keep the N largest sites by number of posts (questions + answers); 0: all
    # Posts wait in run files and are brought to their thread this many partitions at a time: a worker
    # holds about 1/thread_partitions of the posts at once.
    thread_partitions: int = 512

    def __post_init__(self) -> None:
        if self.thread_partitions < 1:
            raise ValueError(f"stackexchange.thread_partitions must be >= 1, got {self.thread_partitions}")


# ---------------------------------------------------------------------------------------------
# Pure helpers


_SITE_FILE = re.compile(r"^(?P<site>.+?)[_-]Posts\.xml(?:\.(?:gz|bz2|xz))?$", re.IGNORECASE)


def site_name(path: str) -> str:
    """`.../coffee.stackexchange.com/Posts.xml` or `.../coffee.stackexchange.com_Posts.xml` -> the site."""
    match = _SITE_FILE.match(short_name(path))
    if match:
        return match.group("site")
    return posixpath.basename(posixpath.dirname(path.rstrip("/"))) or "unknown"


# Elements that start a new line; paragraph-like ones also leave a blank line before and after.
_PARAGRAPH_TAGS = frozenset({
    "p", "pre", "blockquote", "ul", "ol", "dl", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
})
_LINE_TAGS = frozenset({"div", "li", "dt", "dd", "tr"})
_INVISIBLE_TAGS = frozenset({"script", "style", "head", "title"})
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
_TAG = re.compile(r"<[^>]*>")


class _TextBuilder:
    """Lays text out as a browser would: runs of spaces collapse, blocks start new lines."""

    def __init__(self):
        self._parts: list[str] = []
        self._pending_newlines = 0

    def add(self, text: str, preformatted: bool) -> None:
        if not preformatted:
            text = _SPACES.sub(" ", text)
            # Spaces collapse across element boundaries too ("this</a> <img> tip" has one space).
            if self._pending_newlines or not self._parts or self._parts[-1].endswith(("\n", " ")):
                text = text.lstrip(" ")
        if not text:
            return
        if self._pending_newlines and self._parts:
            self._parts[-1] = self._parts[-1].rstrip(" ")
            self._parts.append("\n" * self._pending_newlines)
        self._pending_newlines = 0
        self._parts.append(text)

    def new_line(self, blank_line: bool = False) -> None:
        self._pending_newlines = max(self._pending_newlines, 2 if blank_line else 1)

    def line_break(self) -> None:
        """<br>: each one ends a line, so two in a row make an empty line."""
        self._pending_newlines = min(self._pending_newlines + 1, 2)

    def text(self) -> str:
        lines = "".join(self._parts).split("\n")
        return _MANY_BLANK_LINES.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment: code blocks kept verbatim, paragraphs as blank-line breaks."""
    if not html or not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        # lxml refuses a few inputs (e.g. NUL characters); dropping the tags is the best we can do.
        return _SPACES.sub(" ", _TAG.sub(" ", html)).strip()
    builder = _TextBuilder()
    preformatted = invisible = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else None  # None: a comment
        if event == "start":
            if tag is None:
                continue
            if tag == "br":
                builder.line_break()
            elif tag in _PARAGRAPH_TAGS or tag in _LINE_TAGS:
                builder.new_line(blank_line=tag in _PARAGRAPH_TAGS)
            preformatted += tag == "pre"
            invisible += tag in _INVISIBLE_TAGS
            if not invisible:
                builder.add(element.text or "", preformatted > 0)
            continue
        if tag is not None:
            if tag in _PARAGRAPH_TAGS or tag in _LINE_TAGS:
                builder.new_line(blank_line=tag in _PARAGRAPH_TAGS)
            preformatted -= tag == "pre"
            invisible -= tag in _INVISIBLE_TAGS
        if not invisible and element is not root:
            builder.add(element.tail or "", preformatted > 0)
    return builder.text()


def format_thread(title: str, question: str, answers: list[str]) -> str:
    """RedPajama's layout: "Q: <title>\n<question>\nA: <answer>\nA: <answer>"."""
    parts = [f"Q: {title}"]
    if question:
        parts.append(question)
    parts.extend(f"A: {answer}" for answer in answers)
    return "\n".join(parts)


def answer_order(answer: dict) -> tuple:
    """Highest score first, numerically (RedPajama sorted the Score *string*, so "9" beat "10");
    ties by post id, oldest first, so the order is deterministic whatever the shuffle did."""
    post_id = answer["id"]
    return (-answer["score"], int(post_id) if post_id.isdigit() else float("inf"), post_id)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def parse_tags(value: str | None) -> list[str]:
    """Tags in both dump spellings: `<a><b>` (until 2021) and `|a|b|` (later dumps)."""
    value = (value or "").strip()
    if value.startswith("<"):
        return re.findall(r"<([^<>]+)>", value)
    return [tag for tag in value.split("|") if tag.strip()]


# ---------------------------------------------------------------------------------------------
# Beam steps


def iter_rows(stream) -> Iterator[tuple[int, dict[str, str]] | BadRecord]:
    """(line number, attributes) of each <row> of a Posts.xml stream, or a BadRecord for a row (or
    the file's head) that does not parse; constant memory.

    Each row is parsed on its own (see xmlrecords), so a malformed row costs only itself. Rows are
    parsed with no DTD, no network and no entity resolution: an entity declared in the file's DOCTYPE
    (external, or a billion-laughs bomb) is undefined in the row that uses it, which is then a drop.
    """
    for item in parse_records(stream, root="posts", tag="row"):
        if isinstance(item, BadRecord):
            yield item
            continue
        piece, element = item
        if not piece.head:
            yield piece.line, dict(element.attrib)


class ReadPostsDoFn(ReadFileDoFn):
    """One Posts.xml -> (site/question id, post) pairs for questions and answers, plus drops."""

    source = SOURCE

    def __init__(self, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES):
        super().__init__()
        self._max_decompressed_bytes = max_decompressed_bytes

    def read(self, path: str) -> Iterator:
        site = site_name(path)
        with open_input(path, self._max_decompressed_bytes) as stream:
            row_number = 0
            for item in iter_rows(stream):
                if isinstance(item, BadRecord) and item.head:
                    yield drop(SOURCE, READ_STAGE, item.reason, f"{SOURCE}:{site}/head",
                               f"{path}: {item.detail}")
                    continue
                row_number += 1
                if isinstance(item, BadRecord):
                    yield drop(SOURCE, READ_STAGE, item.reason, f"{SOURCE}:{site}/row{row_number}",
                               f"{path} row {row_number}, {item.detail}")
                    continue
                line, row = item
                yield from self._post(site, row, row_number, line, path)

    def _post(self, site: str, row: dict[str, str], row_number: int, line: int, path: str) -> Iterator:
        post_type = (row.get("PostTypeId") or "").strip()
        if post_type and post_type not in (QUESTION, ANSWER):
            label = re.sub(r"\D", "", post_type)[:4] or "other"
            beam.metrics.Metrics.counter(SOURCE, f"skipped.post_type_{label}").inc()
            return
        post_id = (row.get("Id") or "").strip()
        parent_id = (row.get("ParentId") or "").strip()
        doc_id = f"{SOURCE}:{site}/{post_id or f'row{row_number}'}"
        if not post_type or not post_id or (post_type == ANSWER and not parent_id):
            yield drop(SOURCE, READ_STAGE, "malformed_row", doc_id,
                       f"{path} row {row_number}: needs Id, PostTypeId (and ParentId for answers)")
            return
        post = {"id": post_id, "score": _int(row.get("Score")), "body": row.get("Body") or ""}
        if post_type == QUESTION:
            meta = {
                "content_license": row.get("ContentLicense"),  # 2021+ dumps only
                "creation_date": row.get("CreationDate"),
                "tags": parse_tags(row.get("Tags")) or None,
                **provenance(path, line=line),
            }
            title = row.get("Title") or ""
            yield f"{site}/{post_id}", {**post, "type": "question", "title": title, "meta": meta}
        else:
            yield f"{site}/{parent_id}", {**post, "type": "answer"}


class AssembleThreadDoFn(beam.DoFn):
    """(site/question id, posts) -> one document: the question and its answers, best first."""

    def __init__(self, options: Options):
        super().__init__()
        self._min_answers = options.min_answers

    def process(self, keyed: tuple[str, Iterable[dict]]) -> Iterator:
        key, posts = keyed
        questions, answers = [], []
        for post in posts:
            (questions if post["type"] == "question" else answers).append(post)
        doc_id = f"{SOURCE}:{key}"
        if not questions:
            # One drop per missing question, whatever the number of answers left without it.
            yield drop(SOURCE, READ_STAGE, "orphan_answer", doc_id,
                       f"{len(answers)} answer(s) whose question is not in the dump")
            return
        question, *repeats = questions
        for _ in repeats:
            yield drop(SOURCE, READ_STAGE, "duplicate_post", doc_id, "question row repeated in the dump")
        answer_texts = [text for text in (html_to_text(a["body"]) for a in sorted(answers, key=answer_order))
                        if text]
        title = _SPACES.sub(" ", question["title"]).strip()  # titles are plain text in the dumps
        body = html_to_text(question["body"])
        if not title and not body:
            yield drop(SOURCE, READ_STAGE, "empty", doc_id)
            return
        if len(answer_texts) < self._min_answers:
            yield drop(SOURCE, CLEAN_STAGE, "too_few_answers", doc_id, f"{len(answer_texts)} answer(s)")
            return
        site, question_id = key.rsplit("/", 1)
        yield make_document(
            SOURCE, doc_id, format_thread(title, body, answer_texts), f"https://{site}/questions/{question_id}",
            site=site, score=question["score"], answer_count=len(answer_texts), **question["meta"],
        )


def site_of(key: str) -> str:
    """`site/question id` -> the site."""
    return key.rsplit("/", 1)[0]


class _ThreadGroups:
    """Posts of one file grouped by `site/question id`, in memory or, past one partition, through
    local temporary files (one per partition of keys, so a worker holds one partition's posts)."""

    def __init__(self, partitions: int):
        self._partitions = max(1, partitions)
        self._memory: dict[str, list[dict]] = defaultdict(list)
        self._folder = None
        self._files: list = []

    def add(self, key: str, post: dict) -> None:
        if self._partitions == 1:
            self._memory[key].append(post)
            return
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="llamapipe-stackexchange-")
            self._files = [open(os.path.join(self._folder.name, f"{i:05d}"), "w+b")
                           for i in range(self._partitions)]
        partition = zlib.crc32(key.encode("utf-8")) % self._partitions
        pickle.dump((key, post), self._files[partition], protocol=pickle.HIGHEST_PROTOCOL)

    def threads(self) -> Iterator[tuple[str, list[dict]]]:
        """(key, posts in file order) for every key, one partition at a time, keys sorted within it."""
        try:
            if self._folder is None:
                for key in sorted(self._memory):
                    yield key, self._memory.pop(key)
                return
            for handle in self._files:
                handle.seek(0)
                grouped: dict[str, list[dict]] = defaultdict(list)
                while True:
                    try:
                        # Safe to unpickle: a private temporary file this object wrote moments ago, in
                        # this process (`add`: plain dicts of the rows lxml parsed here).
                        key, post = pickle.load(handle)
                    except EOFError:
                        break
                    grouped[key].append(post)
                handle.close()
                for key in sorted(grouped):
                    yield key, grouped.pop(key)
        finally:
            self.close()

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


class ReadThreadsDoFn(ReadPostsDoFn):
    """One Posts.xml -> one document per question with its answers, and drops; SITE_POSTS: the file's
    (site, number of posts) once read, for `KeepLargestSites`.

    All posts of a thread are in their site's file, so a file is assembled on its own (recorded per
    file by a run, `pipeline/file_work.py`): posts go to local partition files of about
    `PARTITION_BYTES` of input each (at most `thread_partitions`), read back one partition at a time.
    A file that breaks off keeps the threads of the posts read before the break."""

    extra_outputs = (SITE_POSTS,)

    def __init__(self, options: Options):
        super().__init__(options.max_decompressed_bytes)
        self._assemble = AssembleThreadDoFn(options)
        self._max_partitions = options.thread_partitions

    def _partitions(self, path: str) -> int:
        try:
            size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        except Exception:  # noqa: BLE001 - only sizes the partitions; the read reports a missing file
            size = 0
        if is_compressed(path):
            size *= COMPRESSION_RATIO
        return min(self._max_partitions, 1 + size // PARTITION_BYTES)

    def read(self, path: str) -> Iterator:
        groups = _ThreadGroups(self._partitions(path))
        posts, error = 0, None
        try:
            for item in super().read(path):
                if isinstance(item, tuple):
                    groups.add(*item)
                    posts += 1
                else:
                    yield item
        except Exception as exc:  # noqa: BLE001 - re-raised once the posts read are assembled
            error = exc
        try:
            for key, thread in groups.threads():
                yield from self._assemble.process((key, thread))
        finally:
            groups.close()
        yield beam.pvalue.TaggedOutput(SITE_POSTS, (site_name(path), posts))
        if error is not None:
            raise error


class _KeepSitesDoFn(beam.DoFn):
    """A spilled file's tag -> its threads of the largest sites; a drop for each other thread."""

    def __init__(self, folder: str):
        self._folder = folder

    def process(self, tag: str, largest: list[tuple[str, int]]) -> Iterator:
        kept_sites = {site for site, _ in largest}
        for thread in read_spilled(self._folder, tag):
            if thread["meta"].get("site") in kept_sites:
                yield thread
            else:
                yield drop(SOURCE, READ_STAGE, "site_not_largest", thread["id"],
                           f"not among the {len(kept_sites)} largest sites by posts")


class KeepLargestSites(beam.PTransform):
    """{"documents": threads, SITE_POSTS: (site, posts) per file} -> {"documents", "dropped"}: the
    threads of the `max_sites` largest sites by posts (questions and answers; ties by name), one
    `site_not_largest` drop per thread of another site. The count needs every file: a corpus-wide
    step. (Drops made while reading a file, such as orphan answers, keep their own reason.)

    The threads wait for the count in files of `work_folder` (`SpillDocuments`), and only the files'
    tags wait in the runner: a step that takes the count as a side input starts once the count is done,
    and Beam's local runner holds whatever a later stage will read in the driver's memory. Measured on
    the 75,118 threads of the 1M-document benchmark corpus (`benchmarks/stages.py`): with the threads
    waiting in the runner, the driver peaked at 1,464 MB in this step and the largest worker at 869 MB;
    with them in files, 435 and 428 MB (README, "A run at scale")."""

    def __init__(self, max_sites: int, work_folder: str | None = None):
        super().__init__()
        self._max_sites = max_sites
        self._folder = work_folder

    def expand(self, inputs: dict):
        folder = reader_work_folder(self._folder, SOURCE)
        spilled = inputs[DOCUMENTS] | "Spill" >> beam.ParDo(SpillDocuments(folder)).with_outputs(
            FILES, main="documents")
        largest = (
            inputs[SITE_POSTS]
            | "PostsPerSite" >> beam.CombinePerKey(sum)
            | "Top" >> beam.combiners.Top.Of(self._max_sites, key=lambda kv: (kv[1], kv[0]))
        )
        out = split_drops(spilled[FILES], "KeepLargestSites", _KeepSitesDoFn(folder),
                          beam.pvalue.AsSingleton(largest))
        return outputs(out[DOCUMENTS], out[DROPPED])


class Read(ReadSourceFiles):
    """Stack Exchange Posts.xml files -> {"documents": ..., "dropped": ...}, one document per question:
    each file's threads, then the `max_sites` largest sites."""

    dofn_class = ReadThreadsDoFn
    step_label = "ReadPostsFiles"

    @classmethod
    def corpus_step(cls, options: Options, work_folder: str | None = None) -> KeepLargestSites | None:
        return KeepLargestSites(options.max_sites, work_folder) if options.max_sites > 0 else None
