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

Profile rows (method `trafilatura`), CPU seconds per 1,000 pages read, after a warm-up pass:
  WARC parsing        the reader DoFn minus charset detection
  charset             `decode_html` (header/meta charset, else charset_normalizer)
  parse + prepass     resiliparse's parse, visible text, lid.176 on it; lxml's parse of the pages
                      that reach trafilatura (in-process PageExtractor)
  trafilatura         trafilatura.extract on the pages the prepass kept (in-process)
  subprocess trip     the stage's CPU (parent + child) minus the same work in-process
  language ID         LanguageIdDoFn on the extracted documents
  rules               QualityFilterDoFn on what language ID kept

Accuracy: precision/recall/F1 of each method's text on the gold snippets (every page extracted, no
policy), scored as benchmarks/extraction.py does.

The clean stage end to end, against the code of an earlier commit (`--baseline`, default 274fea2: main
when issue 28 was filed, its "today"): `pipeline/file_work.RecordSplitDoFn` on every split of the same
files (the reader, extraction in its subprocess, language ID, the rules, the dedup fingerprints, the
split's record written), once to warm up and once timed, in a child process per code version and
method (the earlier commit's files are taken with `git archive` and imported in place of this tree's).
CPU as above, the extraction process included.

    python benchmarks/cc_profile.py [--copies 2] [--baseline REF | --baseline none]
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REALDATA = os.environ.get("LLAMAPIPE_REALDATA", os.path.join(HERE, "..", "..", "shared", "realdata"))
REPO = os.path.dirname(HERE)
BASELINE = "274fea2"  # main when issue 28 was filed


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


def profile(files: list[str], config) -> tuple[list[tuple[str, float]], int, int]:
    """CPU seconds of each part of the path (method trafilatura) over all the pages; the pages, and
    those trafilatura extracted."""
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
    extractor._parse_page = timing("prepass", extractor._parse_page)
    extractor._prepass = timing("prepass", extractor._prepass)
    extractor._load_html = timing("prepass", extractor._load_html)
    extractor._extract = timing("trafilatura", extractor._extract)
    pages = [(doc["html"], doc.get("url") or "", doc["source"]) for doc in docs]
    for page in pages:  # warm-up (trafilatura loads its jusText stop lists on first use)
        extractor(*page)
    spent["prepass"] = spent["trafilatura"] = 0.0
    started = time.process_time()
    results = [extractor(*page) for page in pages]
    in_process = time.process_time() - started

    process = ExtractionProcess(setup, config.extract.max_seconds_per_page)
    for page in pages:  # warm-up, as above
        process.extract(*page)
    pid = process._proc.pid
    child_before, started = child_cpu(pid), time.process_time()
    for page in pages:
        process.extract(*page)
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def clean_stage_child(files: list[str], method: str) -> dict:
    """In a child process (`--clean-stage-child`): RecordSplitDoFn over every split of `files`, a warm-up
    pass then a timed one; CPU of this process and of the extraction processes (live or reaped)."""
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    from llamapipe.pipeline.config import parse_config
    from llamapipe.pipeline.file_work import RecordSplitDoFn
    from llamapipe.sources import file_reader
    from llamapipe.sources.reading import plan_splits

    out = tempfile.mkdtemp(prefix="cc-clean-")
    data: dict = {"output": out, "sources": {"commoncrawl": {"inputs": files}}}
    if method:
        data["extract"] = {"method": method}
    config = parse_config(data)
    options = config.sources["commoncrawl"]
    reader = file_reader("commoncrawl", options)
    reader.setup()
    splits = [(path, size, index, split) for path, size in ((p, os.path.getsize(p)) for p in files)
              for index, split in enumerate(plan_splits(reader, path, size, options.split_bytes))]
    dofn = RecordSplitDoFn(config, os.path.join(out, "files"))
    dofn.setup()

    def extraction_pid() -> int | None:
        process = dofn._stages[0][1]._process
        return process._proc.pid if process._proc is not None else None

    def cpu() -> float:
        pid = extraction_pid()
        return time.process_time() + _children_cpu() + (child_cpu(pid) if pid else 0.0)

    def one_pass() -> None:
        for path, size, index, split in splits:
            list(dofn.process(("commoncrawl", path, size, index, split)))

    one_pass()  # warm-up: starts the process, loads the models
    started, wall = cpu(), time.perf_counter()
    one_pass()
    spent, wall = cpu() - started, time.perf_counter() - wall
    pages = kept = 0
    for done in glob.glob(os.path.join(out, "**", "*.done-*.json"), recursive=True):  # the timed pass's
        with open(done, encoding="utf-8") as f:
            record = json.load(f)
        kept += record["documents"]
        pages += record["documents"] + record["dropped"]
    dofn.teardown()
    shutil.rmtree(out, ignore_errors=True)
    return {"pages": pages, "kept": kept, "cpu": spent, "wall": wall}


def clean_stage(files: list[str], method: str, code: str | None) -> dict:
    """`clean_stage_child` in a child process: with this tree's code, or with the files under `code`
    (a tree taken from git) imported as `llamapipe`."""
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--clean-stage-child",
                             json.dumps(files), method], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the clean stage ({method or 'baseline'}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def baseline_code(ref: str, folder: str) -> str:
    """The tree of commit `ref` (git archive) under `folder`, laid out as an importable `llamapipe`."""
    tree = os.path.join(folder, "tree")
    os.makedirs(tree)
    archive = subprocess.run(["git", "-C", REPO, "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    package = os.path.join(folder, "code", "llamapipe")
    os.makedirs(package)
    open(os.path.join(package, "__init__.py"), "w").close()
    for name in ("pipeline", "sources", "tokenizer", "model"):
        os.symlink(os.path.join(tree, name), os.path.join(package, name))
    return os.path.join(folder, "code")


def accuracy() -> dict:
    sys.path.insert(0, HERE)
    from extraction import load_pages, score

    from llamapipe.pipeline.plumbing.names import EXTRACT_METHODS
    from llamapipe.pipeline.stages.extract_subprocess import PageExtractor
    from llamapipe.sources.commoncrawl import decode_html

    pages = load_pages(os.path.join(REALDATA, "html_extraction", "trafilatura"))
    items = [p[0] for p in pages]
    texts = [decode_html(html, None)[0] for _, html in pages]
    out = {}
    for method in EXTRACT_METHODS:
        extractor = PageExtractor(False, False, False, method=method)
        out[method] = score(items, [extractor(html).text for html in texts])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=2, help="each page read this many times (default 2)")
    parser.add_argument("--baseline", default=BASELINE,
                        help=f"the commit whose clean stage is the reference (default {BASELINE}); "
                             "none: skip")
    parser.add_argument("--clean-stage-child", nargs=2, metavar=("FILES", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.clean_stage_child:
        print(json.dumps(clean_stage_child(json.loads(args.clean_stage_child[0]), args.clean_stage_child[1])))
        return 0
    if not os.path.isdir(os.path.join(REALDATA, "commoncrawl")):
        print(f"no real data under {REALDATA} (set LLAMAPIPE_REALDATA)", file=sys.stderr)
        return 2
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    from llamapipe.pipeline.config import ExtractConfig, FiltersConfig, LangIdConfig
    from llamapipe.pipeline.plumbing.names import EXTRACT_METHODS

    class _Config:  # the three sections the per-document path reads, at their defaults
        extract, langid, filters = ExtractConfig(), LangIdConfig(), FiltersConfig()

    config = _Config
    with tempfile.TemporaryDirectory() as folder:
        files = corpus(folder, args.copies)
        rows, pages, extracted = profile(files, config)
        total = sum(seconds for _, seconds in rows)
        print(f"Profile of the CommonCrawl path (extract.method trafilatura), {pages} pages "
              f"({extracted} reached trafilatura), warm, CPU seconds per 1,000 pages:")
        for name, seconds in rows:
            print(f"  {name:<24}{seconds / pages * 1000:>8.2f} s  {seconds / total:>6.1%}")
        print(f"  {'total':<24}{total / pages * 1000:>8.2f} s\n")

        scores = accuracy()
        stage = {}
        if args.baseline != "none":
            stage["baseline"] = clean_stage(files, "", baseline_code(args.baseline, folder))
        for method in EXTRACT_METHODS:
            stage[method] = clean_stage(files, method, None)
    today = stage["trafilatura"]["pages"] / stage["trafilatura"]["cpu"]
    base = stage["baseline"]["pages"] / stage["baseline"]["cpu"] if "baseline" in stage else None
    print(f"Per method: accuracy on the 110 gold pages (every page extracted); the clean stage end to end "
          f"(RecordSplitDoFn on the {pages} pages above: read, extract, language ID, rules, fingerprints, "
          f"record; warm; CPU incl. the extraction process)")
    print(f"{'code, method':<28}{'precision':>10}{'recall':>8}{'F1':>7}{'pages/s/core':>14}"
          f"{'vs ' + args.baseline:>12}{'vs trafilatura':>16}{'kept':>6}")
    for name, r in stage.items():
        speed = r["pages"] / r["cpu"]
        versus = f"{speed / base:>11.2f}x" if base else f"{'':>12}"
        if name == "baseline":
            label = f"{args.baseline} (trafilatura)"
            print(f"{label:<28}{'':>25}{speed:>14.1f}{versus}{'':>16}{r['kept']:>6}")
            continue
        s = scores[name]
        print(f"{'this tree, ' + name:<28}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}"
              f"{speed:>14.1f}{versus}{speed / today:>15.2f}x{r['kept']:>6}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
