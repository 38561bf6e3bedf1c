"""Language ID: lid.176 on the whole text, language and score stored, per-source policy."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.config import LangIdConfig
from llamapipe.pipeline.stages.langid import LanguageId
from llamapipe.pipeline.stages.lid176 import LanguageIdentifier

ENGLISH = ("The river valley was settled by farmers who grew wheat and barley on the terraces.\n"
           "Over the centuries they built stone walls to protect the fields from the floods.")
GERMAN = ("Das Flusstal wurde von Bauern besiedelt, die auf den Terrassen Weizen und Gerste anbauten.\n"
          "Im Laufe der Jahrhunderte bauten sie Steinmauern, um die Felder vor dem Hochwasser zu schützen.")


def test_whole_text_is_identified_not_only_its_first_line():
    identify = LanguageIdentifier()
    # fastText stops at a newline: a German first line must not decide for an English document.
    mixed = GERMAN.split("\n")[0] + "\n" + "\n".join([ENGLISH] * 4)
    assert identify(mixed)[0] == "en"
    assert identify(ENGLISH) == identify(" ".join(ENGLISH.split()))


def doc(doc_id: str, source: str, text: str, **meta) -> dict:
    return {"id": f"{source}:{doc_id}", "source": source, "text": text, "url": "", "meta": meta}


def test_policy_per_source_and_wikipedia_checked_against_its_dump():
    docs = [
        doc("en", "commoncrawl", ENGLISH),
        doc("de", "commoncrawl", GERMAN),
        doc("noise", "commoncrawl", "zq xv kkw 1234 ## qqq"),
        doc("de", "wikipedia", GERMAN, wiki_lang="de"),
        doc("en-in-de", "wikipedia", ENGLISH, wiki_lang="de"),
        doc("code", "github", "def f(x):\n    return x + 1\n"),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | LanguageId(LangIdConfig())
        assert_that(out["documents"] | "Kept" >> beam.Map(lambda d: (d["id"], d.get("language"))),
                    equal_to([("commoncrawl:en", "en"), ("wikipedia:de", "de"), ("github:code", None)]),
                    label="kept")
        assert_that(out["dropped"] | "Dropped" >> beam.Map(lambda d: (d["id"], d["reason"], bool(d["text"]))),
                    equal_to([("commoncrawl:de", "language_de", True),
                              ("commoncrawl:noise", "low_language_score", True),
                              ("wikipedia:en-in-de", "language_not_dump_language", True)]), label="dropped")
