"""A small fastText quality model trained by the tests in about a second: 1,000 real English sentences
(../shared/realdata/langid/en.txt.gz, Leipzig web sentences) labelled `__label__hq` against 1,000 lines
of generated spam (`spam_text`, words written for this test) labelled `__label__junk`. Trained in a fresh
process by the pipeline's own trainer (`python -m llamapipe.pipeline.stages.fasttext_train`): trained in a
process that has run other work (trafilatura, Beam), fastText stopped with "Encountered NaN" (its
docstring has the measurement; seen here too, after real_texts' extraction)."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

SPAM_WORDS = ("buy cheap pills online casino bonus click here free winner now best price limited offer "
              "viagra crypto earn money fast guaranteed discount deal subscribe instant cash prize loans "
              "hot singles miracle diet lose weight win big jackpot exclusive promo code act today").split()


def spam_text(rng: random.Random, words: int) -> str:
    """Lines of 8 to 15 spam words, `words` words in all."""
    out, line = [], []
    for _ in range(words):
        line.append(rng.choice(SPAM_WORDS))
        if len(line) >= rng.randint(8, 15):
            out.append(" ".join(line) + "!")
            line = []
    if line:
        out.append(" ".join(line))
    return "\n".join(out)


def train_junk_model(realdata: Path, folder: Path) -> Path:
    with gzip.open(realdata / "langid" / "en.txt.gz", "rt", encoding="utf-8") as f:
        real = [line.strip() for line in f if line.strip()]
    rng = random.Random(0)
    lines = [f"__label__hq {line}" for line in real]
    lines += [f"__label__junk {spam_text(rng, rng.randint(8, 20)).replace(chr(10), ' ')}" for _ in real]
    rng.shuffle(lines)
    train = folder / "train.txt"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = folder / "junk.bin"
    request = {"input": str(train), "output": str(path), "epoch": 10, "word_ngrams": 2, "dim": 16,
               "bucket": 50_000, "attempts": [[0.5, 0], [0.25, 0]]}
    result = subprocess.run([sys.executable, "-m", "llamapipe.pipeline.stages.fasttext_train"],
                            input=json.dumps(request), capture_output=True, text=True, check=True,
                            timeout=120)
    assert "nan" not in json.loads(result.stdout), result.stdout
    return path
