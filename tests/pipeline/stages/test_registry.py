"""The stage registry is the one list of the cleaning stages: every stage names its entry, in order."""

from __future__ import annotations

from llamapipe.pipeline.plumbing.names import CLEAN_STAGE, READ_STAGE
from llamapipe.pipeline.stages import registry
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.classifier import ReferenceClassifier
from llamapipe.pipeline.stages.decontamination import Decontaminate
from llamapipe.pipeline.stages.dedup.deduplicate import Deduplicate
from llamapipe.pipeline.stages.extract import ExtractText
from llamapipe.pipeline.stages.langid import LanguageId
from llamapipe.pipeline.stages.line_dedup import LineDedup
from llamapipe.pipeline.stages.perplexity import PerplexityBuckets
from llamapipe.pipeline.stages.pii import PIIRedaction
from llamapipe.pipeline.stages.quality import QualityFilter
from llamapipe.pipeline.stages.quality_models import QualityModels


def test_every_stage_has_its_entry_in_order():
    stages = [ExtractText, LanguageId, QualityFilter, QualityModels, Decontaminate, Deduplicate, LineDedup,
              PerplexityBuckets, ReferenceClassifier, PIIRedaction]
    assert all(issubclass(stage, Stage) for stage in stages)
    assert [stage.entry for stage in stages] == list(registry.STAGES[2:])
    assert registry.STAGE_ORDER[:2] == (READ_STAGE, CLEAN_STAGE)  # the readers' own drops come first


def test_per_file_and_corpus_wide():
    assert registry.PER_FILE_PROGRESS == ("read", "extract", "langid", "quality", "quality_models")
    assert [s.label for s in registry.STAGES if not s.per_file] == [
        "Decontaminate", "Deduplicate", "LineDedup", "Perplexity", "ReferenceClassifier", "RedactPII"]
    assert registry.stage_rank("quality") < registry.stage_rank("decontamination")
    assert registry.stage_rank("decontamination") < registry.stage_rank("dedup")
    assert registry.stage_rank("dedup") < registry.stage_rank("unknown")
