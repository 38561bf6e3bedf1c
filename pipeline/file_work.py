"""Per-file work: everything a run does to one input file on its own, recorded under OUT once done.

A run cleans in two pipelines (`run.py`). The first, built here, takes each input file (or each split
of a big one) through its source's reader (and the source's own per-file cleaning), HTML extraction,
language ID, the quality rules and the user's quality models, in one worker call, computes each kept
document's dedup fingerprint (text hash and MinHash signature, `stages.dedup.fingerprints.fingerprint`),
and records the result under OUT as soon as that split is done. The second (`recipe.build_cleaning`)
reads the records of every file the config lists and runs what needs the whole corpus: a source's own
corpus-wide step (GitHub's exact dedup, Stack Exchange's largest sites), document dedup, line dedup,
perplexity, the classifier, PII redaction.

So a killed run, rerun with the same command, does again only the splits that were not recorded
(datatrove does the same with its per-task completion files), and a run whose config lists more (or
fewer) files than the finished run in OUT reuses the records of every file it still lists
(`run.prepare_output` allows a config that differs only by `sources.<name>.inputs`).

Layout, under `OUT/_work/files/<source>/<file key>/` (the key: a hash of the path and size, so a
file rewritten with another size is a new file; the name's start is the file's, for a reader):
    splits-NNNNN                the file's plan: NNNNN splits (an empty object, written once planned)
    SSSSS.<attempt>.docs.zst    split SSSSS's documents out of the per-document stages (spill frames)
    SSSSS.<attempt>.drops.zst   its drop records, without text
    SSSSS.<attempt>.rejects.zst its candidates for the rejects sample, with text
    SSSSS.done-D.json           written last, complete or absent (`storage.write_bytes`): the attempt,
                                the split's ledger counts and its reader's extra outputs; D: documents
                                in (read, or dropped by the reader), so `status` counts from a listing
A file is recorded when its plan exists and each of its splits has its `done.json`; the driver tells
that from one listing of the folder, without reading a record. A split redone after a kill writes
under a new attempt name; what a killed attempt left is never read (its done.json names the files).

Why one worker call per split rather than a Beam stage per step: a split's record must be complete
the moment its last document is done, not when the whole stage is (Beam's batch runners finish a stage
before they write what comes after). The per-document steps run in the order of the cleaning graph
and are the same DoFns (`ExtractTextDoFn`, `LanguageIdDoFn`, `QualityFilterDoFn`, `QualityModelsDoFn`),
called in turn.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import apache_beam as beam

from llamapipe.pipeline.config import Config
from llamapipe.pipeline.output.ledger import drop_events, read_events
from llamapipe.pipeline.output.rejects import SmallestIdHash, reject_row
from llamapipe.pipeline.plumbing.drops import DROPPED, LEDGER_ROWS
from llamapipe.pipeline.plumbing.files_as_shuffle import FrameWriter, read_frames
from llamapipe.pipeline.plumbing.progress import count_in_process
from llamapipe.pipeline.plumbing.sampling import id_fraction
from llamapipe.pipeline.stages.dedup.fingerprints import FINGERPRINT, fingerprint, fingerprinter
from llamapipe.pipeline.stages.extract import ExtractTextDoFn, extractor_setup
from llamapipe.pipeline.stages.langid import LanguageIdDoFn
from llamapipe.pipeline.stages.quality import QualityFilterDoFn
from llamapipe.pipeline.stages.quality_models import QualityModelsDoFn
from llamapipe.pipeline.stages.registry import EXTRACT, LANGID, QUALITY, QUALITY_MODELS, READ
from llamapipe.sources import file_reader
from llamapipe.sources.reading import plan_splits
from llamapipe.tokenizer.format import storage

PLAN = re.compile(r"splits-(?P<count>\d{5,})")
DONE = re.compile(r"(?P<index>\d{5,})\.done-(?P<documents>\d+)\.json")
KINDS = ("docs", "drops", "rejects")


@dataclass(frozen=True)
class InputFile:
    """One input file a config lists: its source, its path as matched, and its size."""

    source: str
    path: str
    size: int

    @property
    def key(self) -> str:
        """The file's folder name: its name's start (readable), and a hash of path and size."""
        digest = hashlib.sha1(f"{self.path}\0{self.size}".encode()).hexdigest()[:16]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", storage.basename(self.path))[:40]
        return f"{name}-{digest}"


def list_inputs(config: Config) -> list[InputFile]:
    """Every file the enabled sources' globs match, once per path (as `ReadFiles` reads them), sorted."""
    files = []
    for source in config.enabled_sources():
        seen: dict[str, int] = {}
        for pattern in config.sources[source].inputs:
            for path, size in storage.match(pattern):
                seen.setdefault(path, size)
        files += [InputFile(source, path, size) for path, size in sorted(seen.items())]
    return files


