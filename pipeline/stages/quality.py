"""Quality heuristics: one small class per rule set, each returning `(keep, reason)`.

Defaults are the references' numbers and semantics:
- CCNet (Wenzek et al. 2019): documents under 300 characters are dropped.
- C4: TensorFlow Datasets' `c4_utils.clean_page`, the code that made the C4 dataset (lines of at least
  5 words ending in `. ? ! "`, pages of at least 3 sentences; the T5 paper's text, Raffel et al. 2020
  section 2.2, has the two numbers the other way round: its variant is the rule sets `c4_lines_t5_paper`
  and `c4_document_t5_paper`).
- Gopher (Rae et al. 2021, appendix A, table A1): quality and repetition rules; where the paper does not
  say how (what a word is, which characters are bullets, what a fraction is of), as datatrove's
  GopherQualityFilter and GopherRepetitionFilter (tests/pipeline/stages/test_quality_gopher_datatrove.py
  compares the two on real text).
- RedPajama-Data v1: the GitHub file rules (line lengths, alphanumeric share, letters per token).

`line_cleaners` transform the text (C4's line filter) and may leave nothing, which is a drop.

The rule protocol, for the built-in rules and the user's own: `filters.rules.<source>` lists, in order,
built-in names (`RULES`) and dotted paths `package.module:ClassName` to a class of the user's, made with no
argument on each worker (`setup()`), that is either
- a document rule: `rule(text) -> (keep: bool, reason: str)`; a document it does not keep is dropped at
  stage `quality` with `reason` (its `name` attribute, or its class name, when the reason is empty), or
- a line cleaner: it has `clean(text) -> str`, the text to keep (lines removed or rewritten); a document
  left with no text is dropped as `<name>_no_lines_left`.
Subclassing `DocumentRule` or `LineCleaner` is optional: having `clean` makes a cleaner, being callable
makes a rule. The module must be importable where the workers run (installed, or on PYTHONPATH). A path
that does not import, a missing class, a class that cannot be made without arguments or that is neither
are one config error naming `filters.rules.<source>[i]`, before any work (`check_rules`), and the same
loading runs again in every worker.
Not applied here, from the C4 recipe: the bad-words list (LDNOOBW, which cannot be downloaded at run time
here), langdetect's English check (the pipeline's language stage does that), c4_utils' other page steps
(`is_valid_length`, 190,000 characters of raw WET text, checked before cleaning; the three-sentence line
dedup across pages, which is CCNet's line dedup stage here).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from itertools import accumulate, pairwise

import apache_beam as beam

from llamapipe.pipeline.config import ConfigError, FiltersConfig
from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.gopher_words import gopher_words
from llamapipe.pipeline.stages.registry import QUALITY

STAGE = QUALITY.name


class DocumentRule:
    """A test of a whole document: `rule(text)` -> (keep, drop reason)."""

    name: str

    def __call__(self, text: str) -> tuple[bool, str]:
        raise NotImplementedError


class LineCleaner:
    """A cleaner, not a test: `clean(text)` -> the lines kept (a document left with none is dropped as
    `<name>_no_lines_left`)."""

    name: str

    def clean(self, text: str) -> str:
        raise NotImplementedError


class CCNetMinLength(DocumentRule):
    """CCNet keeps documents of at least 300 characters."""

    name = "ccnet_min_length"

    def __init__(self, min_chars: int = 300):
        self.min_chars = min_chars

    def __call__(self, text: str) -> tuple[bool, str]:
        if len(text.strip()) < self.min_chars:
            return False, "too_short"
        return True, ""


# --- C4 ------------------------------------------------------------------------------------------------
# TensorFlow Datasets, tensorflow_datasets/text/c4_utils.py (the code that made C4 en): its constants
# _MIN_WORDS_PER_LINE, _MIN_NUM_SENTENCES, _MAX_WORD_LENGTH, _END_MARKS, _ELLIPSIS, _POLICY_SUBSTRINGS and
# the citation regex of get_clean_page_fn. The T5 paper (Raffel et al. 2020, section 2.2) writes "at least
# 3 words" and "at least 5 sentences": the two numbers swapped with respect to the code.
C4_MIN_WORDS_PER_LINE = 5
C4_MIN_NUM_SENTENCES = 3
C4_MAX_WORD_LENGTH = 1000
C4_END_MARKS = (".", "?", "!", '"')
C4_ELLIPSIS = "..."
C4_POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                        "use cookies")
C4_CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
# The T5 paper's numbers (section 2.2), for the `*_t5_paper` rule sets.
T5_PAPER_MIN_WORDS_PER_LINE = 3
T5_PAPER_MIN_NUM_SENTENCES = 5


class C4Lines(LineCleaner):
    """C4's line filter (c4_utils.clean_page); a cleaner (returns the kept lines), not a document test.

    Each line is stripped; a line with a word of more than 1000 characters goes (tested before the
    citation markers are removed, as C4 does); then `[1]`, `[]`, `[edit]`, `[citation needed]` are
    removed (and the line is not stripped again, as in C4: a line that then ends in a space goes); it must
    end in `. ? ! "` but not `...` and have at least 5 words; lines mentioning "javascript" or a
    cookie / terms-of-use phrase go.

    The checks run in C4's order. C4 drops the whole page on a kept line with "lorem ipsum" (checked
    before the javascript rule) or "{" (checked before the policy rule); such lines are kept here so
    that `C4Document`, which runs next, drops the page with that reason, exactly when C4 would."""

    name = "c4_lines"

    def __init__(self, min_words_per_line: int = C4_MIN_WORDS_PER_LINE,
                 max_word_length: int = C4_MAX_WORD_LENGTH):
        self.min_words_per_line = min_words_per_line
        self.max_word_length = max_word_length

    def clean(self, text: str) -> str:
        kept = []
        for line in text.splitlines():
            line = line.strip()
            if any(len(word) > self.max_word_length for word in line.split()):
                continue
            line = C4_CITATION_RE.sub("", line)
            if not line.endswith(C4_END_MARKS) or line.endswith(C4_ELLIPSIS):
                continue
            if len(line.split()) < self.min_words_per_line:
                continue
            lower = line.lower()
            if "lorem ipsum" in lower:
                kept.append(line)
                continue
            if "javascript" in lower:
                continue
            if "{" in line:
                kept.append(line)
                continue
            if any(policy in lower for policy in C4_POLICY_SUBSTRINGS):
                continue
            kept.append(line)
        return "\n".join(kept).strip()


# Sentence counting for C4's page rule. c4_utils counts the sentences of each kept line with NLTK's
# Punkt English model (`_get_sentences(line)`), which this approximates without the model: a line is at
# least one sentence, and a word ending in `.`, `?` or `!` (closing quotes or brackets may follow) ends
# one more when another word follows on the line, unless it is a common English abbreviation (below), an
# initial ("J."), an ellipsis, or a number followed by a lowercase word. The count matters only for pages
# of one or two kept lines.
_SENTENCE_ABBREVIATIONS = frozenset(
    "mr mrs ms messrs dr prof st jr sr mt vs inc ltd corp bros vol fig figs approx cf gov sen rev hon lt"
    " sgt capt cmdr adm dept univ jan feb apr jun jul aug sep sept oct nov dec pp u.s u.k e.g i.e a.m p.m"
    .split())
_CLOSERS = "\"')]}\u201d\u2019\u00bb"


def _ends_sentence(word: str, next_word: str) -> bool:
    word = word.rstrip(_CLOSERS)
    if word.endswith(("?", "!")):
        return True
    if not word.endswith(".") or word.endswith("..") or word.endswith("\u2026"):
        return False
    stem = word[:-1].lstrip("\"'([{\u201c\u2018\u00ab")
    if not stem or stem.lower() in _SENTENCE_ABBREVIATIONS or (len(stem) == 1 and stem.isalpha()):
        return False
    if stem.replace(",", "").isdigit() and next_word[:1].islower():
        return False
    return True


def c4_sentence_count(line: str) -> int:
    """Sentences of one line, as C4 counts them (an approximation of Punkt: see above)."""
    words = line.split()
    if not words:
        return 0
    return 1 + sum(_ends_sentence(word, following) for word, following in pairwise(words))


class C4Document(DocumentRule):
    """C4's page rules (c4_utils.clean_page), on the lines `C4Lines` kept: the page goes at its first line
    with "lorem ipsum" or "{" (the reason of whichever comes first, as C4), or when its lines hold fewer
    than 3 sentences in all (counted line by line, as C4; see `c4_sentence_count`)."""

    name = "c4_document"

    def __init__(self, min_sentences: int = C4_MIN_NUM_SENTENCES):
        self.min_sentences = min_sentences

    def __call__(self, text: str) -> tuple[bool, str]:
        sentences = 0
        for line in text.splitlines():
            if "lorem ipsum" in line.lower():
                return False, "c4_lorem_ipsum"
            if "{" in line:
                return False, "c4_curly_bracket"
            sentences += c4_sentence_count(line)
        if sentences < self.min_sentences:
            return False, "c4_too_few_sentences"
        return True, ""


class C4LinesT5Paper(C4Lines):
    """C4's line filter with the T5 paper's number (lines of at least 3 words); otherwise as `C4Lines`."""

    name = "c4_lines_t5_paper"

    def __init__(self, min_words_per_line: int = T5_PAPER_MIN_WORDS_PER_LINE,
                 max_word_length: int = C4_MAX_WORD_LENGTH):
        super().__init__(min_words_per_line, max_word_length)


class C4DocumentT5Paper(C4Document):
    """C4's page rules with the T5 paper's number (pages of at least 5 sentences); otherwise as
    `C4Document`."""

    name = "c4_document_t5_paper"

    def __init__(self, min_sentences: int = T5_PAPER_MIN_NUM_SENTENCES):
        super().__init__(min_sentences)


# --- Gopher --------------------------------------------------------------------------------------------
# What a word is: the paper does not say; as datatrove, spaCy's English words (gopher_words.py).


def _is_symbol(word: str) -> bool:
    """A word made only of punctuation, symbols or control characters: datatrove's "symbol words", which
    it finds with a list of such characters, and these with Unicode's categories."""
    return all(unicodedata.category(ch)[0] in "PSC" for ch in word)


