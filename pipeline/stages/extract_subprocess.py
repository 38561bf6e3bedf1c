"""One page to text (`PageExtractor`), and the subprocess that runs it:
`python -m llamapipe.pipeline.stages.extract_subprocess`. Nothing here imports Beam, so the process starts
fast.

It exists so a page that makes trafilatura hang can be stopped: trafilatura's own timeout uses
signals, which only work in a process's main thread, and a Beam worker runs DoFns in other threads.
A process can be killed from outside; a thread cannot. The parent (`ExtractionProcess` in
extract.py) sends one page at a time and kills and restarts this process when a page takes longer
than the limit.

Protocol on stdin/stdout: frames of a 4-byte big-endian length and a payload. The first frame is the
setup (`PageExtractor` arguments as JSON, its policies as lists); the reply is "ready" (JSON). Then each
request is one page: a JSON header `[url, source]`, a newline, and the page's HTML, UTF-8
(`encode_request`); each reply a JSON header `[stage, reason, detail, text bytes or null]`, a newline,
and the text, UTF-8 (`encode_reply`; `decode_reply` checks it). A JSON header holds no raw newline
(ensure_ascii), so the first newline ends it. Text travels with `surrogatepass`, so a lone surrogate a
str may hold crosses unchanged. stdout carries frames only: anything else written to file descriptor 1
(a library printing) is sent to stderr.

Why the text as raw UTF-8 rather than a JSON string (benchmarks/cc_profile.py, 328 real pages): the
round trip cost 0.87 CPU seconds per 1,000 pages with JSON strings (ensure_ascii escapes every
non-ASCII letter, and decoding reads the escapes back) and 0.4 with raw UTF-8. Sending 16 pages a
request instead of one was measured too (0.41 against 0.39 s per 1,000 pages: no gain, the round
trip's wake-ups cost little next to the copying), so the parent sends one page at a time, which also
keeps each page's time limit simple.

Why JSON and not pickle: this process parses hostile HTML. Were it ever made to write a frame of its
own choosing, unpickling that frame in the Beam worker would run whatever code the frame names; a JSON
header and UTF-8 text are only data, and a reply that is not the four values expected (or whose text
is not the length its header says) is treated as a crash.

The process exits when stdin closes, and a watchdog thread ends it when the parent process is gone,
even while a page is still being worked on (so a killed Beam worker never leaves it behind).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import sys
import threading
import time
from typing import NamedTuple

from llamapipe.pipeline.plumbing.names import EXTRACT_METHODS
from llamapipe.pipeline.stages import readability_guard
from llamapipe.pipeline.stages.registry import EXTRACT

STAGE = EXTRACT.name
_HEADER = struct.Struct(">I")


# trafilatura's text output adds a marker to list items and a separator between table cells; the
# length bound of the prepass allows this many characters per such element.
_MARKER_ALLOWANCE = 4

# The cascade runs trafilatura in its fast mode (no jusText/readability fallback) and runs the full
# trafilatura only when the fast text is shorter than this share of resiliparse's main-content text
# (a sign that trafilatura's main-content guess missed part of the article). Measured on the 110 gold
# pages of trafilatura's evaluation set (benchmarks/extraction.py): fast alone F1 0.930 against 0.939
# for full trafilatura; with the rule at 0.3-0.6 the cascade scores 0.943 and reruns 7-14 pages of 110;
# at 0.7-0.8 it scores 0.938. resiliparse's main-content text alone scores 0.843 (precision 0.75: it
# keeps menus and teasers), and no cheap page feature we tried (length, its share of the visible
# text, share of short lines) told apart the pages where it is as good as trafilatura, so it is the
# judge here, not the answer.
CASCADE_MIN_RATIO = 0.5


class PageResult(NamedTuple):
    """The outcome of one page: text, or a drop (stage, reason, detail)."""

    text: str | None
    stage: str = STAGE
    reason: str = ""
    detail: str = ""


class PrepassPolicy(NamedTuple):
    """What the cheap pass may decide for one source."""

    min_chars: int  # 0: the source has no length rule
    allowed_languages: tuple[str, ...]  # empty: no language policy
    threshold: float


def parse_page(html: str | bytes):
    """The page parsed by resiliparse (lexbor, C): the tree the prepass reads, and the cheap extractor's."""
    from resiliparse.parse.html import HTMLTree

    return HTMLTree.parse(html) if isinstance(html, str) else HTMLTree.parse_from_bytes(html)