def file_folder(files_dir: str, f: InputFile) -> str:
    return storage.join(files_dir, f.source, f.key)


def split_name(index: int) -> str:
    return f"{index:05d}"


class Records:
    """What `OUT/_work/files` holds, from one listing: which splits and files are recorded."""

    def __init__(self, files_dir: str):
        self.files_dir = files_dir
        self._plans: dict[str, int] = {}
        self._done: dict[str, dict[int, tuple[str, int]]] = defaultdict(dict)
        for relative in storage.walk(files_dir):
            parts = relative.split("/")
            if len(parts) != 3:
                continue
            folder = "/".join(parts[:2])
            if plan := PLAN.fullmatch(parts[2]):
                self._plans[folder] = int(plan["count"])
            elif done := DONE.fullmatch(parts[2]):
                self._done[folder][int(done["index"])] = (parts[2], int(done["documents"]))

    def _folder(self, f: InputFile) -> str:
        return f"{f.source}/{f.key}"

    def done_splits(self, f: InputFile) -> set[int]:
        return set(self._done.get(self._folder(f), ()))

    def is_done(self, f: InputFile) -> bool:
        count = self._plans.get(self._folder(f))
        return count is not None and set(self._done.get(self._folder(f), {})) >= set(range(count))

    def documents(self, f: InputFile) -> int:
        """Documents in of the file's recorded splits."""
        return sum(documents for _, documents in self._done.get(self._folder(f), {}).values())

    def records(self, files: Iterable[InputFile]) -> list[tuple[str, str]]:
        """(source, done record path) of every split of the given (recorded) files, sorted."""
        out = []
        for f in files:
            folder, count = file_folder(self.files_dir, f), self._plans.get(self._folder(f), 0)
            out += [(f.source, storage.join(folder, name))
                    for i, (name, _) in sorted(self._done.get(self._folder(f), {}).items()) if i < count]
        return sorted(out)


# ---------------------------------------------------------------------------------------------
# The per-file pipeline


def build_file_work(p: beam.Pipeline, config: Config, files_dir: str, pending: list[InputFile],
                    records: Records, progress_folder: str | None = None) -> None:
    """Plan each pending file, then record each of its splits not yet recorded."""
    tasks = [(f.source, f.path, f.size, sorted(records.done_splits(f))) for f in pending]
    (
        p
        | "PendingFiles" >> beam.Create(tasks, reshuffle=False)
        | "SpreadFiles" >> beam.Reshuffle()
        | "PlanSplits" >> beam.ParDo(PlanFileDoFn(config, files_dir))
        | "SpreadSplits" >> beam.Reshuffle()
        | "RecordSplits" >> beam.ParDo(RecordSplitDoFn(config, files_dir, progress_folder))
    )


class PlanFileDoFn(beam.DoFn):
    """(source, path, size, splits already done) -> (source, path, size, index, split) for each split
    still to do; records the plan (`splits-NNNNN`) the first time."""

    def __init__(self, config: Config, files_dir: str):
        self._config = config
        self._files_dir = files_dir

    def setup(self) -> None:
        self._readers = {name: file_reader(name, self._config.sources[name])
                         for name in self._config.enabled_sources()}

    def process(self, task):
        source, path, size, done = task
        options = self._config.sources[source]
        splits = plan_splits(self._readers[source], path, size, options.split_bytes)
        folder = file_folder(self._files_dir, InputFile(source, path, size))
        plan = storage.join(folder, f"splits-{len(splits):05d}")
        if not done and not storage.is_file(plan):
            storage.write_bytes(plan, b"")
        for index, split in enumerate(splits):
            if index not in done:
                yield source, path, size, index, split


