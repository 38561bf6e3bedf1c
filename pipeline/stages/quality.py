"""Quality heuristics: one small class per rule set, each returning `(keep, reason)`.

Defaults are the papers' numbers:
- CCNet (Wenzek et al. 2019): documents under 300 characters are dropped.
- C4 (Raffel et al. 2020, as in TensorFlow Datasets' c4_utils): line rules (terminal punctuation,
  at least 3 words, no "javascript", no cookie / terms-of-use lines, no word > 1000 chars, strip
  citation markers) and document rules ("lorem ipsum", "{", at least 5 sentences).
- Gopher (Rae et al. 2021, appendix A), as implemented by datatrove: quality and repetition rules.
- RedPajama-Data v1: the GitHub file rules (line lengths, alphanumeric share, letters per token).

`line_cleaners` transform the text (C4's line filter) and may leave nothing, which is a drop.
The C4 bad-words list (LDNOOBW) is not shipped: it cannot be downloaded at run time here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import apache_beam as beam

from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.registry import QUALITY

STAGE = QUALITY.name

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'", "\u201d", "\u2019")
_CITATION_RE = re.compile(r"\[\d+\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"[.!?]+(?:[\"'\u201d\u2019)]*)(?:\s|$)")
GOPHER_STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])


def words_of(text: str) -> list[str]:
    return text.split()


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


# C4's policy substrings (TensorFlow Datasets, c4_utils._POLICY_SUBSTRINGS).
C4_POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                        "use cookies")


class C4Lines(LineCleaner):
    """C4's line filter; a cleaner (returns the kept lines), not a document test.

    The checks run in C4's order. C4 drops the whole page on a kept line with "lorem ipsum" (checked
    before the javascript rule) or "{" (checked before the policy rule); such lines are kept here so
    that `C4Document`, which runs next, drops the page with that reason, exactly when C4 would."""

    name = "c4_lines"

    def __init__(self, min_words_per_line: int = 3, max_word_length: int = 1000):
        self.min_words_per_line = min_words_per_line
        self.max_word_length = max_word_length

    def clean(self, text: str) -> str:
        kept = []
        for line in text.splitlines():
            line = _CITATION_RE.sub("", line).strip()
            if not line.endswith(_TERMINAL_PUNCTUATION) or line.endswith("..."):
                continue
            words = line.split()
            if len(words) < self.min_words_per_line:
                continue
            if max(len(w) for w in words) > self.max_word_length:
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
        return "\n".join(kept)


class C4Document(DocumentRule):
    """C4's document rules."""

    name = "c4_document"

    def __init__(self, min_sentences: int = 5):
        self.min_sentences = min_sentences

    def __call__(self, text: str) -> tuple[bool, str]:
        lower = text.lower()
        if "lorem ipsum" in lower:
            return False, "c4_lorem_ipsum"
        if "{" in text:
            return False, "c4_curly_bracket"
        if len(_SENTENCE_END_RE.findall(text)) < self.min_sentences:
            return False, "c4_too_few_sentences"
        return True, ""


