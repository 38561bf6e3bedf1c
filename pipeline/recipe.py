"""The Beam graphs: cleaning's corpus-wide part (the records of the per-file work, `file_work.py` ->
each source's corpus-wide step -> decontamination -> dedup -> line dedup -> perplexity -> reference
classifier -> cleaned documents + drops + rejects + ledger counts) and tokenization (cleaned documents ->
token shards)."""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.config import Config
from llamapipe.pipeline.file_work import RECORD_COUNTS, RECORD_DROPS, RECORD_REJECTS, ReadRecordDoFn
from llamapipe.pipeline.output.documents import WriteDocuments
from llamapipe.pipeline.output.layout import TOKENIZE_STEP, OutputLayout
from llamapipe.pipeline.output.ledger import CountLedger
from llamapipe.pipeline.output.rejects import RECORDED, WriteRejects, without_text
from llamapipe.pipeline.output.token_shards import WriteTokenShards, estimate_tokens
from llamapipe.pipeline.plumbing.drops import DOCUMENTS, DROPPED, LEDGER_ROWS
from llamapipe.pipeline.plumbing.files_as_shuffle import MergeThroughFiles
from llamapipe.pipeline.plumbing.progress import LiveProgress
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.classifier import ReferenceClassifier
from llamapipe.pipeline.stages.decontamination import Decontaminate
from llamapipe.pipeline.stages.dedup.deduplicate import Deduplicate
from llamapipe.pipeline.stages.line_dedup import LineDedup
from llamapipe.pipeline.stages.perplexity import PerplexityBuckets
from llamapipe.pipeline.stages.pii import PIIRedaction
from llamapipe.pipeline.stages.registry import READ
from llamapipe.sources import corpus_step, file_reader


def build_cleaning(p: beam.Pipeline, config: Config, paths: OutputLayout, records: list[tuple[str, str]],
                   progress: LiveProgress | None = None) -> None:
    """The corpus-wide part of cleaning, over the records of the per-file work (`file_work.py`: read,
    extraction, language ID, quality rules, per input file): each source's own corpus-wide step (GitHub's
    exact dedup, Stack Exchange's largest sites) -> benchmark decontamination (when configured) -> document
    dedup -> CCNet line dedup -> perplexity buckets -> reference classifier -> PII redaction (when
    enabled) -> cleaned documents; every drop (recorded ones included) -> dropped/, ledger counts,
    rejects sample.

    `records`: (source, done.json path) of every recorded split of the files the config lists.

    Line dedup comes after document dedup: two near-duplicate pages share most lines, and CCNet's
    rule (a line in two documents leaves both) would shred both copies into fragments; with one copy
    kept first, the survivor loses only what it shares with other pages. The classifier scores the
    text as it will be kept (after line dedup), as LLaMA applied it to CCNet's output.

    `progress` counts the documents out of each stage while the pipeline runs (pipeline/plumbing/progress.py).

    Memory: no collection of documents crosses a shuffle or a multi-input Flatten, both of which
    Beam's local runners hold whole in the runner's memory (and hand whole to the workers). The
    sources' documents are merged through files (and GitHub's exact dedup within its step, under
    `paths.spill/<source>`), the joins of dedup, line dedup and the classifier go through files
    (`plumbing/files_as_shuffle.py`, under `paths.spill`), drop records lose their text (kept only for the
    rejects sample, taken before any merge), and the ledger's counts are summed per input before they meet."""
    def spill(name: str) -> str:  # a step's files under OUT/_work/spill, named after its stage or source
        return FileSystems.join(paths.spill, name)

    by_source: dict[str, list[str]] = {}
    for source, done_path in records:
        by_source.setdefault(source, []).append(done_path)
    source_docs, stage_drops, recorded = [], [], {"counts": [], "drops": [], "rejects": []}
    for name in config.enabled_sources():
        extras = tuple(file_reader(name, config.sources[name]).extra_outputs)
        read = (
            p
            | f"Records_{name}" >> beam.Create(by_source.get(name, []), reshuffle=False)
            | f"SpreadRecords_{name}" >> beam.Reshuffle()
            | f"ReadRecords_{name}" >> beam.ParDo(ReadRecordDoFn()).with_outputs(
                RECORD_COUNTS, RECORD_DROPS, RECORD_REJECTS, *extras, main=DOCUMENTS)
        )
        recorded["counts"].append(read[RECORD_COUNTS])
        recorded["drops"].append(read[RECORD_DROPS])
        recorded["rejects"].append(read[RECORD_REJECTS])
        step = corpus_step(name, config.sources[name], spill(name))
        if step is None:
            source_docs.append(read.documents)
            continue
        inputs = {DOCUMENTS: read[DOCUMENTS], **{tag: read[tag] for tag in extras}}
        out = inputs | f"CorpusStep_{name}" >> step
        source_docs.append(out[DOCUMENTS])
        stage_drops.append(out[DROPPED])
    docs = tuple(source_docs) | "AllSources" >> MergeThroughFiles(spill(READ.name))
    if progress:
        progress.count(docs, "files_read", "Progress_files_read")

    current = docs
    stages: list[Stage] = [
        *([Decontaminate(config.decontamination, paths.decontamination_index, paths.decontamination_examples)]
          if config.decontamination.enabled else []),  # its index built by the driver (run.run_cleaning)
        Deduplicate(config.dedup, spill(Deduplicate.entry.name),
                    report=(paths.dedup_stats, paths.dedup_examples)),
        LineDedup(config.line_dedup, spill(LineDedup.entry.name)),
        PerplexityBuckets(config.perplexity),
    ]
    if config.classifier.enabled and set(config.classifier.sources) & set(config.enabled_sources()):
        wikipedia = docs | "WikipediaDocs" >> beam.Filter(lambda d: d["source"] == "wikipedia")
        stages.append(_WithWikipedia(
            ReferenceClassifier(config.classifier, paths.classifier,
                                spill(ReferenceClassifier.entry.name)), wikipedia))
    if config.pii.enabled:  # last: no other stage sees redacted text (see pipeline/stages/pii.py)
        stages.append(PIIRedaction(config.pii))
    for stage in stages:
        out = current | stage.entry.label >> stage
        stage.write_reports(out)
        if LEDGER_ROWS in out:  # drops by a group of the stage's own (decontamination's set), PII counts
            recorded["counts"].append(out[LEDGER_ROWS])
        current = out[DOCUMENTS]
        stage_drops.append(out[DROPPED])
        if progress:
            progress.count(current, stage.entry.name)
    kept = current
    # The rejects sample takes the texts it wants from each stage's drops; past it, drops carry none.
    recorded_rejects = recorded["rejects"] | "AllRecordedRejects" >> beam.Flatten()
    rejects = WriteRejects(paths.rejects, config.rejects.rate, config.rejects.max_chars)
    samples = {**{f"stage{i}": d for i, d in enumerate(stage_drops)}, RECORDED: recorded_rejects}
    samples | "WriteRejects" >> rejects
    drops = [d | f"WithoutText{i}" >> beam.Map(without_text) for i, d in enumerate(stage_drops)] | (
        "AllDrops" >> beam.Flatten())
    recorded_drops = recorded["drops"] | "AllRecordedDrops" >> beam.Flatten()
    recorded_counts = recorded["counts"] | "AllRecordedCounts" >> beam.Flatten()

    kept | "WriteDocuments" >> WriteDocuments(paths.documents, config.enabled_sources())
    (
        (recorded_drops, drops)
        | "EveryDrop" >> beam.Flatten()
        | "DropsToJson" >> beam.Map(lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True))
        | "WriteDrops" >> beam.io.WriteToText(paths.dropped, file_name_suffix=".jsonl")
    )
    (recorded_counts, kept, drops) | "CountLedger" >> CountLedger(paths.ledger_parts)


