"""The CommonCrawl path on real pages: where a page's time goes, and each extraction method's speed
and accuracy, in one run (issue 28).

Pages: the real WARC samples of ../shared/realdata/commoncrawl (as they are) plus the 110 real pages
of trafilatura's evaluation set written into a .warc.gz (one response record each, the HTML bytes
unchanged), all --copies times. They go through the clean stage's per-document path as
`pipeline/file_work.py` runs it: the reader's DoFn (WARC parsing + charset detection), extraction
(prepass + extractor in its time-limited subprocess), language ID, the quality rules, with the
CommonCrawl policy of the default config (English only, the CCNet rules).

Time is CPU time (`time.process_time` of this process plus the extraction subprocess's own CPU from
/proc), not wall clock: the machine is shared with other engineers' jobs, so wall-clock figures move by
tens of percent between runs; CPU seconds move far less (still a few percent: caches and frequency are
shared too). "pages/s per core" = pages / CPU seconds.

Profile rows (method `trafilatura`, today's path), CPU seconds per 1,000 pages read:
  WARC parsing        the reader DoFn minus charset detection
  charset             `decode_html` (header/meta charset, else charset_normalizer)
  parse + prepass     lxml parse, visible text, lid.176 on it (in-process PageExtractor)
  trafilatura         trafilatura.extract on the pages the prepass kept (in-process)
  subprocess trip     the stage's CPU (parent + child) minus the same work in-process
  language ID         LanguageIdDoFn on the extracted documents
  rules               QualityFilterDoFn on what language ID kept

Accuracy: precision/recall/F1 of each method's text on the gold snippets (every page extracted, no
policy), scored as benchmarks/extraction.py does.

    python benchmarks/cc_profile.py [--copies 2]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REALDATA = os.environ.get("LLAMAPIPE_REALDATA", os.path.join(HERE, "..", "..", "shared", "realdata"))
METHODS = ("trafilatura", "cascade", "resiliparse")


def child_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gold_warc(pages: list[tuple[dict, bytes]], path: str) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for item, html in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            url = f"https://gold.example/{item['file']}"
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(html),
                                                          http_headers=headers))


def corpus(folder: str, copies: int) -> list[str]:
    sys.path.insert(0, HERE)
    from extraction import load_pages

    pages = load_pages(os.path.join(REALDATA, "html_extraction", "trafilatura"))
    files = []
    gold = os.path.join(folder, "gold-pages.warc.gz")
    gold_warc(pages, gold)
    samples = sorted(os.path.join(REALDATA, "commoncrawl", name)
                     for name in os.listdir(os.path.join(REALDATA, "commoncrawl"))
                     if ".warc" in name and ".wet" not in name and ".wat" not in name)
    for copy in range(copies):
        for path in [gold, *samples]:
            target = os.path.join(folder, f"{copy}-{os.path.basename(path)}")
            shutil.copyfile(path, target)
            files.append(target)
    return files


def read_all(files: list[str]) -> tuple[list[dict], float]:
    from llamapipe.sources.commoncrawl import Options, ReadWarcFileDoFn

    reader = ReadWarcFileDoFn(Options())
    reader.setup()
    docs, started = [], time.process_time()
    for path in files:
        for split in reader.plan(path, os.path.getsize(path), 1 << 40):
            docs.extend(item for item in reader.process(split) if isinstance(item, dict))
    return docs, time.process_time() - started


def documents(outputs) -> list[dict]:
    return [item for item in outputs if isinstance(item, dict)]


def end_to_end(files: list[str], method: str, config) -> dict:
    """The clean stage's per-document path with `method`: CPU seconds and what came out."""
    from dataclasses import replace

    from llamapipe.pipeline.stages.extract import ExtractTextDoFn, extractor_setup
    from llamapipe.pipeline.stages.langid import LanguageIdDoFn
    from llamapipe.pipeline.stages.quality import QualityFilterDoFn

    options = replace(config.extract, method=method)
    extract = ExtractTextDoFn(options, extractor_setup(options, config.langid, config.filters))
    langid, rules = LanguageIdDoFn(config.langid), QualityFilterDoFn(config.filters.rules)
    for dofn in (extract, langid, rules):
        dofn.setup()
    docs, read_cpu = read_all(files[:1])  # warm up: starts the subprocess, loads lid.176
    for doc in docs[:3]:
        list(extract.process(doc))
    pid = extract._process._proc.pid
    child_before, started = child_cpu(pid), time.process_time()
    wall = time.perf_counter()
    docs, _ = read_all(files)
    kept = 0
    for doc in docs:
        for a in documents(extract.process(doc)):
            for b in documents(langid.process(a)):
                kept += len(documents(rules.process(b)))
    cpu = time.process_time() - started + child_cpu(pid) - child_before
    wall = time.perf_counter() - wall
    for dofn in (extract, langid, rules):
        dofn.teardown()
    return {"pages": len(docs), "kept": kept, "cpu": cpu, "wall": wall}