# Gopher's stop words (paper appendix A): a document must contain at least two of them.
GOPHER_STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
GOPHER_BULLETS = ("\u2022", "-")  # datatrove's; the paper does not list them
GOPHER_ELLIPSES = ("...", "\u2026")


class GopherQuality(DocumentRule):
    """Gopher's quality rules (Rae et al. 2021, appendix A), each on its own: 50 to 100,000 words (not
    counting words made only of punctuation), a mean word length of 3 to 10 characters, at most 0.1 `#`
    per word and at most 0.1 ellipses per word (two separate ratios), at most 90% of lines starting with
    a bullet and at most 30% ending with an ellipsis, at least 80% of words with a letter, and at least
    two different stop words. Where the paper is silent, as datatrove's GopherQualityFilter: words as
    `gopher_words` gives them, bullets `•` and `-`, ratios over all lines (blank ones too), stop words
    matched as written (lowercase)."""

    name = "gopher_quality"

    def __init__(  # the thresholds of Rae et al. 2021, appendix A (datatrove's defaults too)
        self,
        min_doc_words: int = 50,
        max_doc_words: int = 100_000,
        min_avg_word_length: float = 3,
        max_avg_word_length: float = 10,
        max_symbol_word_ratio: float = 0.1,
        max_bullet_lines_ratio: float = 0.9,
        max_ellipsis_lines_ratio: float = 0.3,
        min_alpha_words_ratio: float = 0.8,
        min_stop_words: int = 2,
    ):
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.min_alpha_words_ratio = min_alpha_words_ratio
        self.min_stop_words = min_stop_words

    def __call__(self, text: str) -> tuple[bool, str]:
        words = gopher_words(text)
        # Each distinct word is looked at once (a page repeats most of its words): 1.5x faster.
        counts = Counter(words)
        n = letters = 0
        for word, count in counts.items():
            if word.isalpha() or not _is_symbol(word):  # letters only: no symbol word (the common case)
                n += count
                letters += len(word) * count
        if n < self.min_doc_words:
            return False, "gopher_short_doc"
        if n > self.max_doc_words:
            return False, "gopher_long_doc"
        avg = letters / n
        if not self.min_avg_word_length <= avg <= self.max_avg_word_length:
            return False, "gopher_mean_word_length"
        if text.count("#") / len(words) > self.max_symbol_word_ratio:
            return False, "gopher_hash_ratio"
        if sum(map(text.count, GOPHER_ELLIPSES)) / len(words) > self.max_symbol_word_ratio:
            return False, "gopher_ellipsis_ratio"
        lines = text.splitlines()
        bullets = sum(1 for line in lines if line.lstrip().startswith(GOPHER_BULLETS))
        if bullets / len(lines) > self.max_bullet_lines_ratio:
            return False, "gopher_bullet_lines"
        ellipsis = sum(1 for line in lines if line.rstrip().endswith(GOPHER_ELLIPSES))
        if ellipsis / len(lines) > self.max_ellipsis_lines_ratio:
            return False, "gopher_ellipsis_lines"
        alpha_words = sum(count for word, count in counts.items()
                          if word.isalpha() or any(ch.isalpha() for ch in word))
        if alpha_words / len(words) < self.min_alpha_words_ratio:
            return False, "gopher_alpha_words"
        if len(GOPHER_STOP_WORDS.intersection(counts)) < self.min_stop_words:
            return False, "gopher_stop_words"
        return True, ""


