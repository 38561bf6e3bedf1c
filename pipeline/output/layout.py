"""Where a run keeps everything under OUT (a local folder, or an s3:// or gs:// prefix), written once:
the driver, resume, status, the report and inspect take their paths from `OutputLayout`.

    OUT/run.json                          effective config, stage timings, tokenizer summary, files
                                          processed and reused
    OUT/.llamapipe.lock                   who runs on OUT now (pipeline/run_lock.py)
    OUT/beam.log                          Beam's own log (and its local workers')
    OUT/documents/<source>/*.parquet      cleaned documents (id, source, text, url, language, meta)
    OUT/dropped/*.jsonl                   one line per dropped document: source, stage, reason, id
    OUT/rejects/*.parquet                 a sample of the dropped documents with their text
    OUT/classifier/                       the reference classifier's model and training files
    OUT/ledger.json                       in / kept / dropped per source, stage and reason; "dedup":
                                          duplicate cluster statistics
    OUT/dedup/examples.jsonl              example duplicate clusters (`llamapipe inspect OUT --dups`)
    OUT/decontamination/examples.jsonl    documents dropped as contaminated, the match and its context
    OUT/tokenizer/tokenizer.model         SentencePiece BPE (Meta's settings)
    OUT/tokenizer/tokenizer.json          the same for Hugging Face (+ tokenizer_config.json)
    OUT/shards/<source>/*.parquet         token shards, one row per document
    OUT/shards/manifest.json              per-source documents, tokens, shards, share, epochs
    OUT/report.html                       the run in tables and charts (`llamapipe report OUT`)
    OUT/train/                            written by `llamapipe train`
    OUT/_work/                            what a run needs while it runs: the per-file work's records
                                          (`files/`, kept across runs), the evaluation sets' n-gram
                                          index (`decontamination/`, kept), the completed stages, spilled
                                          documents, ledger parts, the tokenizer's sample, token runs

A run is three steps with outputs on disk (`RUN_STEPS`, as resume records them); `STEP_OUTPUTS` says
which paths each writes, deleted before an unfinished step runs again (pipeline/resume.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from llamapipe.model.train_config import METRICS_NAME
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.manifest import MANIFEST_NAME

CLEAN_STEP, TOKENIZER_STEP, TOKENIZE_STEP = "clean", "tokenizer", "tokenize"
RUN_STEPS = (CLEAN_STEP, TOKENIZER_STEP, TOKENIZE_STEP)
RUN_RECORD = "run.json"  # what makes a folder the OUT of a run
LOCK_NAME = ".llamapipe.lock"

# Paths relative to OUT, as parts.
WORK = ("_work",)
DOCUMENTS = ("documents",)
DROPPED = ("dropped",)
REJECTS = ("rejects",)
CLASSIFIER = ("classifier",)
DEDUP = ("dedup",)
LEDGER = ("ledger.json",)
LEDGER_PARTS = (*WORK, "ledger")
DEDUP_WORK = (*WORK, "dedup")
# The evaluation sets' n-gram index, kept across runs (rebuilt when its sets or settings change) and
# the examples of matches the report shows.
DECONTAMINATION_INDEX = (*WORK, "decontamination")
DECONTAMINATION = ("decontamination",)
SPILL = (*WORK, "spill")  # documents between the cleaning pipeline's stages
TOKENIZER = ("tokenizer",)
SAMPLE = (*WORK, "tokenizer-sample.txt")
SHARDS = ("shards",)
TOKEN_RUNS = (*WORK, "token_runs")  # token rows on their way to their shard
FILES = (*WORK, "files")  # the per-file work's records (pipeline/file_work.py), kept across runs
COMPLETED = (*WORK, "completed.json")  # the run steps done (pipeline/resume.py)
TRAIN = ("train",)

# What each run step writes; deleted before the step runs again.
STEP_OUTPUTS = {
    CLEAN_STEP: (DOCUMENTS, DROPPED, REJECTS, CLASSIFIER, DEDUP, LEDGER, LEDGER_PARTS, DEDUP_WORK, SPILL,
                 DECONTAMINATION),
    TOKENIZER_STEP: (TOKENIZER, SAMPLE),
    TOKENIZE_STEP: (SHARDS, TOKEN_RUNS),
}


@dataclass(frozen=True)
class OutputLayout:
    """Every path of a run under `out`."""

    out: str

    def at(self, *parts: str) -> str:
        return storage.join(self.out, *parts)

    def step_outputs(self, step: str) -> list[tuple[tuple[str, ...], str]]:
        """(relative parts, path) of what run step `step` writes."""
        return [(relative, self.at(*relative)) for relative in STEP_OUTPUTS[step]]

    @property
    def work(self) -> str:
        return self.at(*WORK)

    @property
    def run(self) -> str:
        return self.at(RUN_RECORD)

    @property
    def lock(self) -> str:
        return self.at(LOCK_NAME)

    @property
    def beam_log(self) -> str:
        return self.at("beam.log")

    @property
    def report(self) -> str:
        return self.at("report.html")

    @property
    def documents(self) -> str:
        return self.at(*DOCUMENTS)

    @property
    def dropped(self) -> str:
        """The prefix of the drop files."""
        return self.at(*DROPPED, "dropped")

    @property
    def rejects_dir(self) -> str:
        return self.at(*REJECTS)

    @property
    def rejects(self) -> str:
        """The prefix of the rejects sample's files."""
        return self.at(*REJECTS, "rejects")

    @property
    def classifier(self) -> str:
        return self.at(*CLASSIFIER)

    @property
    def ledger(self) -> str:
        return self.at(*LEDGER)

    @property
    def ledger_parts(self) -> str:
        return self.at(*LEDGER_PARTS, "counts")

    @property
    def dedup_stats(self) -> str:
        return self.at(*DEDUP_WORK, "stats.json")

    @property
    def dedup_examples(self) -> str:
        return self.at(*DEDUP, "examples.jsonl")

    @property
    def decontamination_index(self) -> str:
        return self.at(*DECONTAMINATION_INDEX)

    @property
    def decontamination_examples(self) -> str:
        return self.at(*DECONTAMINATION, "examples.jsonl")

    @property
    def tokenizer(self) -> str:
        return self.at(*TOKENIZER, "tokenizer.model")

    @property
    def sample(self) -> str:
        return self.at(*SAMPLE)

    @property
    def files(self) -> str:
        return self.at(*FILES)

    @property
    def completed(self) -> str:
        return self.at(*COMPLETED)

    @property
    def spill(self) -> str:
        return self.at(*SPILL)

    @property
    def shards(self) -> str:
        return self.at(*SHARDS)

    @property
    def token_runs(self) -> str:
        return self.at(*TOKEN_RUNS)

    @property
    def manifest(self) -> str:
        return self.at(*SHARDS, MANIFEST_NAME)

    @property
    def train(self) -> str:
        return self.at(*TRAIN)

    @property
    def train_metrics(self) -> str:
        return self.at(*TRAIN, METRICS_NAME)