class RecordSplitDoFn(beam.DoFn):
    """(source, path, size, index, split) -> the split's record under its file's folder: the source's
    reader, then extraction, language ID and the quality rules on each document."""

    def __init__(self, config: Config, files_dir: str, progress_folder: str | None = None):
        self._config = config
        self._files_dir = files_dir
        self._progress = progress_folder

    def setup(self) -> None:
        config = self._config
        self._readers = {name: file_reader(name, config.sources[name]) for name in config.enabled_sources()}
        self._stages = [
            (EXTRACT.name, ExtractTextDoFn(config.extract, extractor_setup(config.extract, config.langid,
                                                                           config.filters))),
            (LANGID.name, LanguageIdDoFn(config.langid)),
            (QUALITY.name, QualityFilterDoFn(config.filters.rules)),
        ]
        if config.quality_models:  # (else not on the progress line: a step never counted is not shown)
            self._stages.append((QUALITY_MODELS.name, QualityModelsDoFn(config.quality_models)))
        self._dofns = [*self._readers.values(), *(stage for _, stage in self._stages)]
        for dofn in self._dofns:
            dofn.setup()
        self._hasher = fingerprinter(config.dedup)
        self._fingerprints = config.dedup.exact or config.dedup.near

    def teardown(self) -> None:
        for dofn in getattr(self, "_dofns", []):  # (none when setup failed early)
            dofn.teardown()

    def process(self, element):
        source, path, size, index, split = element
        started = time.time()
        folder = file_folder(self._files_dir, InputFile(source, path, size))
        attempt = uuid.uuid4().hex[:12]
        names = {kind: f"{split_name(index)}.{attempt}.{kind}.zst" for kind in KINDS}
        record = _SplitRecord(self._config, {k: storage.join(folder, n) for k, n in names.items()})
        try:
            reader = self._readers[source]
            for item in reader.process(split):
                if isinstance(item, beam.pvalue.TaggedOutput):
                    if item.tag == DROPPED:
                        record.drop(item.value, at_read=True)
                    else:
                        record.extra(item.tag, item.value)
                    continue
                record.read(item)
                self._count(READ.name)
                for doc in self._per_document(item, record):
                    if self._fingerprints:
                        doc = {**doc, FINGERPRINT: fingerprint(doc["text"], self._hasher)}
                    record.keep(doc)
        finally:
            record.close()
        done = {
            "source": source, "path": path, "size": size, "split": index, "describe": split.describe(),
            "attempt": attempt, "files": names, "documents": record.kept, "dropped": record.dropped,
            "counts": record.count_rows(), "extra": record.extras, "seconds": round(time.time() - started, 3),
        }
        storage.write_bytes(storage.join(folder, f"{split_name(index)}.done-{record.documents_in}.json"),
                            json.dumps(done, sort_keys=True).encode("utf-8"))
        beam.metrics.Metrics.counter("file_work", "splits_recorded").inc()
        yield source, path, index

    def _per_document(self, doc: dict, record: _SplitRecord) -> Iterator[dict]:
        """The document through each per-document stage in turn; drops go to the record."""
        documents = [doc]
        for step, stage in self._stages:
            passed = []
            for current in documents:
                for out in stage.process(current):
                    if isinstance(out, beam.pvalue.TaggedOutput):
                        if out.tag == LEDGER_ROWS:  # counts that are not drops (a quality model's scores)
                            record.count(*out.value)
                        else:
                            record.drop(out.value)
                    else:
                        passed.append(out)
            documents = passed
            for _ in passed:
                self._count(step)
        return iter(documents)

    def _count(self, step: str) -> None:
        if self._progress:
            count_in_process(self._progress, step)