def visible_text(page) -> str:
    """All text a browser could show, whitespace collapsed (hidden elements and alt texts included;
    scripts, styles and the head left out): the bound of what a method extracts that the prepass's length
    rule uses. It holds on the real pages near the rule; far from it, trafilatura's text can be a little
    longer (its line breaks where the visible text has no space; one page of 164, by 1.5%).

    The prepass reads this from resiliparse's tree, not lxml's: 1.2 against 2.7 ms per page for parse and
    text (the 164 real pages of benchmarks/cc_profile.py; an lxml walk that stopped at 2,000 characters),
    and most pages are decided here (a dump is about half non-English). A page that reaches trafilatura
    is parsed a second time, by lxml, which costs it 0.4 ms more than before; across the real pages the
    path saves about 1 ms per page. The decisions are the ones the lxml tree's visible text gave on every
    real page, and every page it drops as too short is one the CCNet rule drops after trafilatura
    (tests/pipeline/stages/test_extract_methods.py). resiliparse makes a body for any input (a frameset,
    plain text), so the prepass reads every page: one that lxml cannot parse is `not_html` when the
    prepass keeps it (when lxml parsed first, a short response that is not HTML was `not_html`; it is
    now `quality/too_short`)."""
    from resiliparse.extract.html2text import extract_plain_text

    return " ".join(extract_plain_text(page, preserve_formatting=False, list_bullets=False,
                                       hidden_elements=True).split())


def use_c_element_lookup() -> None:
    """Make trafilatura's HTML parser give every element lxml.html's `HtmlElement` class through lxml's
    C-level lookup instead of `HtmlElementClassLookup`, a Python method called each time lxml makes a
    Python object for an element (name.lower() and a dict lookup, to give form, input, select, textarea
    and label elements their own classes, whose form helpers trafilatura never calls).

    trafilatura walks a page's tree many times: 2,600 such lookups per page on the real pages of
    benchmarks/cc_profile.py; making one element's object went from 0.50 to 0.23 microseconds. The text
    extracted is the same on every real page (tests/pipeline/stages/test_extract_methods.py). It sets the
    parser of trafilatura's `load_html` (a module global: this process extracts and does nothing else)."""
    from lxml import etree
    from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction
    from trafilatura.utils import HTML_PARSER

    HTML_PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity))


class PageExtractor:
    """Decide what the cheap pass can on resiliparse's parse of the page, else extract its text by the
    configured method."""

    def __init__(self, favor_precision: bool, favor_recall: bool, include_tables: bool,
                 policies: dict[str, PrepassPolicy] | None = None, langid_model: str | None = None,
                 prepass_chars: int = 2_000, method: str = "trafilatura"):
        import trafilatura
        from trafilatura.utils import load_html

        if method not in EXTRACT_METHODS:
            raise ValueError(f"extract.method must be one of {', '.join(EXTRACT_METHODS)}, got {method!r}")
        self._method = method
        use_c_element_lookup()
        readability_guard.install()
        self._extract = trafilatura.extract
        self._load_html = load_html
        self._options = dict(favor_precision=favor_precision, favor_recall=favor_recall,
                             include_tables=include_tables, include_comments=False, deduplicate=False)
        # From the setup frame, each policy is a JSON list.
        self._policies = {source: PrepassPolicy(int(p[0]), tuple(p[1]), float(p[2]))
                          for source, p in (policies or {}).items()}
        self._prepass_chars = prepass_chars
        self._identify = None
        if any(p.allowed_languages for p in self._policies.values()):
            from llamapipe.pipeline.stages.lid176 import LanguageIdentifier

            self._identify = LanguageIdentifier(langid_model)

    def __call__(self, html: str | bytes, url: str = "", source: str = "") -> PageResult:
        try:
            policy = self._policies.get(source)
            if policy is not None and not (policy.min_chars or policy.allowed_languages):
                policy = None
            page = None
            if policy is not None or self._method != "trafilatura":
                page = self._parse_page(html)
                if page.body is None:
                    return PageResult(None, STAGE, "not_html")
                if policy is not None:
                    early = self._prepass(page, policy)
                    if early is not None:
                        return early
            text = self._extract_text(html, url, page)
        except Exception as exc:  # noqa: BLE001 - one odd page must not stop the run; it is counted
            return PageResult(None, STAGE, "extraction_error", f"{type(exc).__name__}: {exc}")
        if text is None:
            return PageResult(None, STAGE, "not_html")
        if not text.strip():
            return PageResult(None, STAGE, "no_text_extracted")
        return PageResult(text.strip())

    def _parse_page(self, html: str | bytes):
        return parse_page(html)

    def _extract_text(self, html: str | bytes, url: str, page) -> str | None:
        """The page's text by the configured method ("" when it has none; None when lxml cannot parse it).

        `trafilatura`: trafilatura on lxml's tree. `resiliparse`: resiliparse's main-content text
        (~15x cheaper than trafilatura's parse and extraction together). `cascade`: trafilatura fast, with
        the full trafilatura for the pages where the fast text is doubtful (see CASCADE_MIN_RATIO)."""
        if self._method == "resiliparse":
            from resiliparse.extract.html2text import extract_plain_text

            return extract_plain_text(page, main_content=True)
        tree = self._load_html(html)
        if tree is None:
            return None
        if self._method == "trafilatura":
            return self._extract(tree, url=url or None, **self._options) or ""
        from resiliparse.extract.html2text import extract_plain_text

        cheap = extract_plain_text(page, main_content=True)
        text = self._extract(tree, url=url or None, fast=True, **self._options) or ""
        if len(text) < CASCADE_MIN_RATIO * len(cheap.strip()):
            # A fresh tree: trafilatura prunes the one it is given in place.
            text = self._extract(self._load_html(html), url=url or None, **self._options) or ""
        return text

    def _prepass(self, page, policy: PrepassPolicy) -> PageResult | None:
        text = visible_text(page)
        # List items and cells only matter to a page shorter than the length rule.
        markers = (len(page.document.query_selector_all("li, td, th"))
                   if len(text) < policy.min_chars else 0)
        return self._decide_early(text, markers, policy)

    def _decide_early(self, text: str, markers: int, policy: PrepassPolicy) -> PageResult | None:
        if policy.min_chars:
            if len(text) + _MARKER_ALLOWANCE * markers < policy.min_chars:
                return PageResult(None, "quality", "too_short",
                                  f"whole page has {len(text)} characters of text (before extraction)")
        if policy.allowed_languages and self._identify is not None:
            language, score = self._identify(text[: self._prepass_chars])
            if language not in policy.allowed_languages and score >= policy.threshold:
                return PageResult(None, "langid", f"language_{language}",
                                  f"{score:.2f} on the whole page (before extraction)")
        return None


