"""The drop ledger: documents in, kept, and dropped per source, stage and reason.

Counted inside the pipeline as ordinary PCollections (exact on every runner, unlike metrics),
written as JSON lines, then merged by the driver into `OUT/ledger.json`:

    {"sources": {"c4": {"in": 500, "kept": 470, "dropped": 30, "chars_in": ..., "chars_kept": ...,
                        "bytes_in": ..., "bytes_kept": ...,
                        "dropped_by_stage": {"quality": {"c4_lorem_ipsum": 1, ...}, ...},
                        "length_histogram": {"in": {"512": 20, "1024": 310, ...}, "kept": {...}},
                        "kept_languages": {"en": 470},
                        "dropped_by_group": {"decontamination": {"mmlu": {"documents": 2, "chars": ...,
                                                                           "bytes": ...}}},
                        "pii": {"email": {"redacted": 12, "documents": 9}, "ip": {...}},       (pii on)
                        "quality_scores": {"dclm": {"0.00": 3, ..., "0.95": 120}}}},  (quality_models)
     "totals": {"in": ..., "kept": ..., "dropped": ...}}

Lengths are in characters, as read (the page's HTML for web pages) and as kept; a histogram bucket
"1024" holds the documents of 1024 to 2047 characters ("0": empty). The report draws them
(`llamapipe report`); they are counted here because no later step sees every document before cleaning.
`dropped_by_group` (only in a source with such drops) counts a stage's drops by a group of its own,
from the rows the stage emits (`plumbing.drops.group_row`): decontamination's per evaluation set.
`pii`: per kind, the addresses the `pii` stage replaced and the documents that had one (kept documents
only: it runs last); `quality_scores`: per model of `quality_models`, the documents per score bucket of
0.05 (lower bound), every document it scored, dropped ones included.
"""

from __future__ import annotations

import json

import apache_beam as beam

from llamapipe.pipeline.plumbing.drops import GROUP_ROW_PREFIX
from llamapipe.pipeline.stages.registry import PII_DOCUMENTS, PII_REDACTED, QUALITY_SCORE, stage_rank
from llamapipe.sources.reading import SOURCE_NAMES
from llamapipe.tokenizer.format import storage


def _doc_text(doc: dict) -> str:
    return doc.get("text") or doc.get("html") or ""


def length_bucket(chars: int) -> str:
    """The power of two at or below `chars` ("0" for an empty document)."""
    return str(1 << (chars.bit_length() - 1)) if chars > 0 else "0"


def read_events(doc: dict):
    """A document as read: one in, its length (the page's HTML for web pages)."""
    text = _doc_text(doc)
    yield (doc["source"], "in", ""), (1, len(text), len(text.encode("utf-8", "surrogatepass")))
    yield (doc["source"], "length_in", length_bucket(len(text))), (1, 0, 0)


def kept_events(doc: dict):
    text = doc["text"]
    yield (doc["source"], "kept", ""), (1, len(text), len(text.encode("utf-8", "surrogatepass")))
    yield (doc["source"], "length_kept", length_bucket(len(text))), (1, 0, 0)
    yield (doc["source"], "kept_language", doc.get("language") or "none"), (1, 0, 0)


def drop_events(drop: dict):
    yield (drop["source"], drop["stage"], drop["reason"]), (1, 0, 0)


def _add(values) -> tuple:
    """Element-wise sum of (count, chars, bytes, ...) tuples."""
    return tuple(map(sum, zip(*values, strict=True)))


class CountLedger(beam.PTransform):
    """(count rows recorded per input file, final documents, drops of the corpus-wide stages) -> JSON
    lines of counts. The rows are what `file_work._SplitRecord` counted of each split: documents in
    (as read) and the drops of the per-file stages, [source, stage, reason, count, chars, bytes]."""

    def __init__(self, path_prefix: str):
        super().__init__()
        self._prefix = path_prefix

    def expand(self, pcolls):
        recorded, kept, drops = pcolls
        events = (
            recorded | "Recorded" >> beam.Map(lambda row: (tuple(row[:3]), tuple(row[3:]))),
            kept | "Kept" >> beam.FlatMap(kept_events),
            drops | "Dropped" >> beam.FlatMap(drop_events),
        )
        # Summed per input first (combiner lifting: a few values per bundle), then merged: a Flatten
        # of the per-document events would be held whole by the local runners.
        sums = [part | f"Sum{i}" >> beam.CombinePerKey(_add) for i, part in enumerate(events)]
        return (
            sums
            | "AllSums" >> beam.Flatten()
            | "Sum" >> beam.CombinePerKey(_add)
            | "ToJson" >> beam.MapTuple(
                lambda key, value: json.dumps({
                    "source": key[0], "stage": key[1], "reason": key[2],
                    "count": value[0], "chars": value[1], "bytes": value[2],
                })
            )
            | "WriteCounts" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl")
        )


