"""fastText supervised training in a fresh process: `python -m llamapipe.pipeline.stages.fasttext_train`.

Why a process of its own: trained inside a long-lived Beam worker, the same training file, seed,
learning rate and `thread=1` gave different models from run to run, and on the 32,000-document
benchmark corpus every one of six attempts stopped with "Encountered NaN" (the stage was then
skipped), while the same file trained in a fresh interpreter gave one byte-identical model every
time (checked 6 of 6). The worker's floating-point mode was the default (denormals not flushed), so
the likely cause is state fastText picks up from the process it runs in; whatever it is, a fresh
process has none of it. It costs one interpreter start (this module imports only fasttext).

Protocol: one JSON request on stdin, {"input", "output", "epoch", "word_ngrams", "dim", "bucket",
"attempts": [[lr, seed], ...]}; the attempts are tried in order until one trains without NaN, the
model is saved to "output", and one JSON line on stdout says {"lr", "seed"} or {"nan": attempts}.
Any other error exits non-zero with fastText's message on stderr.
"""

from __future__ import annotations

import json
import sys


def train(request: dict) -> dict:
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None
    for lr, seed in request["attempts"]:
        try:
            model = fasttext.train_supervised(
                input=request["input"], epoch=request["epoch"], lr=lr, wordNgrams=request["word_ngrams"],
                dim=request["dim"], bucket=request["bucket"], seed=seed, thread=1, verbose=0,
            )
        except RuntimeError as exc:
            if "NaN" not in str(exc):
                raise
            continue
        model.save_model(request["output"])
        return {"lr": lr, "seed": seed}
    return {"nan": len(request["attempts"])}


def main() -> int:
    result = train(json.loads(sys.stdin.read()))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
