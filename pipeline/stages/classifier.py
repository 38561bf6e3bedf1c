"""LLaMA's reference classifier: a fastText linear model of "pages cited by Wikipedia" against random
CommonCrawl pages; pages with P(reference) < threshold are dropped (RedPajama: 0.25).

All inside the one Beam graph; the documents themselves never cross a shuffle: they are spilled to
files in the work folder (`plumbing/files_as_shuffle.py`) and read back twice, once for the samples, once to
be scored.
1. `LabelCited`: the URLs cited by the Wikipedia source (`meta.ref_urls`, normalised by `url_key`)
   are joined with the (URL, file tag, id) of the CommonCrawl pages on the same key (a CoGroupByKey:
   no worker holds the URL list); each page comes out as (file tag, (id, cited)).
2. Bounded samples: each file is read beside its pages' labels; up to `max_positives` cited pages
   and, of the uncited ones, those of smallest id hash (`Top.Of`, a heap per worker; only about twice
   as many as training will draw are passed on), each cut to `max_chars`. The texts wait in run
   files (`plumbing/group_through_files.py`) and only (id, frame reference) pairs are sampled: through the
   runner, the samples' texts were what grew most with the input (Beam's local runners hold side inputs and
   what crosses a stage in the runner's memory).
3. `train_reference_model`, one call on one worker, with the two samples as side inputs: splits
   them by id hash into training and held-out parts, trains `fasttext.train_supervised`, measures the
   held-out accuracy, and writes `OUT/classifier/model.bin` and `metrics.json`. With a model file in
   the config it loads that instead (and measures it on the samples). With fewer than
   `min_positives` cited pages (no Wikipedia source, or no overlap) it writes a `skipped` status
   with the reason, and step 4 keeps every page.
4. `ScoreReference` reads that status as a side input and each file again, and scores every page;
   documents of other sources pass through.

Training in the graph (not in the driver between two pipelines, as the tokenizer is): the side input
makes scoring wait for the model while the pages wait in their spilled files, and only the bounded
sample meets on one worker. Training itself runs in a fresh process (`fasttext_train.py` says why).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.config import ClassifierConfig
from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.plumbing.files_as_shuffle import FILES, GroupByFile, SpillDocuments, documents_beside
from llamapipe.pipeline.plumbing.group_through_files import WriteRuns, read_records, same_key
from llamapipe.pipeline.plumbing.sampling import id_fraction
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.registry import CLASSIFIER

STAGE = CLASSIFIER.name
POSITIVE, NEGATIVE = "__label__reference", "__label__random"


def url_key(url: str) -> str:
    """A URL as a join key: scheme, `www.`, fragment, default ports and a trailing slash ignored."""
    url = (url or "").strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        host = (parts.hostname or "").lower().removeprefix("www.")
        port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    except ValueError:
        return ""
    path = parts.path.rstrip("/") or ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}{path}{query}"


def training_text(text: str, max_chars: int) -> str:
    """One line of lower-case words: fastText's input format (a newline ends an example)."""
    return " ".join(text[:max_chars].lower().split())


class _JoinCitations(beam.DoFn):
    def process(self, element):
        _, grouped = element
        cited = bool(list(grouped["cited"]))
        for tag, doc_id in grouped["pages"]:
            yield tag, (doc_id, cited)


class LabelCited(beam.PTransform):
    """(Wikipedia documents, (file tag, document) of the pages to classify) -> (file tag, (id, cited by
    Wikipedia?)) of each page."""

    def expand(self, pcolls):
        wikipedia, pages = pcolls
        cited = (
            wikipedia
            | "RefUrls" >> beam.FlatMap(lambda d: (d.get("meta") or {}).get("ref_urls") or [])
            | "RefKeys" >> beam.Map(url_key)
            | "NonEmpty" >> beam.Filter(bool)
            | "DistinctUrls" >> beam.Distinct()
            | "AsCited" >> beam.Map(lambda key: (key, True))
        )
        # Documents without a URL get a key of their own: they cannot be cited.
        keyed = pages | "KeyByUrl" >> beam.MapTuple(
            lambda tag, d: (url_key(d.get("url", "")) or "\0" + d["id"], (tag, d["id"])))
        return {"pages": keyed, "cited": cited} | "JoinCitations" >> beam.CoGroupByKey() | beam.ParDo(
            _JoinCitations())