def merge_ledger(parts_glob: str) -> dict:
    """Merge the JSON-lines counts written by CountLedger into the ledger structure."""
    sources: dict[str, dict] = {}
    for path in storage.glob(parts_glob):
        for line in storage.read_text(path).splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            entry = sources.setdefault(
                row["source"],
                {"in": 0, "kept": 0, "dropped": 0, "chars_in": 0, "chars_kept": 0, "bytes_in": 0,
                 "bytes_kept": 0, "dropped_by_stage": {}, "length_histogram": {"in": {}, "kept": {}},
                 "kept_languages": {}},
            )
            stage = row["stage"]
            if stage in ("in", "kept"):
                entry[stage] += row["count"]
                entry[f"chars_{stage}"] += row["chars"]
                entry[f"bytes_{stage}"] += row.get("bytes", 0)
            elif stage in ("length_in", "length_kept"):
                histogram = entry["length_histogram"][stage[len("length_"):]]
                histogram[row["reason"]] = histogram.get(row["reason"], 0) + row["count"]
            elif stage.startswith(GROUP_ROW_PREFIX):  # a stage's drops by its own groups (drops.group_row)
                by_group = entry.setdefault("dropped_by_group", {})
                groups = by_group.setdefault(stage[len(GROUP_ROW_PREFIX):], {})
                group = groups.setdefault(row["reason"], {"documents": 0, "chars": 0, "bytes": 0})
                group["documents"] += row["count"]
                group["chars"] += row["chars"]
                group["bytes"] += row.get("bytes", 0)
            elif stage == "kept_language":
                languages = entry["kept_languages"]
                languages[row["reason"]] = languages.get(row["reason"], 0) + row["count"]
            elif stage in (PII_REDACTED, PII_DOCUMENTS):
                side = "redacted" if stage == PII_REDACTED else "documents"
                kind = entry.setdefault("pii", {}).setdefault(row["reason"], {"redacted": 0, "documents": 0})
                kind[side] += row["count"]
            elif stage == QUALITY_SCORE:
                model, bucket = row["reason"].rsplit(":", 1)
                histogram = entry.setdefault("quality_scores", {}).setdefault(model, {})
                histogram[bucket] = histogram.get(bucket, 0) + row["count"]
            else:
                entry["dropped"] += row["count"]
                by_reason = entry["dropped_by_stage"].setdefault(row["stage"], {})
                by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["count"]
    ordered = {name: sources[name] for name in SOURCE_NAMES if name in sources}
    for entry in ordered.values():
        entry["dropped_by_stage"] = {
            stage: _most_first(entry["dropped_by_stage"][stage])
            for stage in sorted(entry["dropped_by_stage"], key=stage_rank)
        }
        entry["length_histogram"] = {
            side: dict(sorted(histogram.items(), key=lambda kv: int(kv[0])))
            for side, histogram in entry["length_histogram"].items()
        }
        entry["kept_languages"] = _most_first(entry["kept_languages"])
        if "pii" in entry:
            entry["pii"] = dict(sorted(entry["pii"].items()))
        if "quality_scores" in entry:
            entry["quality_scores"] = {model: dict(sorted(histogram.items()))
                                       for model, histogram in sorted(entry["quality_scores"].items())}
    totals = {k: sum(e[k] for e in ordered.values()) for k in ("in", "kept", "dropped")}
    return {"sources": ordered, "totals": totals}


def _most_first(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def write_ledger(ledger: dict, path: str) -> None:
    storage.write_json(path, ledger)


def format_funnel(ledger: dict) -> str:
    """A readable per-source funnel: in, dropped by stage and reason, kept."""
    lines = []
    header = f"{'source':<14}{'in':>8}{'kept':>8}{'dropped':>9}   dropped by stage: reason (count)"
    lines.append(header)
    lines.append("-" * len(header))
    for name, entry in ledger["sources"].items():
        reasons = []
        for stage, by_reason in entry["dropped_by_stage"].items():
            parts = ", ".join(f"{reason} {count}" for reason, count in by_reason.items())
            reasons.append(f"{stage}: {parts}")
        first = reasons[0] if reasons else ""
        lines.append(f"{name:<14}{entry['in']:>8}{entry['kept']:>8}{entry['dropped']:>9}   {first}")
        for more in reasons[1:]:
            lines.append(f"{'':<39}   {more}")
    t = ledger["totals"]
    lines.append("-" * len(header))
    lines.append(f"{'total':<14}{t['in']:>8}{t['kept']:>8}{t['dropped']:>9}")
    return "\n".join(lines)