def _duplicates(elements: list[str]) -> tuple[int, int]:
    """(elements that repeat an earlier one, their characters)."""
    seen: set[str] = set()
    dup_elements = dup_chars = 0
    for element in elements:
        if element in seen:
            dup_elements += 1
            dup_chars += len(element)
        else:
            seen.add(element)
    return dup_elements, dup_chars


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    """Every n-gram of `words`, in order (made by zip in C: 4x faster than slicing in a loop)."""
    return list(zip(*(words[i:] for i in range(n)), strict=False))  # the shifted lists end early


def _top_ngram_chars(words: list[str], n: int) -> int:
    """Characters of the most frequent n-gram (its words joined by spaces) times its count. Counted as
    tuples: words hold no whitespace, so two n-grams are the same tuple exactly when they join to the
    same string, and the first of equally frequent ones is the same."""
    counts = Counter(_ngrams(words, n))
    if not counts:
        return 0
    top, count = counts.most_common(1)[0]
    return (sum(map(len, top)) + n - 1) * count


def _duplicate_ngram_chars(words: list[str], n: int, starts: list[int]) -> int:
    """Characters of the words in n-grams that repeat an earlier n-gram, each word counted once: the scan
    jumps past a repeated n-gram, so overlapping repeats are not counted twice (datatrove's reading).
    `starts`: the words' cumulative lengths (`_cumulative_lengths`, made once for every n).

    A document where no n-gram repeats is answered without the scan (a set of the n-grams in C); the
    scan reads the n-grams zip made and sums the words' lengths from the cumulative ones."""
    grams = _ngrams(words, n)
    if len(set(grams)) == len(grams):
        return 0
    seen: set[tuple[str, ...]] = set()
    chars = i = 0
    end = len(grams)
    while i < end:
        gram = grams[i]
        if gram in seen:
            chars += starts[i + n] - starts[i]
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