class GopherQuality(DocumentRule):
    """Gopher's quality rules (defaults as in the paper and datatrove's GopherQualityFilter)."""

    name = "gopher_quality"

    def __init__(
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
        words = words_of(text)
        # Words made only of punctuation do not count towards length measures (as datatrove).
        non_symbol_words = [w for w in words if any(ch.isalnum() for ch in w)]
        n = len(non_symbol_words)
        if n < self.min_doc_words:
            return False, "gopher_short_doc"
        if n > self.max_doc_words:
            return False, "gopher_long_doc"
        avg = sum(len(w) for w in non_symbol_words) / n
        if not self.min_avg_word_length <= avg <= self.max_avg_word_length:
            return False, "gopher_mean_word_length"
        symbols = text.count("#") + text.count("...") + text.count("\u2026")
        if symbols / len(words) > self.max_symbol_word_ratio:
            return False, "gopher_symbol_ratio"
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            bullets = sum(1 for line in lines if line.lstrip().startswith(("\u2022", "-", "*")))
            if bullets / len(lines) > self.max_bullet_lines_ratio:
                return False, "gopher_bullet_lines"
            ellipsis = sum(1 for line in lines if line.rstrip().endswith(("...", "\u2026")))
            if ellipsis / len(lines) > self.max_ellipsis_lines_ratio:
                return False, "gopher_ellipsis_lines"
        alpha_words = sum(1 for w in words if any(ch.isalpha() for ch in w))
        if alpha_words / len(words) < self.min_alpha_words_ratio:
            return False, "gopher_alpha_words"
        stop_words = sum(1 for w in words if w.lower() in GOPHER_STOP_WORDS)
        if stop_words < self.min_stop_words:
            return False, "gopher_stop_words"
        return True, ""


def _duplicate_fraction(elements: list[str]) -> tuple[float, float]:
    """(fraction of elements that repeat an earlier one, fraction of characters in them)."""
    seen: set[str] = set()
    dup_elements = dup_chars = 0
    for element in elements:
        if element in seen:
            dup_elements += 1
            dup_chars += len(element)
        else:
            seen.add(element)
    total_chars = sum(len(e) for e in elements) or 1
    return dup_elements / max(len(elements), 1), dup_chars / total_chars


def _top_ngram_char_fraction(words: list[str], n: int) -> float:
    ngrams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not ngrams:
        return 0.0
    top, count = Counter(ngrams).most_common(1)[0]
    return len(top) * count / max(sum(len(w) for w in words), 1)


def _duplicate_ngram_char_fraction(words: list[str], n: int) -> float:
    """Share of word characters covered by n-grams that occur more than once (Gopher)."""
    if len(words) < n:
        return 0.0
    ngrams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(ngrams)
    covered = [False] * len(words)
    for i, gram in enumerate(ngrams):
        if counts[gram] > 1:
            for j in range(i, i + n):
                covered[j] = True
    total = sum(len(w) for w in words) or 1
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c) / total


class GopherRepetition(DocumentRule):
    """Gopher's repetition rules (paper table A1; datatrove's GopherRepetitionFilter)."""

    name = "gopher_repetition"

    def __init__(
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
        paragraphs = [p.strip() for p in re.split(r"\n{2,}", text.strip()) if p.strip()]
        frac, char_frac = _duplicate_fraction(paragraphs)
        if frac > self.dup_para_frac:
            return False, "gopher_dup_paragraphs"
        if char_frac > self.dup_para_char_frac:
            return False, "gopher_dup_paragraph_chars"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        frac, char_frac = _duplicate_fraction(lines)
        if frac > self.dup_line_frac:
            return False, "gopher_dup_lines"
        if char_frac > self.dup_line_char_frac:
            return False, "gopher_dup_line_chars"
        words = [w.lower() for w in _WORD_RE.findall(text)]
        for n, limit in self.top_ngrams:
            if _top_ngram_char_fraction(words, n) > limit:
                return False, f"gopher_top_{n}gram"
        for n, limit in self.dup_ngrams:
            if _duplicate_ngram_char_fraction(words, n) > limit:
                return False, f"gopher_dup_{n}gram"
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
    GopherQuality.name: GopherQuality,
    GopherRepetition.name: GopherRepetition,
    RedPajamaCode.name: RedPajamaCode,
}


def build_rules(names: list[str]) -> list[DocumentRule | LineCleaner]:
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise ValueError(f"unknown filter rule {unknown[0]!r} (known: {', '.join(sorted(RULES))})")
    return [RULES[n]() for n in names]


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
            if isinstance(rule, LineCleaner):
                text = rule.clean(text)
                if not text.strip():
                    reason = f"{rule.name}_no_lines_left"
                    yield drop(doc["source"], STAGE, reason, doc["id"], "", doc["text"])
                    return
                continue
            keep, reason = rule(text)
            if not keep:
                yield drop(doc["source"], STAGE, reason, doc["id"], "", doc["text"])
                return
        if text != doc["text"]:
            doc = {**doc, "text": text}
        yield doc


class QualityFilter(Stage):
    entry = QUALITY

    def __init__(self, rules_by_source: dict[str, list[str]]):
        super().__init__()
        self._rules_by_source = rules_by_source

    def expand(self, docs):
        return self.split(docs, "ApplyRules", QualityFilterDoFn(self._rules_by_source))