def encode_frame(value) -> bytes:
    """A frame: the length, then `value` as JSON (tuples become lists)."""
    payload = json.dumps(value).encode("ascii")  # ensure_ascii: the fastest of json's encoders here
    return _HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes):
    """A frame's JSON value (ValueError when it is not JSON)."""
    return json.loads(payload)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _with_header(header, blob: bytes) -> bytes:
    payload = json.dumps(header).encode("ascii") + b"\n" + blob
    return _HEADER.pack(len(payload)) + payload


def _split_header(payload: bytes) -> tuple[object, memoryview]:
    end = payload.find(b"\n")
    if end < 0:
        raise ValueError("no header")
    return json.loads(payload[:end]), memoryview(payload)[end + 1:]


def encode_request(html: str, url: str, source: str) -> bytes:
    """One frame asking for one page."""
    return _with_header([url, source], _utf8(html))


def decode_request(payload: bytes) -> tuple[str, str, str]:
    """(html, url, source) of a request frame."""
    (url, source), html = _split_header(payload)
    return str(html, "utf-8", "surrogatepass"), url, source


def encode_reply(result: PageResult) -> bytes:
    """One frame answering one page: its result's stage, reason and detail as JSON, then its text."""
    blob = b"" if result.text is None else _utf8(result.text)
    return _with_header([result.stage, result.reason, result.detail,
                         None if result.text is None else len(blob)], blob)


def decode_reply(payload: bytes) -> PageResult:
    """The page result in a reply frame; ValueError when it is anything else."""
    header, blob = _split_header(payload)
    if not (isinstance(header, list) and len(header) == 4 and all(isinstance(v, str) for v in header[:3])
            and (header[3] is None or (isinstance(header[3], int) and not isinstance(header[3], bool)))):
        raise ValueError(f"not a page result: {str(header)[:80]!r}")
    if len(blob) != (header[3] or 0):
        raise ValueError(f"text of {len(blob)} bytes, the header says {header[3]}")
    text = None if header[3] is None else str(blob, "utf-8", "surrogatepass")
    return PageResult(text, *header[:3])


def read_payload(stream) -> bytes | None:
    """The next frame's payload, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


def read_frame(stream):
    """The next JSON frame's value, or None at the end of the stream."""
    payload = read_payload(stream)
    return None if payload is None else decode_payload(payload)


def write_frame(stream, value) -> None:
    stream.write(encode_frame(value))
    stream.flush()


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(3)


def main() -> int:
    # Frames go to a private copy of stdout; fd 1 becomes stderr so stray prints cannot corrupt them.
    frames_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    frames_in = sys.stdin.buffer
    parent_pid = os.getppid()
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # its per-page errors are our drops
    logging.getLogger("htmldate").setLevel(logging.CRITICAL)

    setup = read_frame(frames_in)
    if setup is None:
        return 0
    extractor = PageExtractor(**setup)
    write_frame(frames_out, "ready")
    while True:
        request = read_payload(frames_in)
        if request is None:
            return 0
        frames_out.write(encode_reply(extractor(*decode_request(request))))


if __name__ == "__main__":
    sys.exit(main())
