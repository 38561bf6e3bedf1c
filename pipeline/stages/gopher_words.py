"""English words as spaCy's tokenizer splits them, without spaCy: the words Gopher's rules count.

The Gopher paper (Rae et al. 2021, appendix A) does not say what a word is. datatrove, the reference
implementation of its rules here, splits English text with spaCy's tokenizer (a blank English pipeline),
so punctuation marks are words of their own ("end." is "end" and ".", "don't" is "do" and "n't") and count
in the ratios: a page full of numbers and commas has fewer words with a letter. `gopher_words` follows
spaCy's English rules: text is split at whitespace, then each piece loses its prefixes (opening quotes and
brackets, currency, punctuation) and suffixes (closing ones, a final period after a lowercase letter, a
digit or two capitals, units after a number, "'s"), is kept whole when it is one of spaCy's special cases
(abbreviations, emoticons, contractions, which it splits its own way) or a URL, and is split at infixes
(hyphens between letters, "and/or", ellipses, symbols). On the real texts of ../shared/realdata but the
books it gives spaCy's very words on 527 of 541 documents, and 148 of 966,756 words differ (LaTeX oddities,
rare abbreviations, Bengali): tests/pipeline/stages/test_quality_gopher_datatrove.py.
"""

from __future__ import annotations

import re
import unicodedata

_QUOTES = ("'\"\u201c\u201d\u2018\u2019`\u00b4\u201a\u201e\u00ab\u00bb\u300c\u300d\u300e\u300f"
           "\uff08\uff09\u3014\u3015\u3010\u3011\u300a\u300b\u3008\u3009\u27e6\u27e7")
_PUNCT = (",:;!?\u00bf\u061f\u00a1()[]{}<>_#*&\u00b7\u2026\u3002\uff1f\uff01\uff0c\u3001\uff1b\uff1a\uff5e"
          "\u0964\u060c\u06d4\u061b\u066a")
_CURRENCY = "$\u00a3\u20ac\u00a5\u20b9\u20bd\u00a2\u20a9\u20ba\u20b4\u0e3f"
_PREFIXES = frozenset(_QUOTES + _PUNCT + _CURRENCY + "\u00a7%=\u2014\u2013")
_SUFFIXES = frozenset(_QUOTES + _PUNCT + "\u2014\u2013")
_UNITS_RE = re.compile(r"(?<=[0-9])(?:km/h|kmh|km|kg|mg|cm|mm|m|g|lb|oz|ft|yd|in|mph|ha|hPa|Pa|mbar|kb"
                       r"|KB|mb|MB|gb|GB|tb|TB|[TGMK%])$")
_POSSESSIVE = ("'s", "'S", "\u2019s", "\u2019S")
# Contractions spaCy splits (its English special cases, in lowercase or capitalised words only): a verb and
# "n't" (also written "nt": "dont"), "could've" and the like, a pronoun and the endings its special cases
# list, with or without the apostrophe ("youre"), except where spaCy sees another word ("its", "ill",
# "well", "were", "shed", "hell"); "'s" after any word is a suffix.
_NOT_RE = re.compile(r"^(do|does|did|is|are|was|were|have|has|had|ca|wo|sha|could|would|should|might|must"
                     r"|need|ai)(n['\u2019]t|nt)$")
_HAVE_RE = re.compile(r"^(could|would|should|might|must)(['\u2019]ve|ve)$")
_PRONOUN_ENDINGS = {"i": "m ve ll d", "you we they": "re ve ll d", "he she it": "ll d s",
                    "who what when where why how there": "re ve ll d s", "that this": "ll d s",
                    "these those": "re ve ll d"}
_NOT_SPLIT = frozenset("its ill well were shed shell hell whore".split())
_PRONOUN_SPLITS = {
    pronoun + apostrophe + ending: (pronoun, apostrophe + ending)
    for pronouns, endings in _PRONOUN_ENDINGS.items() for pronoun in pronouns.split()
    for ending in endings.split() for apostrophe in ("'", "\u2019", "")
    if pronoun + apostrophe + ending not in _NOT_SPLIT
}
_FIXED_SPLITS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"),
                 "let's": ("let", "'s")}
_KEPT_WHOLE = frozenset(["and/or", "w/o", "''", "'em", "'cause", "'Cause"])
_TIME_RE = re.compile(r"^(1[0-2]|[1-9])(a\.m\.|am|p\.m\.|pm)$")
_URL_RE = re.compile(r"^(?:(?i:[a-z][\w+.-]*://)\S+|(?i:www\.)\S+"
                     r"|(?:\S+@)?[\w-]+(?:\.[\w-]+)*\.[a-z]{2,63}(?:[/?#]\S*)?)$")
_INFIXES = (
    r"\.\.+|\u2026"  # ellipsis
    r"|(?<=[0-9])[+\-*^](?=[0-9-])"  # 1-2, 3*4
    r"|(?<=[a-z'\"\u201d\u2019])\.(?=[A-Z'\"\u201c\u2018])"  # end.Next
    r"|(?<=[^\W\d_]),(?=[^\W\d_])"  # a,b
    r"|(?<=[^\W_])(?:---|--|-|\u2013|\u2014|~)(?=[^\W\d_])"  # well-known
    r"|(?<=[^\W_])[:<>=/](?=[^\W\d_])"  # and/or
)


