"""CCNet's perplexity buckets: a KenLM model (trained on Wikipedia, as CCNet's) scores each page;
pages go to the head, middle or tail bucket by the configured cut-offs (CCNet English: 340 and 520,
the 30th and 60th percentiles of Wikipedia perplexity), and only the kept buckets stay.

As CCNet (cc_net/perplexity.py): the text is normalised per line (CCNet's `normalize`: lower case,
accents stripped, digits -> 0, Unicode punctuation replaced, non-printing characters removed),
tokenized with the SentencePiece model the LM was trained on when one is configured (else split on
whitespace), each line scored with sentence boundaries, and the document's perplexity is
10 ** (-sum of log10 probabilities / number of tokens, one end-of-sentence per line included).

Optional: off unless `perplexity.model` names a model; needs the `kenlm` module (pip extra
`perplexity`, also in `dev`).
"""

from __future__ import annotations

import re
import unicodedata

import apache_beam as beam

from llamapipe.pipeline.config import PerplexityConfig
from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.line_dedup import _CCNET_PUNCT
from llamapipe.pipeline.stages.registry import PERPLEXITY

STAGE = PERPLEXITY.name

# CCNet's replacements for its Unicode punctuation list, in the order of _CCNET_PUNCT.
_PUNCT_REPLACEMENTS = [",", ".", ",", *['"'] * 10, "'", ":", ":", "?", "!", "(", ")", ";", "-", " - ",
                       ". ", "~", "'", "...", "-", "<", ">", "[", "]", "%", "-"]
_PUNCT_MAP = dict(zip(_CCNET_PUNCT, _PUNCT_REPLACEMENTS, strict=True))
_NON_PRINTING = re.compile("[" + "".join(map(chr, [*range(0, 32), *range(127, 160)])) + "]")
_DIGIT = re.compile(r"\d")


def normalize(line: str) -> str:
    """CCNet's `normalize` with its defaults (accents, case, numbers, punctuation replaced)."""
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    line = "".join(c for c in unicodedata.normalize("NFD", line) if unicodedata.category(c) != "Mn")
    line = _DIGIT.sub("0", line)
    line = "".join(_PUNCT_MAP.get(c, c) for c in line)
    return _NON_PRINTING.sub("", line)


def bucket_of(perplexity: float, cutoffs: list[float]) -> str:
    if perplexity < cutoffs[0]:
        return "head"
    if perplexity < cutoffs[1]:
        return "middle"
    return "tail"


class PerplexityScorer:
    def __init__(self, model_path: str, tokenizer_path: str | None = None):
        import kenlm

        self._model = kenlm.Model(model_path)
        self._sp = None
        if tokenizer_path:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_file=tokenizer_path)

    def _tokens(self, line: str) -> str:
        if self._sp is None:
            return line
        return " ".join(self._sp.encode(line, out_type=str))

    def __call__(self, text: str) -> float:
        log_score, length = 0.0, 0
        for line in text.split("\n"):
            line = normalize(line)
            if not line:
                continue
            tokens = self._tokens(line)
            log_score += self._model.score(tokens, bos=True, eos=True)
            length += len(tokens.split()) + 1
        if length == 0:
            return float("inf")
        return round(10.0 ** (-log_score / length), 1)


class BucketDoFn(beam.DoFn):
    def __init__(self, options: PerplexityConfig):
        self._options = options

    def setup(self) -> None:
        self._score = PerplexityScorer(self._options.model, self._options.tokenizer)

    def process(self, doc: dict):
        if doc["source"] not in self._options.sources:
            yield doc
            return
        perplexity = self._score(doc["text"])
        bucket = bucket_of(perplexity, self._options.cutoffs)
        if bucket not in self._options.keep:
            yield drop(doc["source"], STAGE, f"perplexity_{bucket}", doc["id"], f"perplexity {perplexity}",
                       doc["text"])
            return
        yield {**doc, "meta": {**(doc.get("meta") or {}), "perplexity": perplexity, "bucket": bucket}}


class PerplexityBuckets(Stage):
    entry = PERPLEXITY

    def __init__(self, options: PerplexityConfig):
        super().__init__()
        self._options = options

    def expand(self, docs):
        if not self._options.model:
            return self.unchanged(docs)
        return self.split(docs, "KenLM", BucketDoFn(self._options))
