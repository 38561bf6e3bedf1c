"""HTML to text with trafilatura, for documents that still carry their page (`html` key).

Three guards keep one page from stopping or slowing the run:
- pages over `max_page_bytes` are dropped before parsing (huge pages are where extractors hang);
- each page gets `max_seconds_per_page` of wall-clock time. Extraction runs in a small persistent
  subprocess per DoFn instance (`extract_subprocess.py`): trafilatura's own timeout uses signals, which
  only work in a main thread, and Beam runs DoFns in worker threads, where a thread cannot be
  stopped. A page over the limit gets its process killed and restarted, and is dropped with the
  reason `extraction_timeout`; a crashed process (segfault, out of memory) is restarted the same way.
- a cheap pass over the page (`prepass`, on resiliparse's parse) skips the expensive extraction when
  its result could only be dropped afterwards: the page's whole visible text is too short for the
  source's CCNet length rule, or lid.176 on it names a language the source's policy does not allow.
  Those drops carry the stage and reason of the rule that decides them (`quality/too_short`,
  `langid/language_xx`), with a detail saying they were decided on the whole page.

benchmarks/extraction.py measures accuracy and speed against plain `trafilatura.extract`.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import weakref

import apache_beam as beam

from llamapipe.pipeline.config import ExtractConfig, FiltersConfig, LangIdConfig
from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.extract_subprocess import (
    _HEADER,
    STAGE,
    PageResult,
    PrepassPolicy,
    decode_payload,
    decode_reply,
    encode_request,
    write_frame,
)
from llamapipe.pipeline.stages.registry import EXTRACT


def prepass_policies(langid: LangIdConfig, filters: FiltersConfig,
                     language_score: float = 0.8) -> dict[str, PrepassPolicy]:
    """Per source: the CCNet length rule and the language policy that apply after extraction."""
    from llamapipe.pipeline.stages.quality import CCNetMinLength

    sources = set(langid.allowed) | set(filters.rules)
    policies = {}
    for source in sorted(sources):
        rules = filters.rules.get(source, [])
        min_chars = CCNetMinLength().min_chars if CCNetMinLength.name in rules else 0
        threshold = max(langid.threshold, language_score)
        policies[source] = PrepassPolicy(min_chars, tuple(langid.allowed.get(source, [])), threshold)
    return policies


class ExtractionTimeout(Exception):
    pass


class ExtractionProcess:
    """A `PageExtractor` in a child process, restarted whenever a page exceeds the time limit."""

    command = (sys.executable, "-m", "llamapipe.pipeline.stages.extract_subprocess")

    def __init__(self, setup: dict, seconds_per_page: float, startup_seconds: float = 120.0):
        self._setup = setup
        self._seconds = seconds_per_page
        self._startup_seconds = startup_seconds
        self._proc: subprocess.Popen | None = None
        self._finalizer = None
        self.restarts = 0

    def _start(self) -> None:
        proc = subprocess.Popen(
            list(self.command),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )
        self._proc = proc
        # Killed when this object is garbage collected (Beam does not always call teardown).
        self._finalizer = weakref.finalize(self, _kill, proc)
        write_frame(proc.stdin, self._setup)
        try:
            ready = decode_payload(self._read(time.monotonic() + self._startup_seconds))
        except (ExtractionTimeout, EOFError, ValueError) as exc:
            self.close()
            raise RuntimeError(f"the extraction process did not start ({type(exc).__name__}); "
                               "see the log above for its error") from None
        if ready != "ready":
            self.close()
            raise RuntimeError(f"the extraction process answered {ready!r} instead of 'ready'")

    def extract(self, html: str, url: str, source: str) -> PageResult:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        try:
            self._proc.stdin.write(encode_request(html, url, source))
            self._proc.stdin.flush()
            return decode_reply(self._read(time.monotonic() + self._seconds))
        except ExtractionTimeout:
            self._restart()
            return PageResult(None, STAGE, "extraction_timeout", f"over {self._seconds:g} s")
        except (EOFError, BrokenPipeError, OSError) as exc:
            code = self._proc.poll() if self._proc else None
            self._restart()
            return PageResult(None, STAGE, "extraction_crashed", f"{type(exc).__name__}, exit code {code}")
        except ValueError as exc:  # a reply that is not a page result: as good as a crash
            self._restart()
            return PageResult(None, STAGE, "extraction_crashed", f"malformed reply ({exc})")

    def _restart(self) -> None:
        self.close()
        self.restarts += 1

    def _read(self, deadline: float) -> bytes:
        """The child's next frame's payload (the child parses hostile pages: read as data, never
        unpickled)."""
        (size,) = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
        return self._read_exact(size, deadline)

    def _read_exact(self, size: int, deadline: float) -> bytes:
        fd = self._proc.stdout.fileno()
        chunks, missing = [], size
        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExtractionTimeout
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                raise ExtractionTimeout
            chunk = os.read(fd, min(missing, 1 << 20))
            if not chunk:
                raise EOFError("the extraction process exited")
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills and reaps the process once
        self._proc = None
        self._finalizer = None


def _kill(proc: subprocess.Popen) -> None:
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def extractor_setup(options: ExtractConfig, langid: LangIdConfig | None = None,
                    filters: FiltersConfig | None = None) -> dict:
    """Arguments of the `PageExtractor` the subprocess builds."""
    policies = {}
    if options.prepass and langid and filters:
        policies = prepass_policies(langid, filters, options.prepass_language_score)
    return dict(favor_precision=options.favor_precision, favor_recall=options.favor_recall,
                include_tables=options.include_tables, policies=policies,
                langid_model=langid.model if langid else None, prepass_chars=options.prepass_chars,
                method=options.method)


class ExtractTextDoFn(beam.DoFn):
    def __init__(self, options: ExtractConfig, setup: dict):
        self._options = options
        self._setup = setup
        self._process: ExtractionProcess | None = None

    def setup(self) -> None:
        self._process = ExtractionProcess(self._setup, self._options.max_seconds_per_page)

    def process(self, doc: dict):
        html = doc.get("html")
        if html is None:
            yield doc
            return
        rest = {k: v for k, v in doc.items() if k != "html"}
        source = doc["source"]
        if len(html.encode("utf-8", errors="replace")) > self._options.max_page_bytes:
            detail = f"over {self._options.max_page_bytes} bytes"
            yield drop(source, STAGE, "page_too_large", doc["id"], detail, html)
            return
        result = self._process.extract(html, doc.get("url") or "", source)
        if result.text is None:
            yield drop(source, result.stage, result.reason, doc["id"], result.detail, html)
            return
        ExtractText.counter(source, "extracted").inc()
        yield {**rest, "text": result.text}

    def teardown(self) -> None:
        if self._process is not None:
            self._process.close()


class ExtractText(Stage):
    entry = EXTRACT

    def __init__(self, options: ExtractConfig, langid: LangIdConfig | None = None,
                 filters: FiltersConfig | None = None):
        super().__init__()
        self._options = options
        self._setup = extractor_setup(options, langid, filters)

    def expand(self, docs):
        return self.split(docs, "Trafilatura", ExtractTextDoFn(self._options, self._setup))
