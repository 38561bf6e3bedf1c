"""CPU time of each quality rule set of `pipeline/stages/quality.py`, per document, on real web text.

`benchmarks/cc_profile.py` found the rules 26% of the CommonCrawl path's CPU (about 17 ms per document that
reaches them); this says which rule costs it. Texts: the C4 pages, extracted web pages and WET records of
tests/pipeline/stages/real_texts.py (made at run time from ../shared/realdata; nothing stored here), each
rule called alone on every text, best of `--repeat` passes, then the Gopher quality and repetition rules
one after the other as the CommonCrawl and C4 rule lists call them (they share the text's words).

    python benchmarks/quality_rules.py [--realdata ../shared/realdata] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.pipeline.stages.real_texts


def best_of(repeat: int, calls, texts: list[str]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for text in texts:
            for call in calls:
                call(text)
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--realdata", default=str(REPO.parent / "shared" / "realdata"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from llamapipe.pipeline.stages.quality import RULES
    from tests.pipeline.stages.real_texts import real_texts

    texts = [t.text for t in real_texts(Path(args.realdata)) if t.kind in ("c4", "web", "wet")]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"{len(texts)} real C4, web and WET texts, {megabytes:.2f} MB; CPU ms per document, best of "
          f"{args.repeat}")
    for name, make in RULES.items():
        rule = make()
        seconds = best_of(args.repeat, [getattr(rule, "clean", rule)], texts)
        print(f"  {name:28s} {seconds * 1000 / len(texts):7.2f}")
    pair = [RULES["gopher_quality"](), RULES["gopher_repetition"]()]
    seconds = best_of(args.repeat, pair, texts)
    print(f"  {'gopher_quality + repetition':28s} {seconds * 1000 / len(texts):7.2f}  "
          "(one after the other, as a rule list calls them)")


if __name__ == "__main__":
    main()
