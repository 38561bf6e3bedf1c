"""Language-ID benchmark: accuracy per language and sentences/s of our language-ID stage, and a check
that the stage predicts exactly what raw lid.176 predicts on the same text.

Data: one sentence per line, labelled by the file name (`<lang>.txt.gz`, ISO 639-1), e.g. the
Leipzig-corpora sentences of lingua-py's test data in ../shared/realdata/langid.

The stage is `LanguageIdDoFn` (pipeline/stages/langid.py) itself, run on each sentence as a document with a
policy that allows every lid.176 label; raw lid.176 is `fasttext.load_model(...).predict(sentence)`
on the same model file.

    python benchmarks/langid.py [--data ../shared/realdata/langid] [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "realdata", "langid")


def load(data: str) -> dict[str, list[str]]:
    sentences = {}
    for path in sorted(glob.glob(os.path.join(data, "*.txt.gz"))):
        lang = os.path.basename(path).split(".")[0]
        with gzip.open(path, "rt", encoding="utf-8") as f:
            sentences[lang] = [line.strip() for line in f if line.strip()]
    return sentences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sentences = load(args.data)
    if not sentences:
        print(f"no <lang>.txt.gz file under {args.data}", file=sys.stderr)
        return 2

    import fasttext

    from llamapipe.pipeline.config import LangIdConfig
    from llamapipe.pipeline.stages.langid import LanguageIdDoFn
    from llamapipe.pipeline.stages.lid176 import bundled_model_path

    fasttext.FastText.eprint = lambda *a, **k: None
    raw = fasttext.load_model(bundled_model_path())
    every_label = [label.removeprefix("__label__") for label in raw.get_labels()]
    stage = LanguageIdDoFn(LangIdConfig(threshold=0.0, allowed={"bench": every_label}))
    stage.setup()

    def run_stage(text: str) -> tuple[str, float]:
        doc = next(iter(stage.process({"id": "bench:0", "source": "bench", "text": text, "meta": {}})))
        return doc["language"], doc["language_score"]

    total = sum(len(v) for v in sentences.values())
    print(f"{total} sentences in {len(sentences)} languages, best of {args.repeat} runs, one core\n")
    print(f"{'lang':<6}{'sentences':>10}{'accuracy':>10}{'top confusion':>18}")
    correct_all, same_label, same_score, elapsed = 0, 0, 0, 0.0
    for lang, lines in sentences.items():
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            predicted = [run_stage(line) for line in lines]
            best = min(best, time.perf_counter() - started)
        elapsed += best
        reference = []
        for line in lines:
            labels, scores = raw.predict(line, k=1)
            reference.append((labels[0].removeprefix("__label__"), round(float(scores[0]), 4)))
        correct = sum(1 for label, _ in predicted if label == lang)
        correct_all += correct
        same_label += sum(1 for p, r in zip(predicted, reference, strict=True) if p[0] == r[0])
        same_score += sum(1 for p, r in zip(predicted, reference, strict=True) if p == r)
        wrong = [label for label, _ in predicted if label != lang]
        confusion = max(set(wrong), key=wrong.count) if wrong else "-"
        confusion = f"{confusion} ({wrong.count(confusion)})" if wrong else "-"
        print(f"{lang:<6}{len(lines):>10}{correct / len(lines):>10.3f}{confusion:>18}")
    print(f"{'all':<6}{total:>10}{correct_all / total:>10.3f}")
    print(f"\nstage: {total / elapsed:,.0f} sentences/s")
    print(f"stage equals raw lid.176: label on {same_label}/{total}, label and score on {same_score}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
