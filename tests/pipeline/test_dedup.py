"""Exact and near duplicates become one document; the survivor follows the documented rule."""

import random

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.config import DedupConfig
from llamapipe.pipeline.dedup import Deduplicate, lsh_params

WORDS = ("river stone garden window market winter summer teacher engine harbor forest candle "
         "village letter bridge mountain kitchen silver doctor planet").split()


def text(seed: int, n: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(n))


def doc(doc_id: str, source: str, body: str) -> dict:
    return {"id": f"{source}:{doc_id}", "source": source, "text": body, "url": "", "meta": {}}


def test_exact_duplicates_across_sources_keep_the_higher_priority_source():
    body = text(1)
    docs = [doc("1", "commoncrawl", body), doc("2", "wikipedia", body.upper()), doc("3", "c4", text(2))]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(DedupConfig(near=False))
        assert_that(out["documents"] | beam.Map(lambda d: d["id"]),
                    equal_to(["wikipedia:2", "c4:3"]), label="kept")
        assert_that(out["dropped"] | beam.Map(lambda d: (d["id"], d["reason"])),
                    equal_to([("commoncrawl:1", "exact_duplicate")]), label="dropped")


def test_near_duplicate_pair_becomes_one_document_and_the_longer_survives():
    body = text(3).split()
    edited = list(body)
    for i in (40, 120, 200):
        edited[i] = "changed"
    longer = " ".join(body + ["extra", "words"])
    docs = [doc("a", "c4", " ".join(edited)), doc("b", "c4", longer), doc("c", "c4", text(4))]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(DedupConfig())
        assert_that(out["documents"] | beam.Map(lambda d: d["id"]), equal_to(["c4:b", "c4:c"]), label="kept")
        assert_that(out["dropped"] | beam.Map(lambda d: (d["id"], d["reason"])),
                    equal_to([("c4:a", "near_duplicate")]), label="dropped")


def test_dissimilar_documents_are_all_kept():
    docs = [doc(str(i), "c4", text(100 + i)) for i in range(20)]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(DedupConfig())
        assert_that(out["dropped"], equal_to([]), label="nothing dropped")


def test_source_scope_keeps_cross_source_copies():
    body = text(5)
    docs = [doc("1", "commoncrawl", body), doc("2", "c4", body)]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(DedupConfig(scope="source"))
        assert_that(out["documents"] | beam.Map(lambda d: d["id"]),
                    equal_to(["commoncrawl:1", "c4:2"]), label="kept")


def test_lsh_parameters_come_from_datasketch_for_the_threshold():
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128 and (bands, rows) == (9, 13)