class _SplitRecord:
    """What one split's record holds, written as it goes: documents, drops, rejects candidates (the
    rate sample and the smallest id hash per reason, as `output.rejects.WriteRejects` picks them), ledger
    counts and the reader's extra outputs."""

    def __init__(self, config: Config, paths: dict[str, str]):
        self._rate = config.rejects.rate
        self._max_chars = config.rejects.max_chars
        self._smallest = SmallestIdHash(self._max_chars)  # as WriteRejects picks a reason's example
        self._writers = {kind: FrameWriter(path) for kind, path in paths.items()}
        self._counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        self._first_of_reason: dict[tuple, tuple] = {}
        self.extras: dict[str, list] = defaultdict(list)
        self.kept = 0
        self.dropped = 0
        self.documents_in = 0

    def _add(self, events) -> None:
        for key, values in events:
            total = self._counts[key]
            for i, value in enumerate(values):
                total[i] += value

    def read(self, doc: dict) -> None:
        self._add(read_events(doc))
        self.documents_in += 1

    def keep(self, doc: dict) -> None:
        self._writers["docs"].write(doc)
        self.kept += 1

    def drop(self, drop: dict, at_read: bool = False) -> None:
        if at_read:  # a reader's drop is a document in that was never a document out
            self._add([((drop["source"], "in", ""), (1, 0, 0))])
            self.documents_in += 1
        self._add(drop_events(drop))
        self.dropped += 1
        if id_fraction(drop["id"]) < self._rate:
            self._writers["rejects"].write(("rate", None, reject_row(drop, "rate", self._max_chars)))
        key = (drop["source"], drop["stage"], drop["reason"])
        self._first_of_reason[key] = self._smallest.add_input(self._first_of_reason.get(key), drop)
        self._writers["drops"].write({k: v for k, v in drop.items() if k != "text"})

    def count(self, key: tuple, values: tuple) -> None:
        self._add([(key, values)])

    def extra(self, tag: str, value) -> None:
        self.extras[tag].append(value)

    def count_rows(self) -> list[list]:
        return [[*key, *values] for key, values in sorted(self._counts.items())]

    def close(self) -> None:
        for key, best in sorted(self._first_of_reason.items()):
            self._writers["rejects"].write(("first_of_reason", key, best))
        for writer in self._writers.values():
            writer.close()


# ---------------------------------------------------------------------------------------------
# Reading records back (the corpus-wide pipeline)

RECORD_DROPS = "recorded_drops"
RECORD_COUNTS = "recorded_counts"
RECORD_REJECTS = "recorded_rejects"


class ReadRecordDoFn(beam.DoFn):
    """A split's done.json path -> its documents (main output), and tagged: its drops, its ledger count
    rows, its rejects candidates and its reader's extra outputs (one tag per extra)."""

    def process(self, done_path: str):
        done = json.loads(storage.read_bytes(done_path))
        folder = storage.dirname(done_path)
        for row in done["counts"]:
            yield beam.pvalue.TaggedOutput(RECORD_COUNTS, row)
        for tag, values in done["extra"].items():
            for value in values:
                yield beam.pvalue.TaggedOutput(tag, tuple(value) if isinstance(value, list) else value)
        for drop in read_frames(storage.join(folder, done["files"]["drops"])):
            yield beam.pvalue.TaggedOutput(RECORD_DROPS, drop)
        for candidate in read_frames(storage.join(folder, done["files"]["rejects"])):
            yield beam.pvalue.TaggedOutput(RECORD_REJECTS, candidate)
        yield from read_frames(storage.join(folder, done["files"]["docs"]))


def recorded_summary(records: Records, files: list[InputFile]) -> dict:
    """For `status`: files listed and recorded, their bytes, and the documents in recorded so far."""
    done = [f for f in files if records.is_done(f)]
    return {"files_total": len(files), "files_done": len(done),
            "bytes_total": sum(f.size for f in files), "bytes_done": sum(f.size for f in done),
            "documents_so_far": sum(records.documents(f) for f in files)}
