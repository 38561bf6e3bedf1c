"""Extraction benchmark: accuracy and speed of our extraction stage against plain trafilatura.

Data: trafilatura's own evaluation set (`evaldata.json`: per page, `with` snippets that must appear in
the main text and `without` snippets of boilerplate that must not), scored as trafilatura's
tests/comparison.py does: a `with` snippet found is a true positive, missing a false negative; a
`without` snippet found is a false positive; no output counts every `with` as missed.

Rows, all on one core, timed as the best of --repeat runs (the machine is shared):
  plain                trafilatura.extract(html) with its defaults (the reference)
  plain, stage options trafilatura.extract in this process with the stage's options
  stage                our stage (PageExtractor in its time-limited subprocess), no language or
                       length policy: every page is extracted, so its accuracy is comparable
  stage, CC policy     the stage as it runs for CommonCrawl (English only, CCNet length rule): the
                       prepass skips extraction for pages it can decide; accuracy is scored on the
                       pages it extracted (next to plain trafilatura with the stage's options on the
                       same pages), and every page it skipped is checked against what extraction +
                       the same rules on the extracted text would have decided
  frames               the cost of the parent/child protocol alone (`extract_subprocess`'s
                       `encode_request`, `decode_request`, `encode_reply`, `decode_reply`): each
                       page's request (html, url, source) and its reply (the stage's result with
                       plain trafilatura's text), encoded and decoded, over the pages repeated
                       --frame-copies times

The stage rows get each page as the CommonCrawl reader hands it to the stage: text decoded from the
page's bytes (`sources.commoncrawl.decode_html`), not the raw bytes.

    python benchmarks/extraction.py [--data ../shared/realdata/html_extraction/trafilatura] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "realdata", "html_extraction", "trafilatura")


def load_pages(data: str) -> list[tuple[dict, bytes]]:
    with open(os.path.join(data, "evaldata.json"), encoding="utf-8") as f:
        gold = json.load(f)
    pages = []
    for item in gold.values():
        path = os.path.join(data, "html", item["file"])
        if os.path.exists(path):
            with open(path, "rb") as f:
                pages.append((item, f.read()))
    return pages


def score(items: list[dict], outputs: list[str | None]) -> dict:
    tp = fn = fp = tn = 0
    for item, output in zip(items, outputs, strict=True):
        if isinstance(output, str):
            tp += sum(1 for s in item["with"] if s in output)
            fn += sum(1 for s in item["with"] if s not in output)
            fp += sum(1 for s in item["without"] if s in output)
            tn += sum(1 for s in item["without"] if s not in output)
        else:
            fn += len(item["with"])
            tn += len(item["without"])
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def timed(run, pages: list[bytes], repeat: int) -> tuple[list, float]:
    best, outputs = float("inf"), []
    for _ in range(repeat):
        started = time.perf_counter()
        outputs = [run(html) for html in pages]
        best = min(best, time.perf_counter() - started)
    return outputs, len(pages) / best


def frame_round_trips(requests: list[tuple], replies: list, repeat: int) -> tuple[float, int]:
    """Pages per second through the protocol alone: each request encoded and decoded, then its reply,
    as the parent and the child do (best of `repeat`); and the bytes of all frames."""
    from llamapipe.pipeline.stages.extract_subprocess import (
        decode_reply,
        decode_request,
        encode_reply,
        encode_request,
    )

    best, total = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        total = 0
        for request, reply in zip(requests, replies, strict=True):
            frame = encode_request(*request)
            decode_request(frame[4:])
            answer = encode_reply(reply)
            decode_reply(answer[4:])
            total += len(frame) + len(answer)
        best = min(best, time.perf_counter() - started)
    return len(requests) / best, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--frame-copies", type=int, default=3,
                        help="the pages repeated this many times for the frames row (default 3)")
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.data, "evaldata.json")):
        print(f"no evaldata.json under {args.data}", file=sys.stderr)
        return 2
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    import trafilatura

    from llamapipe.pipeline.config import ExtractConfig, FiltersConfig, LangIdConfig
    from llamapipe.pipeline.stages.extract import ExtractionProcess, extractor_setup
    from llamapipe.pipeline.stages.extract_subprocess import PageResult
    from llamapipe.pipeline.stages.lid176 import LanguageIdentifier
    from llamapipe.sources.commoncrawl import decode_html

    pages = load_pages(args.data)
    items, htmls = [p[0] for p in pages], [p[1] for p in pages]
    texts = [decode_html(html, None)[0] for html in htmls]  # what the stage receives from the reader
    config = ExtractConfig()
    print(f"{len(pages)} pages of trafilatura's evaluation set, best of {args.repeat} runs, one core\n")
    rows = []

    outputs, speed = timed(trafilatura.extract, htmls, args.repeat)
    rows.append(("plain trafilatura.extract", score(items, outputs), speed, len(pages)))

    no_policy = extractor_setup(config)
    stage_options = {k: no_policy[k] for k in ("favor_precision", "favor_recall", "include_tables")}
    reference, speed = timed(
        lambda h: trafilatura.extract(h, include_comments=False, deduplicate=False, **stage_options),
        htmls, args.repeat)
    rows.append(("plain, stage options", score(items, reference), speed, len(pages)))

    process = ExtractionProcess(no_policy, config.max_seconds_per_page)
    process.extract(texts[0], "", "benchmark")  # start the process outside the timing
    results, speed = timed(lambda h: process.extract(h, "", "benchmark"), texts, args.repeat)
    process.close()
    rows.append(("stage (no policy)", score(items, [r.text for r in results]), speed, len(pages)))
    same = sum(1 for r, t in zip(results, reference, strict=True)
               if (r.text or None) == (t.strip() if t else None))

    cc_setup = extractor_setup(config, LangIdConfig(), FiltersConfig())
    process = ExtractionProcess(cc_setup, config.max_seconds_per_page)
    process.extract(texts[0], "", "commoncrawl")
    results, speed = timed(lambda h: process.extract(h, "", "commoncrawl"), texts, args.repeat)
    process.close()
    extracted = [i for i, r in enumerate(results) if r.text is not None or r.stage == "extract"]
    subset = [items[i] for i in extracted]
    rows.append(("stage (CommonCrawl policy)", score(subset, [results[i].text for i in extracted]),
                 speed, len(extracted)))
    rows.append(("  plain on the same pages", score(subset, [reference[i] for i in extracted]), None,
                 len(extracted)))

    print(f"{'':<28}{'precision':>10}{'recall':>8}{'F1':>7}{'pages/s':>9}{'scored':>8}")
    for name, s, speed, n in rows:
        rate = f"{speed:>9.1f}" if speed else f"{'':>9}"
        print(f"{name:<28}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{rate}{n:>8}")
    replies = [PageResult(t.strip() if t else None) for t in reference]
    frames = [(text, "https://example.org/", "commoncrawl") for text in texts] * args.frame_copies
    frame_replies = replies * args.frame_copies
    frame_speed, frame_bytes = frame_round_trips(frames, frame_replies, args.repeat)
    print(f"{'frames (protocol only)':<28}{'':>25}{frame_speed:>9.0f}{len(frames):>8}"
          f"   {frame_bytes / len(frames) / 1024:.1f} KiB per page and reply")
    print(f"\nstage (no policy) output identical to plain with the stage's options on "
          f"{same}/{len(pages)} pages")

    # Every page the prepass decided: would extraction + the later rules have dropped it too?
    identify = LanguageIdentifier()
    skipped = [i for i, r in enumerate(results) if r.text is None and r.stage != "extract"]
    confirmed, disagreements = 0, []
    for i in skipped:
        text = (reference[i] or "").strip()
        if results[i].stage == "quality":
            agrees = len(text) < 300
        else:
            language, lid_score = identify(text) if text else ("", 0.0)
            agrees = not text or language != "en" or lid_score < 0.5
        confirmed += agrees
        if not agrees:
            disagreements.append(f"{items[i]['file']}: {results[i].reason} ({results[i].detail})")
    print(f"prepass skipped {len(skipped)}/{len(pages)} pages; extraction + the same rules would have "
          f"dropped {confirmed} of them too")
    for line in disagreements:
        print(f"  kept by the full path: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
