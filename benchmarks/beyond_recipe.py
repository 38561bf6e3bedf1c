"""Speed of two stages beyond the LLaMA recipe, in documents/s and MB/s per core (one process, one thread):
PII redaction (`pipeline/stages/pii.py`, `RedactDoFn`) and a fastText quality model (`QualityModelsDoFn`
with the model tests/pipeline/stages/junk_model.py trains: 1,000 real sentences vs spam, dim 16, bigrams).

Texts: the real texts of tests/pipeline/stages/real_texts.py (544 documents made from ../shared/realdata
by the project's readers and trafilatura: C4 pages, web pages, Wikipedia articles, Stack Exchange
threads, Gutenberg books, arXiv LaTeX), each stage's DoFn called on each as a document, best of
`--repeat` passes. A quality model's cost grows with the words of a document and its dimension (a
DCLM-sized model, dim 256 or more, is slower per word than this dim-16 one); the figure is for this
model.

    python benchmarks/beyond_recipe.py [--realdata ../shared/realdata] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.pipeline.stages.real_texts, junk_model


def best_of(repeat: int, dofn, docs: list[dict]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for doc in docs:
            for _ in dofn.process(doc):
                pass
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--realdata", default=os.environ.get("LLAMAPIPE_REALDATA", REPO.parent / "shared"
                                                             / "realdata"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from llamapipe.pipeline.config import PIIConfig, QualityModelConfig
    from llamapipe.pipeline.stages.pii import RedactDoFn
    from llamapipe.pipeline.stages.quality_models import QualityModelsDoFn
    from tests.pipeline.stages.junk_model import train_junk_model
    from tests.pipeline.stages.real_texts import real_texts

    texts = real_texts(Path(args.realdata))
    docs = [{"id": f"bench:{i}", "source": "c4", "text": t.text, "meta": {}} for i, t in enumerate(texts)]
    megabytes = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    print(f"{len(docs)} real documents, {megabytes:.1f} MB of UTF-8 text; CPU seconds of one process, "
          f"best of {args.repeat}")
    pii = RedactDoFn(PIIConfig(enabled=True))
    pii.setup()
    with tempfile.TemporaryDirectory() as folder:
        model = QualityModelsDoFn([QualityModelConfig("junk", str(train_junk_model(Path(args.realdata),
                                                                                   Path(folder))), "hq")])
        model.setup()
    redacted = sum(1 for d in docs for out in pii.process(d) if isinstance(out, dict) and out is not d)
    for name, dofn in (("pii redaction (email, ip)", pii), ("fastText quality model (dim 16)", model)):
        seconds = best_of(args.repeat, dofn, docs)
        print(f"{name:<34} {len(docs) / seconds:>9,.0f} docs/s per core {megabytes / seconds:>7.1f} MB/s "
              f"per core  ({seconds:.3f} s)")
    print(f"documents with an address replaced: {redacted} of {len(docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
