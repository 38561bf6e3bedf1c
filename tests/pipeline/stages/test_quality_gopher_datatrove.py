"""Gopher's rules against datatrove's (the reference implementation: GopherRepetitionFilter and
GopherQualityFilter of datatrove, a test-only dependency, pinned in constraints.txt), document by document
on every real text of ../shared/realdata (tests/pipeline/stages/real_texts.py: C4 pages, extracted web
pages, a WET record, Wikipedia articles, Stack Exchange threads, books, arXiv bodies).

A datatrove filter is called without a datatrove pipeline: `filter(Document(text=..., id=...))` returns
True (keep) or (False, reason). For English datatrove splits words with spaCy's tokenizer (spaCy is a
test-only dependency too); ours follows spaCy's rules without spaCy (`gopher_words`).

The decision (kept, or dropped and by which rule) must be the same on at least 97% of the texts, and every
text where it differs is listed in KNOWN_DIFFERENCES with the reason ours is right (today: none).
"""

from __future__ import annotations

from collections import Counter

from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter

from llamapipe.pipeline.stages.gopher_words import gopher_words
from llamapipe.pipeline.stages.quality import GopherQuality, GopherRepetition
from tests.pipeline.stages.real_texts import real_texts

# datatrove's drop reasons -> ours
REASONS = {
    "empty": "gopher_empty",
    "dup_para_frac": "gopher_dup_paragraphs",
    "dup_para_char_frac": "gopher_dup_paragraph_chars",
    "dup_line_frac": "gopher_dup_lines",
    "dup_line_char_frac": "gopher_dup_line_chars",
    **{f"top_{n}_gram": f"gopher_top_{n}gram" for n in (2, 3, 4)},
    **{f"duplicated_{n}_n_grams": f"gopher_dup_{n}gram" for n in range(5, 11)},
    "gopher_short_doc": "gopher_short_doc",
    "gopher_long_doc": "gopher_long_doc",
    "gopher_below_avg_threshold": "gopher_mean_word_length",
    "gopher_above_avg_threshold": "gopher_mean_word_length",
    "gopher_too_many_hashes": "gopher_hash_ratio",
    "gopher_too_many_ellipsis": "gopher_ellipsis_ratio",
    "gopher_too_many_bullets": "gopher_bullet_lines",
    "gopher_too_many_end_ellipsis": "gopher_ellipsis_lines",
    "gopher_below_alpha_threshold": "gopher_alpha_words",
    "gopher_enough_stop_words": "gopher_stop_words",
}

# text id -> why our decision is the right one where datatrove's differs. Empty: on every real text the
# two agree (checked exactly below, so a difference that appears must be explained here).
KNOWN_DIFFERENCES: dict[str, str] = {}


def datatrove_decision(filters, text: str, doc_id: str) -> str:
    """"kept" or the first failing filter's reason, in our names."""
    for step in filters:
        result = step.filter(Document(text=text, id=doc_id))
        if result is not True:
            return REASONS[result[1]]
    return "kept"


def our_decision(rules, text: str) -> str:
    for rule in rules:
        keep, reason = rule(text)
        if not keep:
            return reason
    return "kept"


def test_gopher_rules_decide_as_datatrove_on_real_texts(realdata):
    texts = real_texts(realdata)
    assert len(texts) >= 500 and len({t.kind for t in texts}) == 7
    theirs_rules = [GopherRepetitionFilter(), GopherQualityFilter()]
    our_rules = [GopherRepetition(), GopherQuality()]
    differences, decisions = {}, Counter()
    for text in texts:
        theirs = datatrove_decision(theirs_rules, text.text, text.id)
        ours = our_decision(our_rules, text.text)
        decisions[ours] += 1
        if ours != theirs:
            differences[text.id] = (ours, theirs)
    agreement = 1 - len(differences) / len(texts)
    print(f"gopher vs datatrove: {len(texts) - len(differences)}/{len(texts)} same decision "
          f"({agreement:.1%}); ours: {dict(decisions)}")
    assert agreement >= 0.97
    assert set(differences) == set(KNOWN_DIFFERENCES), differences
    # the real texts exercise the rules both ways
    assert decisions["kept"] >= 300
    assert {"gopher_short_doc", "gopher_alpha_words", "gopher_stop_words", "gopher_dup_lines"} <= set(
        decisions)


def test_words_are_spacys_words_on_real_text(realdata):
    """`gopher_words` against spaCy's English tokenizer (what datatrove uses) on the real texts but the
    books (long, and slow to split twice): the same words on nearly every document, and nearly every word
    the same (the few differences are LaTeX oddities, rare abbreviations, Bengali)."""
    from datatrove.utils.text import split_into_words

    texts = [t for t in real_texts(realdata) if t.kind != "books"]
    same_documents = differing_words = all_words = 0
    for text in texts:
        ours, theirs = gopher_words(text.text), split_into_words(text.text)
        same_documents += ours == theirs
        differing_words += sum((Counter(theirs) - Counter(ours)).values())
        all_words += len(theirs)
    print(f"words: {same_documents}/{len(texts)} documents split the same, "
          f"{differing_words} of {all_words} words differ")
    assert same_documents >= 0.95 * len(texts)
    assert differing_words <= 0.0005 * all_words
