"""HTML to text: pages over the time or size limit are dropped, never hang the run; the prepass drops
only what the later rules would; the worker process never outlives its parent; its replies are read as
JSON data only, never unpickled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.config import ExtractConfig, FiltersConfig, LangIdConfig
from llamapipe.pipeline.stages.extract import ExtractionProcess, ExtractText, extractor_setup
from llamapipe.pipeline.stages.extract_subprocess import (
    PageExtractor,
    PageResult,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    parse_page,
    visible_text,
)

ENGLISH = [
    "The river valley was settled by farmers who grew wheat and barley on the terraces above the town.",
    "Over the centuries they built stone walls to protect the fields from the spring floods of the river.",
    "Travellers describe a quiet market town with a church, a mill and a bridge of seven stone arches.",
    "In the nineteenth century a railway connected the valley with the industrial cities of the north.",
]
GERMAN = [
    "Das Flusstal wurde von Bauern besiedelt, die auf den Terrassen oberhalb der Stadt Weizen anbauten.",
    "Im Laufe der Jahrhunderte bauten sie Steinmauern, um die Felder vor dem Hochwasser zu schützen.",
    "Reisende beschreiben eine ruhige Marktstadt mit einer Kirche, einer Mühle und einer alten Brücke.",
    "Im neunzehnten Jahrhundert verband eine Eisenbahn das Tal mit den Industriestädten im Norden.",
]


def page(paragraphs: list[str], menu: str = "Home About Contact") -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<html><head><title>A page</title><script>var x = 'not text';</script></head><body>"
            f"<nav><ul><li><a href='/'>{menu}</a></li></ul></nav><article><h1>A page</h1>{body}</article>"
            f"<footer>Copyright 2024</footer></body></html>")


def cc_setup(**overrides) -> dict:
    return extractor_setup(ExtractConfig(**overrides), LangIdConfig(), FiltersConfig())


def test_visible_text_skips_scripts_and_head():
    text = visible_text(parse_page(page(ENGLISH)))
    assert "not text" not in text and "A page Home About" not in text
    assert ENGLISH[0] in text and "Copyright 2024" in text


def test_extractor_keeps_the_article_and_drops_boilerplate():
    result = PageExtractor(**cc_setup())(page(ENGLISH * 2), "https://example.org/a", "commoncrawl")
    assert result.reason == ""
    assert ENGLISH[0] in result.text and "Copyright 2024" not in result.text


def test_prepass_drops_what_language_id_and_the_length_rule_would():
    extractor = PageExtractor(**cc_setup())
    german = extractor(page(GERMAN * 2), "", "commoncrawl")
    assert (german.text, german.stage, german.reason) == (None, "langid", "language_de")
    assert "before extraction" in german.detail
    short = extractor(page(["A very short page."]), "", "commoncrawl")
    assert (short.stage, short.reason) == ("quality", "too_short")
    # Wikipedia's policy allows German, and the length rule is CommonCrawl's only: both extracted.
    assert extractor(page(GERMAN * 2), "", "wikipedia").text
    assert extractor(page(["A very short page."]), "", "c4").text
    # Without the prepass the German page is extracted (language ID decides later).
    assert PageExtractor(**cc_setup(prepass=False))(page(GERMAN * 2), "", "commoncrawl").text


def test_a_page_over_the_time_limit_is_dropped_and_the_next_page_still_extracted():
    huge = page(ENGLISH * 4000)  # ~1.6 MB of paragraphs: far more than 50 ms of work
    process = ExtractionProcess(cc_setup(), seconds_per_page=0.05)
    try:
        first_pid = process.extract(page(ENGLISH * 2), "", "commoncrawl") and process._proc.pid
        result = process.extract(huge, "", "commoncrawl")
        assert (result.text, result.reason) == (None, "extraction_timeout")
        assert process.restarts == 1
        _wait_gone(first_pid)  # the stuck process was killed, not left running
        assert ENGLISH[0] in process.extract(page(ENGLISH * 2), "", "commoncrawl").text
    finally:
        process.close()


# A stand-in for an extraction process that a hostile page took over: it answers the setup as the real
# one does, then replies to the page with REPLY (a Python expression giving the frame's bytes).
IMPOSTOR = textwrap.dedent("""
    import json, os, pickle, struct, sys
    def read():
        (size,) = struct.unpack(">I", sys.stdin.buffer.read(4))
        return sys.stdin.buffer.read(size)
    def write(payload):
        sys.stdout.buffer.write(struct.pack(">I", len(payload)) + payload)
        sys.stdout.buffer.flush()
    class Payload:
        def __reduce__(self):  # unpickling this would create the marker file
            return (os.mkdir, (os.environ["MARKER"],))
    read()
    write(json.dumps("ready").encode())
    read()
    write(REPLY)
    sys.stdin.buffer.read()
