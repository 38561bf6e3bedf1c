"""Rejects: a sample of dropped documents *with their text*, so a user can see what a rule removed.

Stages attach the dropped text to the drop record (`plumbing.drops.drop(..., text=)`); it travels with the
record only as far as this module, which writes `OUT/rejects/rejects-SSSSS-of-NNNNN.parquet`:
- every drop whose id hashes below `rate` (deterministic: a rerun samples the same documents), and
- for each (source, stage, reason) the drop with the smallest hash, so every reason has at least one
  example however rare. That pick is a combine per reason (one small value per key, pre-combined on
  each worker), so no step holds more than one document per reason.
The drop records written to `OUT/dropped/` never carry the text.

`llamapipe inspect OUT/rejects --reason R` prints them (pipeline/inspect/rejects.py).
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from llamapipe.pipeline.plumbing.sampling import id_fraction

REJECT_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("id", pa.string()),
        ("detail", pa.string()),
        ("text", pa.string()),
        ("sampled_by", pa.string()),  # "rate" or "first_of_reason"
    ],
    metadata={"llamapipe.schema_version": "1", "llamapipe.kind": "rejects"},
)


def without_text(drop: dict) -> dict:
    if "text" not in drop:
        return drop
    return {k: v for k, v in drop.items() if k != "text"}


def reject_row(drop: dict, sampled_by: str, max_chars: int) -> dict:
    text = drop.get("text")
    return {
        "source": drop["source"], "stage": drop["stage"], "reason": drop["reason"], "id": drop["id"],
        "detail": drop.get("detail", ""), "text": None if text is None else text[:max_chars],
        "sampled_by": sampled_by,
    }


def _smallest(candidates) -> tuple | None:
    """The (hash, id, row) of smallest (hash, id) among `candidates` (None where an input had none)."""
    present = [c for c in candidates if c is not None]
    return min(present, key=lambda c: c[:2]) if present else None


class SmallestIdHash(beam.CombineFn):
    """The drop with the smallest id hash (its text cut to `max_chars`, so accumulators stay small)."""

    def __init__(self, max_chars: int):
        self._max_chars = max_chars

    def create_accumulator(self):
        return None

    def add_input(self, best, drop):
        row = reject_row(drop, "first_of_reason", self._max_chars)
        candidate = (id_fraction(drop["id"]), drop["id"], row)
        return candidate if best is None or candidate[:2] < best[:2] else best

    def merge_accumulators(self, accumulators):
        return _smallest(accumulators)

    def extract_output(self, best):
        return best


RECORDED = "recorded"  # WriteRejects' input entry of candidates already sampled per input file


class WriteRejects(beam.PTransform):
    """Drops (some with `text`) -> OUT/rejects/*.parquet: the rate sample plus one per reason."""

    def __init__(self, path_prefix: str, rate: float, max_chars: int):
        super().__init__()
        self._prefix = path_prefix
        self._rate = rate
        self._max_chars = max_chars

    def expand(self, drops):
        """`drops`: one collection of drops, or several (each stage's): each is sampled where it is
        made, so only the sampled texts travel (a merge of all drops with their texts would be held in
        memory by the local runners). As a dict, its RECORDED entry holds candidates sampled the same
        way per input file by `file_work._SplitRecord`: ("rate", None, row) or ("first_of_reason", key,
        (hash, id, row))."""
        recorded = None
        if isinstance(drops, dict):
            drops = dict(drops)
            recorded = drops.pop(RECORDED, None)
            drops = list(drops.values())
        rate, max_chars = self._rate, self._max_chars
        rate_rows, best_of_reason = [], []
        for i, part in enumerate([drops] if isinstance(drops, beam.pvalue.PCollection) else drops):
            rate_rows.append(
                part
                | f"SampleByRate{i}" >> beam.Filter(lambda d: id_fraction(d["id"]) < rate)
                | f"RateRow{i}" >> beam.Map(reject_row, "rate", max_chars)
            )
            best_of_reason.append(
                part
                | f"KeyByReason{i}" >> beam.Map(lambda d: ((d["source"], d["stage"], d["reason"]), d))
                | f"SmallestHashPerReason{i}" >> beam.CombinePerKey(SmallestIdHash(max_chars))
            )
        if recorded is not None:
            rate_rows.append(recorded | "RecordedRate" >> beam.FlatMap(
                lambda c: [c[2]] if c[0] == "rate" else []))
            best_of_reason.append(recorded | "RecordedFirstOfReason" >> beam.FlatMap(
                lambda c: [(tuple(c[1]), c[2])] if c[0] == "first_of_reason" else []))
        first_of_reason = (
            best_of_reason
            | "AllReasons" >> beam.Flatten()
            | "SmallestHashOfAll" >> beam.CombinePerKey(_smallest)  # a reason met in several inputs
            # Already in the rate sample when its hash is below the rate: written once.
            | "NotSampledYet" >> beam.Filter(lambda kv: kv[1] is not None and kv[1][0] >= rate)
            | "FirstRow" >> beam.Map(lambda kv: kv[1][2])
        )
        return (
            [*rate_rows, first_of_reason]
            | "AllRejects" >> beam.Flatten()
            | "WriteParquet" >> beam.io.WriteToParquet(
                self._prefix, schema=REJECT_SCHEMA, codec="zstd", file_name_suffix=".parquet",
                shard_name_template="-SSSSS-of-NNNNN",
            )
        )