def _cumulative_lengths(words: list[str]) -> list[int]:
    """[0, len(words[0]), len(words[0]) + len(words[1]), ...]: the characters of words[i:j] are
    starts[j] - starts[i]."""
    return [0, *accumulate(map(len, words))]


class GopherRepetition(DocumentRule):
    """Gopher's repetition rules (Rae et al. 2021, table A1). Every fraction of characters is of the
    document's characters; as datatrove's GopherRepetitionFilter where the paper is silent: paragraphs
    are split at blank lines, lines at newlines, words as `gopher_words` (case kept), a top n-gram is
    measured with the spaces between its words, and a duplicated n-gram's first occurrence is not a
    duplicate."""

    name = "gopher_repetition"

    def __init__(  # the thresholds of Rae et al. 2021, table A1 (datatrove's defaults too)
        self,
        dup_line_frac: float = 0.3,
        dup_para_frac: float = 0.3,
        dup_line_char_frac: float = 0.2,
        dup_para_char_frac: float = 0.2,
        top_ngrams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16)),
        dup_ngrams: tuple[tuple[int, float], ...] = (
            (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10),
        ),
    ):
        self.dup_line_frac = dup_line_frac
        self.dup_para_frac = dup_para_frac
        self.dup_line_char_frac = dup_line_char_frac
        self.dup_para_char_frac = dup_para_char_frac
        self.top_ngrams = top_ngrams
        self.dup_ngrams = dup_ngrams

    def __call__(self, text: str) -> tuple[bool, str]:
        if not text.strip():
            return False, "gopher_empty"
        chars = len(text)
        paragraphs = re.split(r"\n{2,}", text.strip())
        dups, dup_chars = _duplicates(paragraphs)
        if dups / len(paragraphs) > self.dup_para_frac:
            return False, "gopher_dup_paragraphs"
        if dup_chars / chars > self.dup_para_char_frac:
            return False, "gopher_dup_paragraph_chars"
        lines = re.split(r"\n+", text)
        dups, dup_chars = _duplicates(lines)
        if dups / len(lines) > self.dup_line_frac:
            return False, "gopher_dup_lines"
        if dup_chars / chars > self.dup_line_char_frac:
            return False, "gopher_dup_line_chars"
        words = gopher_words(text)
        for n, limit in self.top_ngrams:
            if _top_ngram_chars(words, n) / chars > limit:
                return False, f"gopher_top_{n}gram"
        starts = _cumulative_lengths(words)
        for n, limit in sorted(self.dup_ngrams):
            dup_chars = _duplicate_ngram_chars(words, n, starts)
            if dup_chars / chars > limit:
                return False, f"gopher_dup_{n}gram"
            if dup_chars == 0:  # no n-gram repeats, so no longer one does (it would hold a repeated n-gram)
                break
        return True, ""