def _split(sample: list[tuple[str, str]], holdout: float) -> tuple[list, list]:
    train = [(i, t) for i, t in sample if id_fraction("holdout:" + i) >= holdout]
    test = [(i, t) for i, t in sample if id_fraction("holdout:" + i) < holdout]
    return train, test


def _evaluate(model, positives: list, negatives: list, threshold: float) -> dict:
    correct = kept_pos = kept_neg = 0
    for label, items in ((POSITIVE, positives), (NEGATIVE, negatives)):
        for _, text in items:
            p = reference_probability(model, text)
            correct += (p >= 0.5) == (label == POSITIVE)
            if p >= threshold:
                kept_pos += label == POSITIVE
                kept_neg += label == NEGATIVE
    n = len(positives) + len(negatives)
    return {
        "examples": n, "positives": len(positives), "negatives": len(negatives),
        "accuracy": round(correct / n, 4) if n else None,
        "positives_kept_at_threshold": round(kept_pos / len(positives), 4) if positives else None,
        "negatives_kept_at_threshold": round(kept_neg / len(negatives), 4) if negatives else None,
    }


def reference_probability(model, text: str) -> float:
    labels, probs = model.predict(text, k=2)
    for label, prob in zip(labels, probs, strict=True):
        if label == POSITIVE:
            return float(min(prob, 1.0))
    return 0.0


def _load_fasttext(path: str):
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None
    if "://" not in path:
        return fasttext.load_model(path)
    with FileSystems.open(path) as src, tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as dst:
        dst.write(src.read())
    try:
        return fasttext.load_model(dst.name)
    finally:
        os.remove(dst.name)


def _write_bytes(path: str, data: bytes) -> None:
    with FileSystems.create(path) as f:
        f.write(data)


def example_texts(examples: list) -> list[tuple[str, str]]:
    """(id, frame of its text in a run file) -> (id, training text), sorted by id."""
    by_frame = sorted(examples, key=lambda example: example[1])  # each run file opened once
    texts = read_records(frame for _, frame in by_frame)
    return sorted(((doc_id, text) for (doc_id, _), text in texts))


