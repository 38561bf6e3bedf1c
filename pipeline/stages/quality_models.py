"""Quality scores from fastText models of the user's (`quality_models:` in the config): a DCLM-style
classifier (its fastText OH-2.5+ELI5 model: `__label__hq`), a FineWeb-Edu-style one, any supervised
fastText `.bin`. Beyond the LLaMA recipe, whose one model-based filter is the reference classifier trained
in the run (`classifier.py`).

Per document, after the quality rules, in the per-file work (`file_work.py`): a score needs only the
document, so it is computed where the document already is, once, and recorded with the split (a rerun
does not score again). Each model applies to its `sources` (default all). The score is fastText's
probability of `label` for the text with its newlines replaced by spaces (fastText predicts one line; as
DCLM's `classify_fasttext_hq_prob`, which joins the lines with spaces), rounded to 6 decimals and kept in
`meta["quality_scores"][name]` (written with the document); with a `threshold`, a document scoring under
it is dropped as `low_<name>_score` (the first model in config order that drops it names the reason),
without one every document is kept and scored. Every scored document adds one to its model's score
histogram (20 buckets of 0.05, before the threshold: the report shows where the threshold cuts), a
ledger row of kind `QUALITY_SCORE`.

Each worker loads each model once, in `setup()`: a model on an object store is first copied to a local
temporary file (fastText reads local files only) and deleted once loaded. `label` may be given with or
without fastText's `__label__` prefix; a label the model does not have is an error naming the config key.
"""

from __future__ import annotations

import apache_beam as beam

from llamapipe.pipeline.config import ConfigError, QualityModelConfig
from llamapipe.pipeline.plumbing.drops import LEDGER_ROWS, drop
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.registry import QUALITY_MODELS, QUALITY_SCORE
from llamapipe.tokenizer.format import storage

STAGE = QUALITY_MODELS.name
BUCKETS = 20  # of the score histogram: [0, 0.05), [0.05, 0.1), ... [0.95, 1]
# A model at most this large is loaded by the driver before the run to check its label (a few seconds
# at most); a larger one (DCLM's is several GB) is checked by the workers when they load it.
CHECK_LABEL_BYTES = 512 << 20


def score_bucket(score: float) -> str:
    """The histogram bucket of a score: its lower bound, e.g. "0.85"."""
    return f"{min(int(score * BUCKETS), BUCKETS - 1) / BUCKETS:.2f}"


def load_model(path: str):
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None  # its deprecation warning on load
    with storage.local_copy(path) as local:
        return fasttext.load_model(local)


def resolve_label(model, label: str, key: str) -> str:
    """The model's own spelling of `label` (with or without `__label__`), or a ConfigError naming `key`."""
    labels = list(model.get_labels())
    for candidate in (label, f"__label__{label}"):
        if candidate in labels:
            return candidate
    raise ConfigError(f"{key}: {label!r} is not a label of this model (its labels: "
                      f"{', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''})")


def check_quality_models(models: list[QualityModelConfig]) -> None:
    """Before the run: each small model loads and has its label (a missing path is `check_inputs`')."""
    for i, options in enumerate(models):
        if storage.size(options.path) <= CHECK_LABEL_BYTES:
            try:
                model = load_model(options.path)
            except ValueError as exc:  # fastText's message for a file that is not a model
                raise ConfigError(f"quality_models[{i}].path: not a fastText model: {exc}") from None
            resolve_label(model, options.label, f"quality_models[{i}].label")


class ScoreModel:
    """One loaded model: `score(text)` -> its probability of the label."""

    def __init__(self, options: QualityModelConfig, index: int):
        self.options = options
        self.model = load_model(options.path)
        self.label = resolve_label(self.model, options.label, f"quality_models[{index}].label")

    def score(self, text: str) -> float:
        labels, probabilities = self.model.predict(text.replace("\n", " "), k=-1)
        scores = dict(zip(labels, probabilities, strict=True))
        return round(min(float(scores.get(self.label, 0.0)), 1.0), 6)


class QualityModelsDoFn(beam.DoFn):
    """A document -> itself with `meta.quality_scores`, or a drop `low_<name>_score`; one histogram event
    per model that scored it, on `LEDGER_ROWS`. Documents of sources no model applies to pass unchanged."""

    def __init__(self, models: list[QualityModelConfig]):
        self._options = list(models)

    def setup(self) -> None:
        self._models = [ScoreModel(options, i) for i, options in enumerate(self._options)]

    def process(self, doc: dict):
        source = doc["source"]
        models = [m for m in self._models if m.options.applies_to(source)]
        if not models:
            yield doc
            return
        scores = {}
        for model in models:
            name, threshold = model.options.name, model.options.threshold
            score = model.score(doc["text"])
            scores[name] = score
            bucket = (source, QUALITY_SCORE, f"{name}:{score_bucket(score)}")
            yield beam.pvalue.TaggedOutput(LEDGER_ROWS, (bucket, (1, 0, 0)))
            if threshold is not None and score < threshold:
                yield drop(source, STAGE, f"low_{name}_score", doc["id"], f"{name} {score} < {threshold}",
                           doc["text"])
                return
        meta = doc.get("meta") or {}
        yield {**doc, "meta": {**meta, "quality_scores": {**meta.get("quality_scores", {}), **scores}}}


class QualityModels(Stage):
    """The stage as a Beam transform (the per-file work calls the DoFn itself): documents -> kept,
    drops, and `LEDGER_ROWS`: histogram rows [source, QUALITY_SCORE, "<name>:<bucket>", count, 0, 0]."""

    entry = QUALITY_MODELS

    def __init__(self, models: list[QualityModelConfig]):
        super().__init__()
        self._models = models

    def expand(self, docs):
        if not self._models:
            return self.unchanged_counting(docs)
        return self.split_counting(docs, "Score", QualityModelsDoFn(self._models))