class _WithWikipedia(Stage):
    """Adapts the classifier, a (wikipedia, documents) transform, to the one-input shape of the stage list."""

    entry = ReferenceClassifier.entry

    def __init__(self, transform: ReferenceClassifier, wikipedia):
        super().__init__()
        self._transform = transform
        self._wikipedia = wikipedia

    def expand(self, docs):
        return (self._wikipedia, docs) | self._transform


def build_tokenization(
    p: beam.Pipeline, config: Config, paths: OutputLayout, tokenizer: dict, chars_kept: dict[str, int],
    progress: LiveProgress | None = None,
) -> None:
    sources = [name for name in config.enabled_sources() if chars_kept.get(name, 0) > 0]
    if not sources:
        return
    # A Create of the patterns and ReadAll rather than ReadFromParquet: a `beam.io.Read` needs a runner
    # that translates Read (or Impulse and splittable DoFns), which Beam's Dask runner does not; a Create
    # and ParDos run on every runner. All sources in one flow: their files split over the workers together.
    documents = (
        p
        | "DocumentsPatterns" >> beam.Create([FileSystems.join(paths.documents, name, "*.parquet")
                                              for name in sources])
        | "ReadDocuments" >> beam.io.ReadAllFromParquet(columns=["id", "source", "text"])
    )
    if progress:
        progress.count(documents, TOKENIZE_STEP, "Progress_tokenize")
    chars_per_token = tokenizer["chars_per_token"]
    (
        documents
        | "Tokenize" >> WriteTokenShards(
            paths.shards,
            paths.token_runs,
            tokenizer["path"],
            tokenizer["vocab_size"],
            tokenizer["sha256"],
            # only used to choose each source's number of shards
            estimated_tokens={name: estimate_tokens(chars_kept[name], chars_per_token.get(name, 4.0))
                              for name in sources},
            target_shard_tokens=config.shards.target_shard_tokens,
            add_eos=config.shards.add_eos,
            row_group_documents=config.shards.row_group_documents,
            row_group_tokens=config.shards.row_group_tokens,
        )
    )