def profile(files: list[str], config) -> list[tuple[str, float]]:
    """CPU seconds of each part of today's path (method trafilatura) over all the pages."""
    from llamapipe.pipeline.stages.extract import ExtractionProcess, extractor_setup
    from llamapipe.pipeline.stages.extract_subprocess import PageExtractor
    from llamapipe.pipeline.stages.langid import LanguageIdDoFn
    from llamapipe.pipeline.stages.quality import QualityFilterDoFn
    from llamapipe.sources import commoncrawl

    spent = {"charset": 0.0, "prepass": 0.0, "trafilatura": 0.0}

    def timing(name, function):
        def timed(*args, **kwargs):
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - started
        return timed

    original = commoncrawl.decode_html
    commoncrawl.decode_html = timing("charset", original)
    try:
        docs, read_cpu = read_all(files)
    finally:
        commoncrawl.decode_html = original

    setup = extractor_setup(config.extract, config.langid, config.filters)
    extractor = PageExtractor(**setup)
    extractor._load_html = timing("prepass", extractor._load_html)
    extractor._prepass = timing("prepass", extractor._prepass)
    extractor._extract = timing("trafilatura", extractor._extract)
    started = time.process_time()
    results = [extractor(doc["html"], doc.get("url") or "", doc["source"]) for doc in docs]
    in_process = time.process_time() - started

    process = ExtractionProcess(setup, config.extract.max_seconds_per_page)
    process.extract(docs[0]["html"], "", "commoncrawl")
    pid = process._proc.pid
    child_before, started = child_cpu(pid), time.process_time()
    for doc in docs:
        process.extract(doc["html"], doc.get("url") or "", doc["source"])
    stage = time.process_time() - started + child_cpu(pid) - child_before
    process.close()

    extracted = [{**{k: v for k, v in doc.items() if k != "html"}, "text": r.text}
                 for doc, r in zip(docs, results, strict=True) if r.text is not None]
    langid, rules = LanguageIdDoFn(config.langid), QualityFilterDoFn(config.filters.rules)
    langid.setup()
    rules.setup()
    started = time.process_time()
    passed = [out for doc in extracted for out in documents(langid.process(doc))]
    langid_cpu = time.process_time() - started
    started = time.process_time()
    for doc in passed:
        documents(rules.process(doc))
    rules_cpu = time.process_time() - started
    return [
        ("WARC parsing", read_cpu - spent["charset"]),
        ("charset detection", spent["charset"]),
        ("parse + prepass", spent["prepass"]),
        ("trafilatura", spent["trafilatura"]),
        ("subprocess round trip", stage - in_process),
        ("language ID", langid_cpu),
        ("rules", rules_cpu),
    ], len(docs), sum(1 for r in results if r.stage == "extract" and r.text is not None)


def accuracy() -> dict:
    sys.path.insert(0, HERE)
    from extraction import load_pages, score

    from llamapipe.pipeline.stages.extract_subprocess import PageExtractor
    from llamapipe.sources.commoncrawl import decode_html

    pages = load_pages(os.path.join(REALDATA, "html_extraction", "trafilatura"))
    items = [p[0] for p in pages]
    texts = [decode_html(html, None)[0] for _, html in pages]
    out = {}
    for method in METHODS:
        extractor = PageExtractor(False, False, False, method=method)
        out[method] = score(items, [extractor(html).text for html in texts])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=2, help="each page read this many times (default 2)")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(REALDATA, "commoncrawl")):
        print(f"no real data under {REALDATA} (set LLAMAPIPE_REALDATA)", file=sys.stderr)
        return 2
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    from llamapipe.pipeline.config import ExtractConfig, FiltersConfig, LangIdConfig

    class _Config:  # the three sections the per-document path reads, at their defaults
        extract, langid, filters = ExtractConfig(), LangIdConfig(), FiltersConfig()

    config = _Config
    with tempfile.TemporaryDirectory() as folder:
        files = corpus(folder, args.copies)
        rows, pages, extracted = profile(files, config)
        total = sum(seconds for _, seconds in rows)
        print(f"Profile of today's CommonCrawl path (extract.method trafilatura), {pages} pages "
              f"({extracted} reached trafilatura), CPU seconds per 1,000 pages:")
        for name, seconds in rows:
            print(f"  {name:<24}{seconds / pages * 1000:>8.2f} s  {seconds / total:>6.1%}")
        print(f"  {'total':<24}{total / pages * 1000:>8.2f} s\n")

        scores = accuracy()
        runs = {method: end_to_end(files, method, config) for method in METHODS}
    base = runs["trafilatura"]["pages"] / runs["trafilatura"]["cpu"]
    print("Per method: accuracy on the 110 gold pages (every page extracted); the clean stage's per-document"
          " path on the pages above (CPU = this process + the extraction subprocess)")
    print(f"{'method':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'pages/s/core':>14}{'vs today':>10}"
          f"{'kept':>6}{'wall s':>8}")
    for method in METHODS:
        s, r = scores[method], runs[method]
        speed = r["pages"] / r["cpu"]
        print(f"{method:<14}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{speed:>14.1f}"
              f"{speed / base:>9.2f}x{r['kept']:>6}{r['wall']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