""")


class Impostor(ExtractionProcess):
    def __init__(self, reply: str):
        super().__init__({}, seconds_per_page=30)
        self.command = (sys.executable, "-c", IMPOSTOR.replace("REPLY", reply))


def test_a_pickled_reply_is_never_unpickled(tmp_path, monkeypatch):
    marker = tmp_path / "unpickled"
    monkeypatch.setenv("MARKER", str(marker))
    process = Impostor("pickle.dumps(Payload())")
    try:
        result = process.extract(page(ENGLISH), "", "commoncrawl")
    finally:
        process.close()
    assert (result.text, result.reason) == (None, "extraction_crashed")
    assert "malformed reply" in result.detail
    assert process.restarts == 1
    assert not marker.exists(), "the reply was unpickled"


def test_a_json_reply_that_is_not_a_page_result_is_a_crash():
    for reply in ('json.dumps({"text": "x"}).encode() + b"\\n"',  # a JSON header of another shape
                  'json.dumps(["extract", "", "", "7"]).encode() + b"\\n"',  # a length that is not a number
                  'json.dumps(["extract", "", "", 7]).encode() + b"\\nabc"',  # not the text's length
                  'json.dumps(["extract", "", "", 3]).encode() + b"\\n\\xff\\xfe\\xfd"',  # not UTF-8
                  'b"not json\\n"', 'b"no header at all"'):
        process = Impostor(reply)
        try:
            result = process.extract(page(ENGLISH), "", "commoncrawl")
        finally:
            process.close()
        assert (result.text, result.reason) == (None, "extraction_crashed"), reply
        assert "malformed reply" in result.detail, reply


def test_any_text_crosses_the_process_boundary_unchanged():
    """Non-ASCII letters, emoji, and a lone surrogate (a str may hold one) go as JSON escapes."""
    paragraphs = [p + " Grüße, ναί, 日本語 🚀 \udcff." for p in ENGLISH * 2]
    process = ExtractionProcess(cc_setup(prepass=False), seconds_per_page=30)
    try:
        result = process.extract(page(paragraphs), "https://example.org/ü", "commoncrawl")
    finally:
        process.close()
    in_process = PageExtractor(**cc_setup(prepass=False))(page(paragraphs), "https://example.org/ü",
                                                          "commoncrawl")
    assert result == in_process
    assert "日本語 🚀" in result.text
    request = (page(paragraphs), "https://example.org/ü", "commoncrawl")
    assert decode_request(encode_request(*request)[4:]) == request  # the surrogate too (lxml stops there)
    reply = PageResult(paragraphs[0], "extract", "", "")
    assert decode_reply(encode_reply(reply)[4:]) == reply


def test_the_extraction_process_imports_no_beam():
    """One extraction process per worker thread: Beam (and pyarrow with it) in each cost ~140 MB and
    1.4 s per start or restart (plumbing/names.py). The process's own imports, with the CommonCrawl
    policy (language ID) and one page extracted, in a fresh interpreter."""
    setup = json.dumps(cc_setup())
    code = textwrap.dedent(f"""
        import json, sys
        from llamapipe.pipeline.stages.extract_subprocess import PageExtractor
        extractor = PageExtractor(**json.loads({setup!r}))
        assert extractor({page(ENGLISH * 3)!r}, "", "commoncrawl").text
        print(sorted(m for m in ("apache_beam", "pyarrow", "pandas", "torch") if m in sys.modules))
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_the_worker_process_dies_with_its_parent():
    # A parent (standing in for a Beam worker) starts the extraction process, gives it a page that
    # takes long, and is killed: the extraction process must not outlive it.
    script = textwrap.dedent("""
        import sys, threading
        from llamapipe.pipeline.config import ExtractConfig
        from llamapipe.pipeline.stages.extract import ExtractionProcess, extractor_setup
        process = ExtractionProcess(extractor_setup(ExtractConfig()), seconds_per_page=600)
        process.extract("<html><body><p>warm up</p></body></html>", "", "x")
        print(process._proc.pid, flush=True)
        body = "".join("<div><p>word " + str(i) + " and more words here.</p></div>" for i in range(200000))
        process.extract("<html><body>" + body + "</body></html>", "", "x")
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        time.sleep(1.0)
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        _wait_gone(child, seconds=10)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_extract_text_in_beam_routes_pages_by_outcome():
    docs = [
        {"id": "commoncrawl:en", "source": "commoncrawl", "text": "", "url": "", "meta": {},
         "html": page(ENGLISH * 2)},
        {"id": "commoncrawl:de", "source": "commoncrawl", "text": "", "url": "", "meta": {},
         "html": page(GERMAN * 2)},
        {"id": "commoncrawl:big", "source": "commoncrawl", "text": "", "url": "", "meta": {},
         "html": page(ENGLISH * 50)},
        {"id": "c4:plain", "source": "c4", "text": "Already text.", "url": "", "meta": {}},
    ]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | ExtractText(ExtractConfig(max_page_bytes=10_000), LangIdConfig(),
                                                  FiltersConfig())
        assert_that(out["documents"] | "Ids" >> beam.Map(lambda d: (d["id"], "html" in d, bool(d["text"]))),
                    equal_to([("commoncrawl:en", False, True), ("c4:plain", False, True)]), label="kept")
        assert_that(out["dropped"] | "Reasons" >> beam.Map(lambda d: (d["id"], d["stage"], d["reason"],
                                                                        "<html>" in d["text"])),
                    equal_to([("commoncrawl:de", "langid", "language_de", True),
                              ("commoncrawl:big", "extract", "page_too_large", True)]), label="dropped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its dead parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, seconds: float = 5) -> None:
    deadline = time.time() + seconds
    while _alive(pid):
        assert time.time() < deadline, f"process {pid} still running"
        time.sleep(0.1)
