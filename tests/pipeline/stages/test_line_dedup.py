"""CCNet line dedup: a line in two documents leaves both; exact copies do not erase each other."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.config import LineDedupConfig
from llamapipe.pipeline.stages.line_dedup import LineDedup, line_hash, normalize_for_dedup, remove_lines


def doc(doc_id: str, lines: list[str], source: str = "commoncrawl") -> dict:
    return {"id": f"{source}:{doc_id}", "source": source, "text": "\n".join(lines), "url": "", "meta": {}}


def test_normalisation_is_ccnets():
    assert normalize_for_dedup("  Posted on 12 May 2021 ") == "posted on 00 may 0000"
    assert normalize_for_dedup("Hello，world！") == "helloworld"  # CCNet's Unicode punctuation goes
    assert normalize_for_dedup("Hello, world!") == "hello, world!"  # ASCII punctuation stays (as CCNet)
    assert line_hash("Share this: 3 comments") == line_hash("SHARE THIS: 7 COMMENTS")
    assert len(line_hash("x")) == 8


def test_repeats_inside_one_document_keep_the_first():
    text, removed = remove_lines("a line\nanother line\nA LINE\nlast", set())
    assert (text, removed) == ("a line\nanother line\nlast", 1)


def check(docs: list[dict], kept: dict, dropped: list, tmp_path, **options) -> None:
    config = LineDedupConfig(**{"min_chars_after": 0, **options})
    with TestPipeline() as p:
        out = p | beam.Create(docs) | LineDedup(config, str(tmp_path))
        assert_that(out["documents"] | "Kept" >> beam.Map(lambda d: (d["id"], d["text"])),
                    equal_to(list(kept.items())), label="kept")
        assert_that(out["dropped"] | "Dropped" >> beam.Map(lambda d: (d["id"], d["stage"], d["reason"])),
                    equal_to(dropped), label="dropped")


@pytest.mark.parametrize("partitions", [1, 3, 512])  # of line hashes: the result cannot depend on them
def test_a_line_in_two_documents_is_removed_from_both_and_other_sources_are_untouched(tmp_path, partitions):
    boiler = "Subscribe to our newsletter for 5 new stories every week."
    docs = [
        doc("a", ["The mill on the river was built in 1820 by the town.", boiler]),
        doc("b", ["Subscribe to our newsletter for 7 new stories every week.",
                  "Herons fish near the locks."]),
        doc("c", ["Herons fish near the locks.", "Herons fish near the locks."]),  # shares a line with b
        doc("d", [boiler, "A line only d has."], source="c4"),  # not a line-dedup source
    ]
    check(docs, {"commoncrawl:a": "The mill on the river was built in 1820 by the town.",
                 "c4:d": f"{boiler}\nA line only d has."},
          [("commoncrawl:b", "line_dedup", "no_lines_left"),
           ("commoncrawl:c", "line_dedup", "no_lines_left")], tmp_path, partitions=partitions)


def test_exact_copies_keep_their_lines_for_document_dedup(tmp_path):
    lines = ["First paragraph of a page that was crawled twice.", "Second paragraph of the same page."]
    other = ["Another page quotes this.", "Second paragraph of the same page."]
    # The copies count as one text: only the line also in b leaves them.
    check([doc("a", lines), doc("a2", lines), doc("b", other)],
          {"commoncrawl:a": lines[0], "commoncrawl:a2": lines[0],
           "commoncrawl:b": "Another page quotes this."}, [], tmp_path)


def test_documents_left_too_short_are_dropped_with_their_own_reason(tmp_path):
    shared = "A sentence that two pages share, word for word, and so neither keeps."
    check([doc("a", ["Short.", shared]), doc("b", ["x" * 400, shared])], {"commoncrawl:b": "x" * 400},
          [("commoncrawl:a", "line_dedup", "too_short_after_line_dedup")], tmp_path, min_chars_after=300)


def test_disabled_passes_everything(tmp_path):
    check([doc("a", ["same"]), doc("b", ["same"])], {"commoncrawl:a": "same", "commoncrawl:b": "same"}, [],
          tmp_path, enabled=False)