def train_reference_model(_, positives: list, negatives: list, cited_pages: int,
                          options: ClassifierConfig, out_dir: str) -> dict:
    """Train (or load) the model and write it with its metrics; returns the status for scoring.
    `positives` and `negatives` are (id, frame of the text) pairs (`example_texts`)."""
    status = {"cited_pages_found": cited_pages, "threshold": options.threshold}
    rng = random.Random(options.seed)
    positives, negatives = example_texts(positives), example_texts(negatives)
    wanted_negatives = round(len(positives) * options.negatives_per_positive)
    if len(negatives) > wanted_negatives:
        negatives = rng.sample(negatives, wanted_negatives)
    if options.model:
        status.update(status="loaded", model=options.model)
        if len(positives) >= options.min_positives and negatives:
            status["evaluation"] = _evaluate(_load_fasttext(options.model), positives, negatives,
                                             options.threshold)
        return _finish(status, out_dir)
    if len(positives) < options.min_positives or not negatives:
        status.update(status="skipped", reason=(
            f"{len(positives)} CommonCrawl pages are cited by the Wikipedia source (at least "
            f"{options.min_positives} needed, and some uncited pages); is the wikipedia source enabled "
            "and does it cite pages of this crawl? All pages were kept without a reference score"))
        return _finish(status, out_dir)
    pos_train, pos_test = _split(positives, options.holdout_fraction)
    neg_train, neg_test = _split(negatives, options.holdout_fraction)
    lines = [f"{POSITIVE} {t}" for _, t in pos_train] + [f"{NEGATIVE} {t}" for _, t in neg_train]
    rng.shuffle(lines)
    with tempfile.TemporaryDirectory() as tmp:
        train_path = os.path.join(tmp, "train.txt")
        with open(train_path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        model_file = os.path.join(tmp, "model.bin")
        trained = _train(train_path, model_file, options)
        if trained is None:
            status.update(status="skipped", reason=(
                f"fastText training stopped with 'Encountered NaN' in {TRAINING_ATTEMPTS} attempts (seeds "
                "and learning rates varied); all pages were kept without a reference score"))
            return _finish(status, out_dir)
        lr, seed = trained
        model = _load_fasttext(model_file)
        with open(model_file, "rb") as f:
            model_path = FileSystems.join(out_dir, "model.bin")
            _write_bytes(model_path, f.read())
    status.update(
        status="trained", model=model_path,
        training={"positives": len(pos_train), "negatives": len(neg_train), "lr": lr, "seed": seed},
        heldout=_evaluate(model, pos_test, neg_test, options.threshold),
    )
    return _finish(status, out_dir)


TRAINING_ATTEMPTS = 6


def _train(train_path: str, model_path: str, options: ClassifierConfig) -> tuple[float, int] | None:
    """fastText supervised training -> (lr, seed) of the attempt that trained, the model saved at
    `model_path`; None when every attempt failed.

    It runs in a fresh process (`fasttext_train.py` says why: inside a Beam worker it was neither
    reproducible nor free of NaN). fastText sometimes stops with "Encountered NaN" on small samples,
    depending on the data and the seed: training is restarted with the next seed, and every second
    attempt with half the learning rate."""
    attempts = [(options.lr / 2 ** (attempt // 2), options.seed + attempt)
                for attempt in range(TRAINING_ATTEMPTS)]
    request = {"input": train_path, "output": model_path, "epoch": options.epoch,
               "word_ngrams": options.word_ngrams, "dim": options.dim, "bucket": options.bucket,
               "attempts": attempts}
    done = subprocess.run([sys.executable, "-m", "llamapipe.pipeline.stages.fasttext_train"],
                          input=json.dumps(request), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"fastText training of the reference classifier failed (exit {done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return None if "nan" in result else (result["lr"], result["seed"])


def _finish(status: dict, out_dir: str) -> dict:
    _write_bytes(FileSystems.join(out_dir, "metrics.json"), json.dumps(status, indent=2).encode("utf-8"))
    return status


def _labelled_file(folder: str, element, sources: set[str]):
    """(file tag, {files, pages}) -> (document, cited or None when its source is not classified) for
    each document of the spilled file."""
    grouped, documents = documents_beside(folder, element, STAGE)
    cited = dict(grouped["pages"])
    for doc in documents:
        yield doc, (cited.get(doc["id"], False) if doc["source"] in sources else None)


class _Examples(beam.DoFn):
    """A file's labelled pages -> ((id, cited), training text) of each cited page, and of the uncited
    pages whose id hash is small enough to be among the negatives the training can use.

    Training uses `negatives_per_positive` uncited pages per cited one, drawn from the uncited pages
    of smallest id hash (`_sample`); `counts` ({cited?: pages}) says how many that is, so about twice
    that many (plus 100) are passed on instead of all of them: the samples held while they meet stay
    proportional to the cited pages, not to the crawl."""

    def __init__(self, folder: str, options: ClassifierConfig):
        self._folder = folder
        self._sources = set(options.sources)
        self._options = options

    def process(self, element, counts: dict):
        o = self._options
        wanted = min(counts.get(True, 0), o.max_positives) * o.negatives_per_positive
        uncited = counts.get(False, 0)
        below = min(1.0, (2 * wanted + 100) / uncited) if uncited else 1.0
        for doc, cited in _labelled_file(self._folder, element, self._sources):
            if cited or (cited is False and id_fraction("sample:" + doc["id"]) < below):
                yield (doc["id"], cited), training_text(doc["text"], o.max_chars)


class ScoreReference(beam.DoFn):
    """A file's labelled pages -> each document with `meta.reference_score`, or a drop below the
    threshold; documents of other sources unchanged."""

    def __init__(self, options: ClassifierConfig, folder: str):
        self._options = options
        self._folder = folder
        self._sources = set(options.sources)
        self._model = None
        self._model_path = None

    def process(self, element, status: dict):
        for doc, cited in _labelled_file(self._folder, element, self._sources):
            if cited is None or status["status"] == "skipped":
                yield doc
            else:
                yield from self._score(doc, cited, status)

    def _score(self, doc: dict, cited: bool, status: dict):
        if self._model_path != status["model"]:
            self._model = _load_fasttext(status["model"])
            self._model_path = status["model"]
        p = reference_probability(self._model, training_text(doc["text"], self._options.max_chars))
        meta = {**(doc.get("meta") or {}), "reference_score": round(p, 4)}
        if cited:
            meta["cited_by_wikipedia"] = True
        if p < self._options.threshold:
            yield drop(doc["source"], STAGE, "not_reference_like", doc["id"],
                       f"P(reference) {p:.3f} < {self._options.threshold}", doc["text"])
        else:
            yield {**doc, "meta": meta}


def _sample(size: int) -> beam.PTransform:
    """The `size` examples of smallest id hash: a bounded, reproducible sample (a rerun trains on the
    same pages, unlike a random reservoir)."""
    return beam.combiners.Top.Of(size, key=lambda example: id_fraction("sample:" + example[0]), reverse=True)


class ReferenceClassifier(Stage):
    """(Wikipedia documents, all documents) -> documents of the configured sources scored and filtered,
    the others unchanged. `work_folder` holds the spilled documents while the pipeline runs."""

    entry = CLASSIFIER

    def __init__(self, options: ClassifierConfig, out_dir: str, work_folder: str):
        super().__init__()
        self._options = options
        self._out_dir = out_dir
        self._folder = work_folder

    def expand(self, pcolls):
        wikipedia, docs = pcolls
        options = self._options
        sources = set(options.sources)
        folder = self._folder
        spilled = docs | "Spill" >> beam.ParDo(SpillDocuments(folder)).with_outputs(FILES, main="docs")
        pages = spilled.docs | "PagesToClassify" >> beam.Filter(lambda tagged: tagged[1]["source"] in sources)
        labels = (wikipedia, pages) | "LabelCited" >> LabelCited()
        by_file = {"pages": labels} | "PagesByFile" >> GroupByFile(spilled[FILES])
        max_negatives = options.max_positives * options.negatives_per_positive
        label_counts = (
            labels
            | "IsCited" >> beam.Map(lambda label: label[1][1])
            | "CountLabels" >> beam.combiners.Count.PerElement()
        )
        examples = (
            by_file
            | "ReadExamples" >> beam.ParDo(_Examples(folder, options), beam.pvalue.AsDict(label_counts))
            | "WriteExamples" >> beam.ParDo(WriteRuns(folder, same_key, "examples"))
        )  # ((id, cited), frame of its text)
        positives = (
            examples
            | "CitedExamples" >> beam.Filter(lambda example: example[0][1])
            | "PositiveFrames" >> beam.MapTuple(lambda key, frame: (key[0], frame))
            | "SamplePositives" >> _sample(options.max_positives)
        )
        negatives = (
            examples
            | "UncitedExamples" >> beam.Filter(lambda example: not example[0][1])
            | "NegativeFrames" >> beam.MapTuple(lambda key, frame: (key[0], frame))
            | "SampleNegatives" >> _sample(max(1, round(max_negatives)))
        )
        cited = labels | "Cited" >> beam.Filter(lambda label: label[1][1])
        cited_count = cited | "CountCited" >> beam.combiners.Count.Globally()
        status = (
            docs.pipeline
            | "Once" >> beam.Create([None])
            | "TrainOrLoad" >> beam.Map(
                train_reference_model, beam.pvalue.AsSingleton(positives), beam.pvalue.AsSingleton(negatives),
                beam.pvalue.AsSingleton(cited_count), options, self._out_dir)
        )
        return self.split(by_file, "Score", ScoreReference(options, folder), beam.pvalue.AsSingleton(status))