def _icon_class() -> str:
    """A regex class of the "other symbols" (Unicode So: dingbats, arrows, emoji, the degree sign), which
    spaCy splits off as words of their own, wherever they are."""
    ranges: list[list[int]] = []
    for code in (*range(0x80, 0x10000), *range(0x1F000, 0x1FC00)):
        if unicodedata.category(chr(code)) == "So":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]"


_ICON_RE = re.compile(_icon_class())


def _is_icon(ch: str) -> bool:
    return _ICON_RE.match(ch) is not None


_INFIX_RE = re.compile(_INFIXES + "|" + _ICON_RE.pattern)  # and a symbol anywhere: 85°C


def _prefix_length(chunk: str) -> int:
    if chunk.startswith(("US$", "C$", "A$")):
        return chunk.index("$") + 1
    if chunk.startswith(".."):
        return len(chunk) - len(chunk.lstrip("."))
    first = chunk[0]
    if first in _PREFIXES or _is_icon(first):
        return 1
    if first == "+" and not chunk[1:2].isdigit():
        return 1
    return 0


def _suffix_length(chunk: str) -> int:
    if chunk.endswith(".."):
        return len(chunk) - len(chunk.rstrip("."))
    if chunk.endswith(_POSSESSIVE) and len(chunk) > 2:
        return 2
    unit = _UNITS_RE.search(chunk)
    if unit:
        return len(unit.group())
    last = chunk[-1]
    if last in _SUFFIXES or _is_icon(last):
        return 1
    before = chunk[-2:-1]
    if last in "+" + _CURRENCY and before.isdigit():
        return 1
    if last == "." and re.search("\u00b0[cfkCFK]$", chunk[:-1]):  # 85°C.
        return 1
    if last == "." and before and (before.islower() or before.isdigit() or before in "%\u00b2-+"
                                   or before in _PUNCT or before in _QUOTES
                                   or (before.isupper() and chunk[-3:-2].isupper())):
        return 1
    return 0


# spaCy's special cases kept whole or split in a fixed way: common emoticons, "°C." (degrees).
_EMOTICONS = frozenset(":) :-) :)) :( :-( ): ;) ;-) (: (; (= :D :-D ;D xD XD :P :-P :p :-p :/ :-/ :| :-| :'("
                       " :o :O :-o :-O =) =( 8) <3 ^_^ -_- o_O O_o".split())
_DEGREES_RE = re.compile(r"^(\u00b0)([cfkCFK])(\.)$")


# Abbreviations spaCy's English tokenizer keeps whole (as written: it is case-sensitive); any other word's
# final period is a word of its own after a lowercase letter, a digit or two capitals ("U.S." stays).
_TOKENIZER_ABBREVIATIONS = frozenset(
    "Mr. Mrs. Ms. Messrs. Dr. Prof. St. Jr. Mt. Bros. Co. co. Corp. Inc. Ltd. Gen. Gov. Sen. Rep. Rev. Adm."
    " vs. v.s. a.m. p.m. e.g. E.g. i.e. I.e. Ph.D. D.C. Jan. Feb. Mar. Apr. Jun. Jul. Aug. Sep. Sept. Oct."
    " Nov. Dec. Ala. Ariz. Ark. Calif. Colo. Conn. Del. Fla. Ga. Ill. Ind. Kan. Ky. La. Mass. Md. Mich. Minn."
    " Miss. Mo. Mont. Neb. Nev. Okla. Ore. Pa. Tenn. Va. Wash. Wis.".split()
) | {f"{letter}." for letter in "abcdefghijklmnopqrstuvwxyz"}


def _special(chunk: str) -> list[str] | None:
    if chunk in _EMOTICONS or chunk in _TOKENIZER_ABBREVIATIONS:
        return [chunk]
    degrees = _DEGREES_RE.match(chunk)
    if degrees:
        return list(degrees.groups())
    if chunk in _KEPT_WHOLE:
        return [chunk]
    time = _TIME_RE.match(chunk)
    if time:
        return list(time.groups())
    lower = chunk.lower()
    if chunk != lower and chunk != chunk[:1].upper() + lower[1:]:
        return None  # spaCy's contractions are lowercase or capitalised ("ISN'T" stays whole)
    if lower in _FIXED_SPLITS:  # cannot -> can not
        first = len(_FIXED_SPLITS[lower][0])
        return [chunk[:first], chunk[first:]]
    if lower in _PRONOUN_SPLITS:  # you're -> you 're, im -> i m
        first = len(_PRONOUN_SPLITS[lower][0])
        return [chunk[:first], chunk[first:]]
    match = _NOT_RE.match(lower) or _HAVE_RE.match(lower)  # don't -> do n't, would've -> would 've
    return [chunk[: match.end(1)], chunk[match.end(1):]] if match else None


