"""Stack Exchange reader: `Posts.xml` of a site dump -> one document per question with its answers.

Reading is streamed row by row (a site's Posts.xml reaches ~100 GB), each row parsed on its own
(sources/xmlrecords.py): a malformed row is one drop, `malformed_xml` with its line and cause, and
the rows after it are read. Answers are brought to their question through run files
(`pipeline/run_files.py`): each post goes to a partition of `site/question id` hashes
(`thread_partitions`), the runner shuffles only references to the runs, and a worker reads one
partition at a time and assembles its threads. (Beam's local runners hold whatever crosses a
GroupByKey in their memory; a site's posts are tens of GB.) HTML is stripped after the shuffle:
reading one file is serial, turning posts into text then runs in parallel.
Document text: "Q: <title>\\n<question>\\nA: <best answer>\\nA: <next answer>..." (RedPajama's format).

Only the `max_sites` largest sites by post count are kept (paper: 28). The count needs every input:
posts are counted per site in the pipeline, the largest sites become a side input, and the questions
of the other sites are dropped (`site_not_largest`), one drop per question, as their partition is
read.

Both dump schemas are read: the pre-2021 one and the 2021+ one (which adds `ContentLicense`, and
whose tags are written `|a|b|` instead of `<a><b>`). Only `Id`, `PostTypeId` and, for answers,
`ParentId` are required; a missing `Title`, `Body` or `Score` reads as empty / 0.

Provenance: meta `source_file` and `line` (the question's row in Posts.xml).
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import apache_beam as beam
import lxml.html
from lxml import etree

from llamapipe.pipeline.run_files import GroupThroughFiles, TextHashPartition, read_records
from llamapipe.sources.base import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    DROPPED,
    ReadFileDoFn,
    ReadFiles,
    SourceOptions,
    dropped,
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
                    yield dropped(SOURCE, "read", item.reason, f"{SOURCE}:{site}/head",
                                  f"{path}: {item.detail}")
                    continue
                row_number += 1
                if isinstance(item, BadRecord):
                    yield dropped(SOURCE, "read", item.reason, f"{SOURCE}:{site}/row{row_number}",
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
            yield dropped(SOURCE, "read", "malformed_row", doc_id,
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
            yield dropped(SOURCE, "read", "orphan_answer", doc_id,
                          f"{len(answers)} answer(s) whose question is not in the dump")
            return
        question, *repeats = questions
        for _ in repeats:
            yield dropped(SOURCE, "read", "duplicate_post", doc_id, "question row repeated in the dump")
        answer_texts = [text for text in (html_to_text(a["body"]) for a in sorted(answers, key=answer_order))
                        if text]
        title = _SPACES.sub(" ", question["title"]).strip()  # titles are plain text in the dumps
        body = html_to_text(question["body"])
        if not title and not body:
            yield dropped(SOURCE, "read", "empty", doc_id)
            return
        if len(answer_texts) < self._min_answers:
            yield dropped(SOURCE, "clean", "too_few_answers", doc_id, f"{len(answer_texts)} answer(s)")
            return
        site, question_id = key.rsplit("/", 1)
        yield make_document(
            SOURCE, doc_id, format_thread(title, body, answer_texts), f"https://{site}/questions/{question_id}",
            site=site, score=question["score"], answer_count=len(answer_texts), **question["meta"],
        )


def site_of(key: str) -> str:
    """`site/question id` -> the site."""
    return key.rsplit("/", 1)[0]


class LargestSites(beam.PTransform):
    """Posts -> one list of the `max_sites` largest sites by posts, (site, posts), ties by name."""

    def __init__(self, max_sites: int):
        super().__init__()
        self._max_sites = max_sites

    def expand(self, posts):
        return (
            posts
            | "SiteOfPost" >> beam.MapTuple(lambda key, _: site_of(key))
            | "CountPostsPerSite" >> beam.combiners.Count.PerElement()
            | "Top" >> beam.combiners.Top.Of(self._max_sites, key=lambda kv: (kv[1], kv[0]))
        )


class AssemblePartitionDoFn(beam.DoFn):
    """(partition, run frames) -> the threads of that partition: posts of the largest sites go to
    `AssembleThreadDoFn`, each question of another site becomes one drop (its answers are part of that
    question's thread, so they go with it, uncounted). Holds one partition's posts."""

    def __init__(self, options: Options):
        super().__init__()
        self._assemble = AssembleThreadDoFn(options)
        self._filter_sites = options.max_sites > 0

    def process(self, element, largest: list[tuple[str, int]] | None = None) -> Iterator:
        _, frames = element
        kept_sites = {site for site, _ in largest or []}
        threads: dict[str, list[dict]] = defaultdict(list)
        for key, post in read_records(sorted(frames)):
            if self._filter_sites and site_of(key) not in kept_sites:
                if post["type"] == "question":
                    yield dropped(SOURCE, "read", "site_not_largest", f"{SOURCE}:{key}",
                                  f"not among the {len(kept_sites)} largest sites by posts")
                continue
            threads[key].append(post)
        for key in sorted(threads):
            yield from self._assemble.process((key, threads.pop(key)))


class Read(beam.PTransform):
    """Stack Exchange Posts.xml files -> {"documents": ..., "dropped": ...}, one document per question.
    `work_folder` holds the posts' run files while the pipeline runs (the pipeline passes a folder of
    its work folder; without one, a local temporary folder, for tests and local runners only)."""

    def __init__(self, options: Options, work_folder: str | None = None):
        super().__init__()
        self._options = options
        self._folder = work_folder

    def expand(self, pbegin):
        options = self._options
        folder = reader_work_folder(self._folder, SOURCE)
        read = pbegin | "ReadPostsFiles" >> ReadFiles(
            options.inputs, ReadPostsDoFn(options.max_decompressed_bytes), split_bytes=options.split_bytes)
        posts = read["documents"]
        side_inputs = {}
        if options.max_sites > 0:
            side_inputs["largest"] = beam.pvalue.AsSingleton(
                posts | "LargestSites" >> LargestSites(options.max_sites))
        threads = (
            posts
            | "PostsToThreads" >> GroupThroughFiles(folder, TextHashPartition(options.thread_partitions),
                                                    "stackexchange_posts")
            | "AssembleThreads" >> beam.ParDo(AssemblePartitionDoFn(options), **side_inputs).with_outputs(
                DROPPED, main="documents")
        )
        drops = (read["dropped"], threads[DROPPED]) | "AllDrops" >> beam.Flatten()
        return {"documents": threads.documents, "dropped": drops}

