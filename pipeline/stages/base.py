"""The contract of a cleaning stage: documents in, `{"documents": kept, "dropped": drop records}` out
(`plumbing.drops.outputs`, the shape of a reader's output too).

A stage is a `Stage` (a Beam PTransform) naming its registry entry once (`entry`, from `registry.py`):
its name is what its drops (`plumbing.drops.drop`), its counters (`Stage.counter`: `<source>.<stage>`),
the ledger and the progress line carry, and a corpus-wide stage's entry gives the recipe its Beam
label. A stage may return more outputs than the two (dedup's cluster statistics) and write reports of
its own beside the documents (`write_reports`, which the recipe calls after applying every stage).
"""

from __future__ import annotations

from typing import ClassVar

import apache_beam as beam

from llamapipe.pipeline.plumbing.drops import DOCUMENTS, DROPPED, LEDGER_ROWS, outputs, split_drops
from llamapipe.pipeline.stages.registry import StageEntry


class Stage(beam.PTransform):
    entry: ClassVar[StageEntry]

    outputs = staticmethod(outputs)  # kept documents, drop records, and any others of the stage's own

    def split(self, docs, label: str, dofn: beam.DoFn, *args, tags: tuple[str, ...] = ()) -> dict:
        """`docs` through a DoFn that yields kept documents and drops (on the DROPPED side output), and
        whatever it tags with `tags` (e.g. `LEDGER_ROWS`)."""
        out = split_drops(docs, label, dofn, *args, tags=tags)
        return outputs(out[DOCUMENTS], out[DROPPED], **{tag: out[tag] for tag in tags})

    def unchanged(self, docs, label: str = "NoDrops") -> dict:
        """Every document kept, none dropped (a stage that is off)."""
        return outputs(docs, docs | label >> beam.FlatMap(lambda _: []))

    def split_counting(self, docs, label: str, dofn: beam.DoFn) -> dict:
        """`split`, the DoFn's count events ((source, row, reason), (count, chars, bytes)) on `LEDGER_ROWS`
        summed per key into ledger rows [source, row, reason, count, chars, bytes]: a few rows whatever
        the corpus size (PII redactions, quality-score histograms)."""
        out = self.split(docs, label, dofn, tags=(LEDGER_ROWS,))
        out[LEDGER_ROWS] = (out[LEDGER_ROWS]
                            | "SumCounts" >> beam.CombinePerKey(_add_counts)
                            | "CountRows" >> beam.MapTuple(lambda key, value: [*key, *value]))
        return out

    def unchanged_counting(self, docs) -> dict:
        """`unchanged`, with an empty `LEDGER_ROWS` (a counting stage that is off)."""
        out = self.unchanged(docs)
        out[LEDGER_ROWS] = docs.pipeline | "NoCounts" >> beam.Create([])
        return out

    def write_reports(self, outputs: dict) -> None:
        """Write what the stage reports besides documents and drops, from its `outputs` (none here)."""

    @classmethod
    def counter(cls, source: str, name: str):
        """A Beam counter of this stage for one source (`<source>.<stage>`, `name`)."""
        return beam.metrics.Metrics.counter(f"{source}.{cls.entry.name}", name)


def _add_counts(values) -> tuple:
    return tuple(map(sum, zip(*values, strict=True)))
