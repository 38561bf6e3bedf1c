"""Our line dedup against CCNet's own rule, on real text (../shared/realdata).

`ccnet_*` below is a test-only re-implementation of facebookresearch/cc_net, read at these commits:
- `cc_net/text_normalizer.py` @ 1341eec9e29f64f983974d1418c3685d3910cc89: `normalize_for_dedup` strips
  the line, lower-cases it, turns every digit (`\\d`, Unicode digits too) into 0, then removes in one
  regex (`PUNCT_OR_NON_PRINTING_CHARS_RE`) the keys of `UNICODE_PUNCT` and the characters 0-31 and
  127-159. It strips no accent (`strip_accents` belongs to `normalize(accent=True)`, used for the
  language models; `slow_normalize_for_dedup` passes accent=False) and applies no Unicode normal form.
- `cc_net/dedup.py` @ 0714a6f9d675ff6b180951bcfb58d1f71696fea1: `compute_hashes` splits the content on
  "\\n" and hashes each normalised line with SHA-1, first 8 bytes (read as a uint64).
  `HashesCollector` adds each document's hashes to a set where `add` sets a hash's value to "already
  present before this document" (`flat_hash_set.AbstractDedupHashSet.add` @
  67381a52668dc52c53cc19689b797664f28d2e9f), so a hash is marked duplicate once it occurs in a second
  document; a line repeated inside one document only does not mark it. `DuplicatesRemover.do` then
  drops a document none of whose lines is unmarked (`kept == 0`), zeroes the marked hashes, and
  `finalize_doc` keeps each line whose hash is nonzero and not seen before in the document (the first
  of a repeated line stays). `deduplicate_two_pass` ("what is done in the paper, and in mine.py") is
  this collector then this remover over the same documents.

Compared on: every sentence of the 25 langid samples (normalisation and hash, string for string), and
documents made of the real texts: C4 pages, web pages' visible text (trafilatura's evaluation pages),
the WET record, Wikipedia articles rendered by our reader, Stack Exchange posts, Gutenberg books cut
into chunks (their licence lines repeat across books). Our stage runs in Beam, as in a run.

Differences kept on purpose (each checked below on its own):
1. Byte-identical documents count once (ours) instead of once per copy (CCNet): two copies of a page
   would otherwise strip each other empty, and document dedup, which keeps one copy, would have
   nothing left to keep (line_dedup.py's docstring).
2. `line_dedup.min_chars_after` (default 300) drops a document left shorter than that. CCNet has no
   length rule after dedup: its 300 characters are checked when a WET page is read
   (`process_wet_file.CCShardReader(min_len=300)` @ 0714a6f9), which our `ccnet_min_length` quality
   rule does. The comparison runs with 0, CCNet's behaviour.
3. A document whose surviving lines are all blank is dropped (ours: an empty text is no document);
   CCNet keeps it. CCNet's WET reader strips lines and skips blank ones, so it never meets the case.
4. Scope: ours is global over the run; cc_net's mine.py dedups each shard against the hashes of its
   group of `hash_in_mem` shards (memory). Over one group they are the same rule, as here.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import re
import unicodedata
from collections import defaultdict

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from llamapipe.pipeline.config import LineDedupConfig
from llamapipe.pipeline.stages.line_dedup import LineDedup, line_hash, normalize_for_dedup

# ---------------------------------------------------------------------------------------------
# cc_net, re-implemented (see the module docstring for the files and commits)

# The keys of cc_net's UNICODE_PUNCT (text_normalizer.py); their replacement values are not used by dedup.
CCNET_UNICODE_PUNCT_KEYS = (
    "，", "。", "、", "„", "”", "“", "«", "»", "１", "」", "「", "《", "》", "´", "∶", "：", "？",
    "！", "（", "）", "；", "–", "—", "．", "～", "’", "…", "━", "〈", "〉", "【", "】", "％", "►",
)
CCNET_NON_PRINTING = tuple(map(chr, [*range(0, 32), *range(127, 160)]))
CCNET_REMOVED = re.compile("[" + re.escape("".join(CCNET_UNICODE_PUNCT_KEYS + CCNET_NON_PRINTING)) + "]")
CCNET_DIGIT = re.compile(r"\d")


def ccnet_normalize_for_dedup(line: str) -> str:
    line = line.strip()
    if not line:
        return line
    line = CCNET_DIGIT.sub("0", line.lower())
    return CCNET_REMOVED.sub("", line)


def ccnet_line_hash(line: str) -> int:
    """SHA-1 of the normalised line, first 8 bytes as cc_net's HASH_TYPE (uint64, little-endian)."""
    digest = hashlib.sha1(ccnet_normalize_for_dedup(line).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def ccnet_deduplicate_two_pass(contents: list[str]) -> list[str | None]:
    """Each document's content after CCNet's line dedup, None for a document it drops."""
    marked: dict[int, bool] = {}  # HashesCollector: hash -> seen in an earlier document
    for content in contents:
        if not content:
            continue
        hashes = [ccnet_line_hash(line) for line in content.split("\n")]
        present_before = [h in marked for h in hashes]  # `contains`, computed before the update
        for h, present in zip(hashes, present_before, strict=True):
            marked[h] = present
    results: list[str | None] = []
    for content in contents:  # DuplicatesRemover.do, then finalize_doc
        if not content:
            results.append(None)
            continue
        lines = content.split("\n")
        hashes = [ccnet_line_hash(line) for line in lines]
        keep = [not marked.get(h, False) for h in hashes]
        if not any(keep):
            results.append(None)
            continue
        seen: set[int] = set()
        new_lines = []
        for line, h in zip(lines, [h if k else 0 for h, k in zip(hashes, keep, strict=True)], strict=True):
            if h not in seen and h != 0:
                new_lines.append(line)
            seen.add(h)
        results.append("\n".join(new_lines))
    return results


# ---------------------------------------------------------------------------------------------
# Real text

BOOK_CHUNK_LINES = 120  # a book cut into documents of this many lines: its licence lines meet other books'


def langid_sentences(realdata) -> list[str]:
    sentences = []
    for path in sorted((realdata / "langid").glob("*.txt.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            sentences.extend(line.rstrip("\n") for line in f)
    return sentences


WIKIPEDIA_ARTICLES = 15  # rendering is the slow part of the set-up


def real_documents(realdata) -> dict[str, str]:
    """name -> text of real documents from every kind of text in realdata."""
    from warcio.archiveiterator import ArchiveIterator

    from llamapipe.sources.stackexchange import html_to_text, iter_rows
    from llamapipe.sources.wikipedia import Page, iter_dump, render_article

    docs: dict[str, str] = {}
    for path in sorted((realdata / "c4").glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f):
                docs[f"c4/{path.name}/{number}"] = json.loads(line)["text"]
    html_folder = realdata / "html_extraction" / "trafilatura" / "html"
    for path in sorted(html_folder.glob("*.html")):
        docs[f"web/{path.name}"] = html_to_text(path.read_bytes().decode("utf-8", "replace"))
    with open(realdata / "commoncrawl" / "whirlwind_CC-MAIN-2024-22.warc.wet.gz", "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type == "conversion":
                docs["wet/whirlwind"] = record.content_stream().read().decode("utf-8", "replace")
    dump = realdata / "wikipedia" / ("gensim_enwiki-latest-pages-articles1.xml-p000000010p000030302-"
                                     "shortened.bz2")
    with bz2.open(dump, "rb") as f:
        articles = (item for item in iter_dump(f) if isinstance(item, Page) and item.ns == 0
                    and not item.redirect and item.text.strip())
        for _, page in zip(range(WIKIPEDIA_ARTICLES), articles, strict=False):
            docs[f"wikipedia/{page.title}"] = render_article(page.text)[0]
    with open(realdata / "stackexchange" / "coffee.stackexchange.com_Posts.xml", "rb") as f:
        for item in iter_rows(f):
            if isinstance(item, tuple) and item[1].get("Body"):
                docs[f"stackexchange/{item[1]['Id']}"] = html_to_text(item[1]["Body"])
    for path in sorted((realdata / "books").glob("*.txt")):
        lines = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").split("\n")
        for start in range(0, len(lines), BOOK_CHUNK_LINES):
            docs[f"books/{path.name}/{start}"] = "\n".join(lines[start:start + BOOK_CHUNK_LINES])
    return {name: text for name, text in docs.items() if text}


@pytest.fixture(scope="module")
def documents(realdata) -> dict[str, str]:
    docs = real_documents(realdata)
    # No two byte-identical texts: those are difference 1, checked on its own below.
    by_text: dict[str, str] = {}
    for name, text in docs.items():
        by_text.setdefault(text, name)
    return {name: text for text, name in by_text.items()}


def as_documents(texts: dict[str, str]) -> list[dict]:
    return [{"id": f"commoncrawl:{name}", "source": "commoncrawl", "text": text, "url": "", "meta": {}}
            for name, text in texts.items()]


def run_ours(texts: dict[str, str], tmp_path, min_chars_after: int = 0) -> tuple[dict, dict]:
    """(kept name -> text, dropped name -> reason) of our LineDedup stage, run in Beam as in a run."""
    config = LineDedupConfig(min_chars_after=min_chars_after, partitions=8)
    results = tmp_path / "results"
    with TestPipeline() as p:
        out = p | beam.Create(as_documents(texts)) | LineDedup(config, str(tmp_path / "work"))
        for kind, value in (("documents", "text"), ("dropped", "reason")):
            _ = (out[kind]
                 | f"{kind}Json" >> beam.Map(lambda d, value=value: json.dumps([d["id"], d[value]]))
                 | f"{kind}Write" >> beam.io.WriteToText(str(results / kind)))
    found = {}
    for kind in ("documents", "dropped"):
        found[kind] = {}
        for path in results.glob(f"{kind}*"):
            for line in path.read_text(encoding="utf-8").splitlines():
                doc_id, value = json.loads(line)
                found[kind][doc_id.removeprefix("commoncrawl:")] = value
    return found["documents"], found["dropped"]


# ---------------------------------------------------------------------------------------------
# Normalisation and hash


def test_normalisation_equals_ccnets_on_every_real_line(realdata, documents):
    lines = langid_sentences(realdata) + [line for text in documents.values() for line in text.split("\n")]
    assert len(lines) > 50_000
    differing = [line for line in lines if normalize_for_dedup(line) != ccnet_normalize_for_dedup(line)]
    assert differing == []
    # The same hash equality classes: lines grouped by our hash and by CCNet's are the same groups.
    ours, theirs = defaultdict(set), defaultdict(set)
    for line in lines:
        ours[line_hash(line)].add(line)
        theirs[ccnet_line_hash(line)].add(line)
    assert sorted(map(sorted, ours.values())) == sorted(map(sorted, theirs.values()))
    assert all(int.from_bytes(line_hash(line), "little") == ccnet_line_hash(line) for line in lines[:5000])
    # The real lines exercise every step: classes of more than one spelling, from case, digits, and
    # CCNet's punctuation (the CJK samples) or control characters.
    merged = [group for group in ours.values() if len(group) > 1]
    assert len(merged) > 20
    assert any(any(c in CCNET_UNICODE_PUNCT_KEYS for c in line) for line in lines)


def test_normalisation_keeps_accents_and_unicode_forms_apart_as_ccnet_does():
    composed, decomposed = "Café au lait", unicodedata.normalize("NFD", "Café au lait")
    for normalize, digest in ((normalize_for_dedup, line_hash), (ccnet_normalize_for_dedup, ccnet_line_hash)):
        assert normalize("Cafe au lait") != normalize(composed) != normalize(decomposed)
        assert digest(composed) != digest(decomposed)
        assert normalize("Ⅻ chapters, ١٢٣ pages") == "ⅻ chapters, 000 pages"  # \d is Unicode digits only


# ---------------------------------------------------------------------------------------------
# Which lines go


def test_same_lines_removed_as_ccnet_on_real_documents(documents, tmp_path):
    reference = dict(zip(documents, ccnet_deduplicate_two_pass(list(documents.values())), strict=True))
    kept, dropped = run_ours(documents, tmp_path)
    # Difference 3: what CCNet keeps with only blank lines left, ours drops.
    blank_left = {name for name, text in reference.items() if text is not None and not text.strip()}
    assert kept == {name: text for name, text in reference.items()
                    if text is not None and name not in blank_left}
    assert dropped == {name: "no_lines_left" for name, text in reference.items()
                       if text is None or name in blank_left}
    # The real texts do repeat lines across documents, in each kind: the comparison is not vacuous.
    changed = {name for name, text in reference.items() if text != documents[name]}
    assert len(changed) > 50 and len(dropped) > 0
    assert {name.split("/")[0] for name in changed} >= {"web", "stackexchange", "books", "wikipedia"}


def test_difference_1_byte_identical_copies_keep_their_lines(documents, tmp_path):
    name, text = next((n, t) for n, t in documents.items() if n.startswith("c4/"))
    texts = {name: text, f"{name}/copy": text}
    assert ccnet_deduplicate_two_pass(list(texts.values())) == [None, None]  # CCNet: each empties the other
    kept, dropped = run_ours(texts, tmp_path)
    assert kept == texts and dropped == {}


def test_difference_2_min_chars_after_is_ours(documents, tmp_path):
    posts = {n: t for n, t in documents.items() if n.startswith("stackexchange/")}
    reference = dict(zip(posts, ccnet_deduplicate_two_pass(list(posts.values())), strict=True))
    kept, dropped = run_ours(posts, tmp_path, min_chars_after=300)
    short = {n for n, t in reference.items() if t is not None and t.strip() and len(t.strip()) < 300}
    assert len(short) > 20  # CCNet keeps them: it has no length rule after dedup
    too_short = dict.fromkeys(short, "too_short_after_line_dedup")
    assert {n: r for n, r in dropped.items() if n in short} == too_short
    assert kept == {n: t for n, t in reference.items() if t is not None and t.strip() and n not in short}


def test_difference_3_a_document_left_with_blank_lines_only(tmp_path):
    shared = "A line two documents share."
    texts = {"a": f"{shared}\n   ", "b": shared}
    assert ccnet_deduplicate_two_pass(list(texts.values())) == ["   ", None]
    kept, dropped = run_ours(texts, tmp_path)
    assert kept == {} and dropped == {"a": "no_lines_left", "b": "no_lines_left"}
