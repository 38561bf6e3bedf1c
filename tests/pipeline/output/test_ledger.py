"""The ledger's counts of one small cleaning outcome, computed by hand."""

from __future__ import annotations

import apache_beam as beam

from llamapipe.pipeline.output.ledger import (
    CountLedger,
    drop_events,
    length_bucket,
    merge_ledger,
    read_events,
)


def test_length_buckets_are_powers_of_two():
    assert [length_bucket(n) for n in (0, 1, 2, 3, 1023, 1024, 2047)] == ["0", "1", "2", "2", "512", "1024",
                                                                           "1024"]


def test_bytes_lengths_and_languages_are_counted_per_source(tmp_path):
    read = [
        {"source": "c4", "id": "a", "text": "é" * 600},  # 600 characters, 1200 UTF-8 bytes
        {"source": "c4", "id": "b", "text": "x" * 40},
        {"source": "commoncrawl", "id": "c", "html": "<p>" + "y" * 2100 + "</p>"},
    ]
    kept = [
        {"source": "c4", "id": "a", "text": "é" * 500, "language": "fr"},
        {"source": "commoncrawl", "id": "c", "text": "y" * 1500, "language": "en"},
    ]
    drops = [{"source": "c4", "stage": "quality", "reason": "too_short", "id": "b"},
             {"source": "c4", "stage": "read", "reason": "unreadable", "id": "d"}]
    # What the per-file work records (file_work._SplitRecord): documents in as read, the reader's drop
    # (in and dropped) and the per-file stages' drops; the corpus-wide pipeline counts the rest.
    events = [e for doc in read for e in read_events(doc)] + [((drops[1]["source"], "in", ""), (1, 0, 0))]
    events += [e for drop in drops for e in drop_events(drop)]
    recorded = [[*key, *values] for key, values in events]
    with beam.Pipeline() as p:
        pcolls = [p | name >> beam.Create(items) for name, items in
                  (("Recorded", recorded), ("Kept", kept), ("Drops", []))]
        tuple(pcolls) | CountLedger(str(tmp_path / "counts"))
    ledger = merge_ledger(str(tmp_path / "counts*"))

    c4, cc = ledger["sources"]["c4"], ledger["sources"]["commoncrawl"]
    assert (c4["in"], c4["kept"], c4["dropped"]) == (3, 1, 2)  # the read drop is in and dropped
    assert (c4["chars_in"], c4["bytes_in"], c4["chars_kept"], c4["bytes_kept"]) == (640, 1240, 500, 1000)
    assert c4["length_histogram"] == {"in": {"32": 1, "512": 1}, "kept": {"256": 1}}
    assert c4["kept_languages"] == {"fr": 1}
    assert cc["length_histogram"] == {"in": {"2048": 1}, "kept": {"1024": 1}}  # the HTML as read
    assert cc["bytes_in"] == 2107 and cc["kept_languages"] == {"en": 1}