class RedPajamaCode(DocumentRule):
    """RedPajama-Data v1's GitHub file filters (github_run_filter.py). The GitHub reader applies the
    same thresholds (its options) as part of its recipe cleaning; this rule makes them available to
    any source of code in `filters.rules`."""

    name = "redpajama_code"

    def __init__(self, max_line_length: int = 1000, max_mean_line_length: float = 100,
                 min_alphanumeric_fraction: float = 0.25, min_alpha_per_token: float = 1.5):
        self.max_line_length = max_line_length
        self.max_mean_line_length = max_mean_line_length
        self.min_alphanumeric_fraction = min_alphanumeric_fraction
        self.min_alpha_per_token = min_alpha_per_token

    def __call__(self, text: str) -> tuple[bool, str]:
        lines = text.splitlines()
        if not lines:
            return False, "code_empty"
        if max(map(len, lines)) > self.max_line_length:
            return False, "code_line_too_long"
        if len(text) / len(lines) > self.max_mean_line_length:
            return False, "code_mean_line_too_long"
        if sum(map(str.isalnum, text)) / len(text) < self.min_alphanumeric_fraction:
            return False, "code_low_alphanumeric"
        # RedPajama counted BPE tokens; whitespace words need no tokenizer (see sources/github.py).
        tokens = len(text.split())
        if tokens == 0 or sum(map(str.isalpha, text)) / tokens < self.min_alpha_per_token:
            return False, "code_low_alpha_per_token"
        return True, ""


RULES: dict[str, Callable[[], DocumentRule | LineCleaner]] = {
    CCNetMinLength.name: CCNetMinLength,
    C4Lines.name: C4Lines,
    C4Document.name: C4Document,
    C4LinesT5Paper.name: C4LinesT5Paper,
    C4DocumentT5Paper.name: C4DocumentT5Paper,
    GopherQuality.name: GopherQuality,
    GopherRepetition.name: GopherRepetition,
    RedPajamaCode.name: RedPajamaCode,
}


USER_RULE = re.compile(r"(?P<module>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*):(?P<cls>[A-Za-z_]\w*)")


def rule_name(rule) -> str:
    """A rule's name: its `name` attribute, or its class name (a user's rule need not set one)."""
    name = getattr(rule, "name", None)
    return name if isinstance(name, str) and name else type(rule).__name__