def _merge_specials(words: list[str], start: int) -> None:
    """spaCy matches its special cases again on the pieces of a split word, so ":-)." is ":-)" and "."
    and "z.B." is "z." and "B."."""
    i = start
    while i < len(words) - 1:
        for size in (4, 3, 2):
            if i + size > len(words):
                continue
            joined = "".join(words[i : i + size])
            if joined in _EMOTICONS or joined in _TOKENIZER_ABBREVIATIONS or joined in _KEPT_WHOLE:
                words[i : i + size] = [joined]
                break
        i += 1


def _split_chunk(chunk: str, out: list[str]) -> None:
    prefixes: list[str] = []
    suffixes: list[str] = []
    special = None
    while chunk:
        special = _special(chunk)
        if special is not None:
            break
        size = len(chunk)
        pre = _prefix_length(chunk)
        if pre:
            prefixes.append(chunk[:pre])
            chunk = chunk[pre:]
            if not chunk or (special := _special(chunk)) is not None:
                break
        suf = _suffix_length(chunk)
        if suf:
            suffixes.append(chunk[-suf:])
            chunk = chunk[:-suf]
        if len(chunk) == size:
            break
    out.extend(prefixes)
    if special is not None:
        out.extend(special)
    elif chunk:
        if _URL_RE.match(chunk):
            out.append(chunk)
        else:
            start = 0
            for match in _INFIX_RE.finditer(chunk):
                if match.start() == 0 or match.start() == match.end():
                    continue
                if match.start() > start:
                    out.append(chunk[start:match.start()])
                out.append(match.group())
                start = match.end()
            if chunk[start:]:
                out.append(chunk[start:])
    out.extend(reversed(suffixes))


# The only chunks of letters alone that can be special cases (all others are a word as they are): these,
# and the contractions without apostrophe ending in "nt" or "ve" ("dont", "wouldve"). `_special` decides.
_LETTER_SPECIALS = frozenset(
    word.lower() for word in (*_EMOTICONS, *_FIXED_SPLITS, *_PRONOUN_SPLITS) if word.isalpha())


# Chunks spaCy keeps whole however they end.
_WHOLE_CHUNKS = _EMOTICONS | _TOKENIZER_ABBREVIATIONS | _KEPT_WHOLE


def _chunk_words(chunk: str) -> tuple[str, ...]:
    """The words of one whitespace-free chunk of text."""
    if chunk.isalpha():
        lower = chunk.lower()
        if (lower not in _LETTER_SPECIALS and not lower.endswith(("nt", "ve"))) or _special(chunk) is None:
            return (chunk,)
    else:
        # The commonest other chunk: letters and one closing mark ("word," "end." "said)"). No special case
        # is such a chunk but those of _WHOLE_CHUNKS, so the mark is a suffix and the letters are split as
        # above (a period only after a lowercase letter; "A." stays whole).
        head, last = chunk[:-1], chunk[-1]
        if (head.isalpha() and (last in _SUFFIXES or (last == "." and head[-1].islower()))
                and chunk not in _WHOLE_CHUNKS):
            return (*_chunk_words(head), last)
    words: list[str] = []
    _split_chunk(chunk, words)
    if len(words) > 1:
        _merge_specials(words, 0)
    return tuple(words)


_last: tuple[str, list[str]] | None = None  # the last text split and its words (see gopher_words)


def gopher_words(text: str) -> list[str]:
    """The words of `text` as datatrove's Gopher filters count them (spaCy's English tokenizer, whose
    rules this follows; whitespace is not a word). The list is shared: callers must not change it.

    Three shortcuts, measured on 185 real web, WET and C4 texts (`benchmarks/cc_profile.py` found the rules
    26% of the CommonCrawl path's CPU, and these words most of that): the Gopher quality and repetition
    rules split the same text one after the other, so the last text's words are kept (matched by
    identity, O(1)) and the second rule gets them free; a chunk of letters only that is no special
    case (a contraction without apostrophe such as "cannot" or "dont" is one) is a word as it is, as no
    prefix, suffix, infix or URL rule applies to letters alone; and a chunk's words depend on the chunk
    alone, so each distinct chunk of a document is split once (a page of 800 chunks has about 400
    distinct ones). The memo lives for one document only: a cache across documents would make a benchmark
    that reads the same pages twice measure its own cache. Both Gopher rules one after the other: 8.3 to
    3.75 ms per document with the first two (`benchmarks/quality_rules.py`, the two runs back to back);
    the words alone, 2.3 to 1.0 ms per document with the memo and the split of "word," and "end." below
    (`_chunk_words`; on the slower machine of 2026-12-08);
    tests/pipeline/stages/test_quality_gopher_datatrove.py checks the words are still datatrove's on 544
    real texts."""
    global _last
    last = _last
    if last is not None and last[0] is text:
        return last[1]
    chunks = text.split()
    known = {chunk: _chunk_words(chunk) for chunk in dict.fromkeys(chunks)}
    words = [word for chunk in chunks for word in known[chunk]]
    _last = (text, words)
    return words
