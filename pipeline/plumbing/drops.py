"""The drop record, made one way, and the shape of what drops documents: `{"documents": kept, "dropped":
drop records}` (`outputs`), the output of every reader, source's corpus-wide step and stage.

The drop record: every document that leaves the pipeline becomes exactly one drop, so the ledger
reconciles (in = kept + dropped):

    {"source": "c4", "stage": "read", "reason": "malformed_json", "id": "...", "detail": "..."}

A reader or a stage emits it with `drop(...)` on its `DROPPED` side output, counted in Beam metrics as
`<source>.<stage>` / `dropped.<reason>`; a stage that drops a document's text passes it along (`text=`)
for the rejects sample (`llamapipe.pipeline.output.rejects`), which is the one step that reads it: the
drops written to `OUT/dropped/` never carry it. `drop_record` is the plain dict, for a drop decided in one
step and emitted in another (dedup's marks).
"""

from __future__ import annotations

import apache_beam as beam

DOCUMENTS = "documents"  # the main output: the documents kept
DROPPED = "dropped"  # tag of the side output that carries drop records
# A stage's output of ledger rows beside its drops, [source, row, reason, count, chars, bytes], which the
# recipe adds to the ledger's counts (`output/ledger.py` files each row name): its drops counted by a group
# of its own (decontamination's evaluation set, `group_row`, under `dropped_by_group`), or counts that are
# not drops (PII redactions, quality-score histograms). In a per-document DoFn of the per-file work they are
# events ((source, row, reason), (count, chars, bytes)) the split's record sums.
LEDGER_ROWS = "ledger_rows"
GROUP_ROW_PREFIX = "group:"


def outputs(documents, dropped, **more) -> dict:
    """What a reader, a source's corpus-wide step or a stage returns: kept documents, drop records, and any
    outputs of its own."""
    return {DOCUMENTS: documents, DROPPED: dropped, **more}


def split_drops(pcoll, label: str, dofn: beam.DoFn, *args, tags: tuple[str, ...] = ()):
    """`pcoll` through a DoFn that yields kept documents (the main output, `DOCUMENTS`) and drops (on
    `DROPPED`), and whatever it tags with `tags`."""
    return pcoll | label >> beam.ParDo(dofn, *args).with_outputs(DROPPED, *tags, main=DOCUMENTS)


def drop_record(source: str, stage: str, reason: str, doc_id: str = "", detail: str = "") -> dict:
    """Build a drop record (one per document that leaves the pipeline)."""
    return {
        "source": source,
        "stage": stage,
        "reason": reason,
        "id": doc_id,
        "detail": detail[:500],
    }


def group_row(source: str, stage: str, group: str, chars: int, utf8_bytes: int) -> list:
    """One document of `stage`'s drops counted under `group` (with its characters and UTF-8 bytes), in
    the shape of the per-file work's count rows: [source, "group:<stage>", group, count, chars, bytes]."""
    return [source, GROUP_ROW_PREFIX + stage, group, 1, chars, utf8_bytes]


def drop(source: str, stage: str, reason: str, doc_id: str = "", detail: str = "", text: str | None = None):
    """A drop record on the DROPPED side output, counted in Beam metrics for live progress; with `text`,
    carrying the dropped text for the rejects sample."""
    beam.metrics.Metrics.counter(f"{source}.{stage}", f"dropped.{reason}").inc()
    record = drop_record(source, stage, reason, doc_id, detail)
    if text is not None:
        record["text"] = text
    return beam.pvalue.TaggedOutput(DROPPED, record)
