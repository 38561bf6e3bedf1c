"""The cleaning stages of a run, listed once, in order. A stage's name is what its drop records, Beam
counters (`<source>.<stage>`), ledger rows, report columns and progress line carry; the ledger, the
report, the progress line and the per-file work read it from here. No Beam import: the extraction
subprocess reads it too.

Two of them are the sources' readers (`read`: records that cannot be read; `clean`: a source's own
recipe cleaning, inside its reader), whose names the readers take from `plumbing.names` (READ_STAGE,
CLEAN_STAGE: sources/ may import only the plumbing). The stages of a
whole run, as resume records them (`clean`, `tokenizer`, `tokenize`), are another list:
`llamapipe.pipeline.output.layout.RUN_STEPS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from llamapipe.pipeline.plumbing.names import CLEAN_STAGE, READ_STAGE


@dataclass(frozen=True)
class StageEntry:
    name: str
    per_file: bool = False  # in the per-file work (pipeline/file_work.py), else corpus-wide (recipe)
    progress: bool = True  # a step of the live progress line
    label: str = ""  # the Beam label of a corpus-wide stage's transform in the recipe


READ = StageEntry(READ_STAGE, per_file=True)
CLEAN = StageEntry(CLEAN_STAGE, per_file=True, progress=False)  # counted with `read`, in the reader
EXTRACT = StageEntry("extract", per_file=True)
LANGID = StageEntry("langid", per_file=True)
QUALITY = StageEntry("quality", per_file=True)
QUALITY_MODELS = StageEntry("quality_models", per_file=True)  # fastText models of the user's (config)
DECONTAMINATION = StageEntry("decontamination", label="Decontaminate")
DEDUP = StageEntry("dedup", label="Deduplicate")
LINE_DEDUP = StageEntry("line_dedup", label="LineDedup")
PERPLEXITY = StageEntry("perplexity", label="Perplexity")
CLASSIFIER = StageEntry("classifier", label="ReferenceClassifier")
PII = StageEntry("pii", label="RedactPII")  # drops nothing: replaces addresses in the kept text

STAGES = (READ, CLEAN, EXTRACT, LANGID, QUALITY, QUALITY_MODELS, DECONTAMINATION, DEDUP, LINE_DEDUP,
          PERPLEXITY, CLASSIFIER, PII)
STAGE_ORDER = tuple(stage.name for stage in STAGES)
# The per-file work's steps on the progress line, in order.
PER_FILE_PROGRESS = tuple(stage.name for stage in STAGES if stage.per_file and stage.progress)


def stage_rank(stage: str) -> int:
    """A stage's place in STAGE_ORDER (any other name after them all)."""
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)


# Ledger rows that are not drops (`output/ledger.py` files them under their own keys): per source, the
# addresses the `pii` stage replaced and the documents that had one, per kind; and per quality model the
# documents per score bucket (reason `<model>:<bucket>`), as scored, before its threshold.
PII_REDACTED = "pii_redacted"
PII_DOCUMENTS = "pii_documents"
QUALITY_SCORE = "quality_score"