def load_user_rule(path: str):
    """The user's rule `package.module:ClassName`, made and checked against the protocol (module
    docstring); a ValueError says what is wrong."""
    import importlib

    match = USER_RULE.fullmatch(path)
    if match is None:
        raise ValueError(f"{path!r} is neither a built-in rule ({', '.join(sorted(RULES))}) nor a dotted "
                         "path package.module:ClassName")
    try:
        module = importlib.import_module(match["module"])
    except Exception as exc:  # ImportError, or whatever the module raises as it is imported
        raise ValueError(f"cannot import {match['module']!r} for {path!r}: {type(exc).__name__}: "
                         f"{exc}") from None
    cls = getattr(module, match["cls"], None)
    if not isinstance(cls, type):
        raise ValueError(f"module {match['module']!r} has no class {match['cls']!r}")
    try:
        rule = cls()
    except Exception as exc:
        raise ValueError(f"{path}: cannot make it without arguments: {type(exc).__name__}: {exc}") from None
    if isinstance(rule, LineCleaner) or callable(getattr(rule, "clean", None)):
        return rule
    if callable(rule):
        return rule
    raise ValueError(f"{path}: follows neither rule protocol: a document rule is callable, "
                     "rule(text) -> (keep, reason); a line cleaner has clean(text) -> text")


def build_rules(names: list[str]) -> list:
    """The rules of `names`: built-in names and the user's dotted paths (see the module docstring)."""
    rules = []
    for name in names:
        if name in RULES:
            rules.append(RULES[name]())
        elif ":" in name:
            rules.append(load_user_rule(name))
        else:
            raise ValueError(f"unknown filter rule {name!r} (known: {', '.join(sorted(RULES))}, or a "
                             "dotted path package.module:ClassName of your own)")
    return rules


def check_rules(filters: FiltersConfig) -> None:
    """Before any work: every rule of `filters.rules` is built (the user's imported and checked); a
    problem is a ConfigError naming `filters.rules.<source>[i]`."""
    for source, names in filters.rules.items():
        for i, name in enumerate(names):
            try:
                build_rules([name])
            except ValueError as exc:
                raise ConfigError(f"filters.rules.{source}[{i}]: {exc}") from None


def _is_cleaner(rule) -> bool:
    return isinstance(rule, LineCleaner) or callable(getattr(rule, "clean", None))


class QualityFilterDoFn(beam.DoFn):
    """Apply each source's rules in order; the first failing rule names the drop reason."""

    def __init__(self, rules_by_source: dict[str, list[str]]):
        self._names = {source: list(names) for source, names in rules_by_source.items()}
        for names in self._names.values():
            build_rules(names)  # fail at graph construction, not on a worker
        self._rules: dict[str, list] = {}

    def setup(self) -> None:
        self._rules = {source: build_rules(names) for source, names in self._names.items()}

    def process(self, doc: dict):
        text = doc["text"]
        for rule in self._rules.get(doc["source"], []):
            if _is_cleaner(rule):
                text = rule.clean(text)
                if not isinstance(text, str):
                    raise TypeError(f"the line cleaner {rule_name(rule)} returned {type(text).__name__}, "
                                    "not the text (str)")
                if not text.strip():
                    reason = f"{rule_name(rule)}_no_lines_left"
                    yield drop(doc["source"], STAGE, reason, doc["id"], "", doc["text"])
                    return
                continue
            keep, reason = _decision(rule, text)
            if not keep:
                yield drop(doc["source"], STAGE, reason or rule_name(rule), doc["id"], "", doc["text"])
                return
        if text != doc["text"]:
            doc = {**doc, "text": text}
        yield doc


def _decision(rule, text: str) -> tuple[bool, str]:
    """A document rule's (keep, reason), checked: a user's rule that returns another shape fails loudly."""
    result = rule(text)
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str)):
        raise TypeError(f"the rule {rule_name(rule)} returned {result!r}, not (keep, reason)")
    return bool(result[0]), result[1]


class QualityFilter(Stage):
    entry = QUALITY

    def __init__(self, rules_by_source: dict[str, list[str]]):
        super().__init__()
        self._rules_by_source = rules_by_source

    def expand(self, docs):
        return self.split(docs, "ApplyRules", QualityFilterDoFn(self._rules_by_source))
