"""CCNet perplexity buckets with a real KenLM model (a small bigram ARPA model estimated here)."""

from __future__ import annotations

import math
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.config import PerplexityConfig
from llamapipe.pipeline.stages.perplexity import PerplexityBuckets, PerplexityScorer, bucket_of, normalize

pytest.importorskip("kenlm")

CORPUS = ("the river valley was settled by farmers who grew wheat and barley on the terraces . "
          "over the centuries they built stone walls to protect the fields from the floods . "
          "travellers describe a quiet market town with a church and a mill and a bridge . ") * 20


def write_bigram_arpa(path, text: str) -> None:
    """A small bigram model in ARPA format: bigrams discounted by 10%, the rest backs off to unigrams."""
    sentences = [["<s>", *s.split(), "</s>"] for s in text.split(" . ") if s.strip()]
    unigrams = Counter(w for s in sentences for w in s[1:])
    total = sum(unigrams.values()) + 1  # one count of <unk> mass
    bigrams = Counter((a, b) for s in sentences for a, b in zip(s, s[1:], strict=False))
    history = Counter(a for s in sentences for a in s[:-1])
    backoff = math.log10(0.1)
    lines = ["\\data\\", f"ngram 1={len(unigrams) + 2}", f"ngram 2={len(bigrams)}", "", "\\1-grams:",
             f"{math.log10(1 / total):.6f}\t<unk>\t0", f"-99\t<s>\t{backoff:.6f}"]
    lines += [f"{math.log10(c / total):.6f}\t{w}\t{backoff:.6f}" for w, c in sorted(unigrams.items())]
    lines += ["", "\\2-grams:"]
    lines += [f"{math.log10(0.9 * c / history[a]):.6f}\t{a} {b}" for (a, b), c in sorted(bigrams.items())]
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines))


def test_normalisation_is_ccnets():
    assert normalize("  Café RÉSUMÉ 2024 „quoted” ") == 'cafe resume 0000 "quoted"'


def test_buckets_and_drops_by_perplexity(tmp_path):
    model = tmp_path / "bigram.arpa"
    write_bigram_arpa(model, CORPUS)
    scorer = PerplexityScorer(str(model))
    fluent = "The river valley was settled by farmers.\nThey built stone walls to protect the fields."
    odd = "Zorblax quintessential xylophone marmalade.\nBlorft wibble."
    assert scorer(fluent) < scorer(odd)
    cutoffs = [scorer(fluent) + 1, scorer(odd) - 1]
    assert bucket_of(scorer(fluent), cutoffs) == "head" and bucket_of(scorer(odd), cutoffs) == "tail"

    docs = [{"id": "commoncrawl:fluent", "source": "commoncrawl", "text": fluent, "meta": {}},
            {"id": "commoncrawl:odd", "source": "commoncrawl", "text": odd, "meta": {}},
            {"id": "c4:odd", "source": "c4", "text": odd, "meta": {}}]
    config = PerplexityConfig(model=str(model), cutoffs=cutoffs)
    with TestPipeline() as p:
        out = p | beam.Create(docs) | PerplexityBuckets(config)
        assert_that(out["documents"] | "Kept" >> beam.Map(lambda d: (d["id"], d["meta"].get("bucket"))),
                    equal_to([("commoncrawl:fluent", "head"), ("c4:odd", None)]), label="kept")
        assert_that(out["dropped"] | "Dropped" >> beam.Map(lambda d: (d["id"], d["stage"], d["reason"])),
                    equal_to([("commoncrawl:odd", "perplexity", "perplexity_tail")]), label="dropped")
