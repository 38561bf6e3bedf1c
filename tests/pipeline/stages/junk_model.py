"""A small fastText quality model trained by the tests in about a second: 1,000 real English sentences
(../shared/realdata/langid/en.txt.gz, Leipzig web sentences) labelled `__label__hq` against 1,000 lines
of generated spam (`spam_text`, words written for this test) labelled `__label__junk`."""

from __future__ import annotations

import gzip
import random
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
    import fasttext

    with gzip.open(realdata / "langid" / "en.txt.gz", "rt", encoding="utf-8") as f:
        real = [line.strip() for line in f if line.strip()]
    rng = random.Random(0)
    lines = [f"__label__hq {line}" for line in real]
    lines += [f"__label__junk {spam_text(rng, rng.randint(8, 20)).replace(chr(10), ' ')}" for _ in real]
    rng.shuffle(lines)
    train = folder / "train.txt"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fasttext.FastText.eprint = lambda *args, **kwargs: None
    model = fasttext.train_supervised(input=str(train), epoch=10, lr=0.5, wordNgrams=2, dim=16, bucket=50_000,
                                      thread=1, seed=0, verbose=0)
    path = folder / "junk.bin"
    model.save_model(str(path))
    return path
