"""trafilatura without the readability runs that cannot change its text (issue 28).

After its own extraction, trafilatura (full mode) always runs readability on the page and takes
readability's text instead of its own only when `_prefer_readability` says so: its own text is empty,
readability's is more than twice as long, or its own is structurally poor (no paragraph text, or more
tables than paragraphs) while readability's is over twice `min_extracted_size`; in recall mode, in two
more cases. Readability is about a fifth of trafilatura's CPU on the real pages of
benchmarks/cc_profile.py, and on most pages its text cannot win.

`install()` wraps trafilatura's `compare_extraction` so that readability is not run when none of those
cases can hold, whatever readability would return. That needs a bound on the length of readability's text
without running it: readability drops scripts, styles and fenced frames, keeps the rest of the page in
document order or drops it, and adds only the word "VIDEO" to a video iframe. So its text, whitespace
collapsed as trafilatura measures it, is at most the page's collapsed text less each script's and style's
own collapsed text (plus two characters each: at most one space saved at each end where the text joins),
plus six characters an iframe. When that bound is at most twice the length of trafilatura's own text (and
the structure test passes, or the bound is under it), readability's text cannot be preferred; the guard
makes the call return an empty element, which `_prefer_readability` turns down at once, and the rest
(jusText's rescue, the baseline, the recall escalation) runs exactly as before. The text is trafilatura's
own on every real page (tests/pipeline/stages/test_extract_methods.py, with the bound checked against
readability's actual text on each page).

The wrapper depends on trafilatura's internals (`trafilatura.core.compare_extraction`,
`trafilatura.external.try_readability`, `_prefer_readability`), so it is installed only on the version it
was checked against (`CHECKED_VERSION`); on another, trafilatura runs as it is.
"""

from __future__ import annotations

import logging

CHECKED_VERSION = "2.3.1"
_VIDEO_ALLOWANCE = 6  # "VIDEO" and the space it may add
_JOIN_ALLOWANCE = 2  # a space at each end of a removed script's text

LOG = logging.getLogger(__name__)

_state = {"installed": None, "skip": False, "skipped": 0, "runs": 0}


def readability_bound(raw_tree) -> int:
    """At least the length of the text readability returns for `raw_tree` (whitespace collapsed)."""
    from lxml.etree import tostring

    text = tostring(raw_tree, method="text", encoding=str)
    bound = len(" ".join(text.split()))
    for element in raw_tree.iter("script", "style"):
        if element.text:
            own = len(" ".join(element.text.split()))
            if own:
                bound -= own - _JOIN_ALLOWANCE
    return bound + _VIDEO_ALLOWANCE * sum(1 for _ in raw_tree.iter("iframe"))


def readability_cannot_win(raw_tree, body, text: str, options) -> bool:
    """True when `_prefer_readability` says no whatever readability's text is: its text is at most the
    bound, never more than twice ours, and ours is not structurally poor unless the bound is too short
    to matter."""
    len_text = len(text)
    if options.focus == "recall" or len_text == 0:
        return False
    bound = readability_bound(raw_tree)
    if bound > 2 * len_text:
        return False
    if bound <= 2 * options.min_extracted_size:
        return True
    return bool(body.xpath(".//p//text()")) and len(body.findall(".//table")) <= len(body.findall(".//p"))


def install() -> bool:
    """Wrap trafilatura's comparison with readability (idempotent); False when trafilatura is not the
    checked version, which then runs unchanged."""
    if _state["installed"] is not None:
        return _state["installed"]
    import trafilatura
    from trafilatura import core, external

    if trafilatura.__version__ != CHECKED_VERSION or not hasattr(external, "_prefer_readability"):
        LOG.info("trafilatura %s is not %s: readability runs on every page", trafilatura.__version__,
                 CHECKED_VERSION)
        _state["installed"] = False
        return False
    compare, run_readability = core.compare_extraction, external.try_readability

    def guarded_readability(tree):
        if _state["skip"]:
            from lxml.html import HtmlElement

            return HtmlElement()  # len 0: "_prefer_readability" returns False first thing
        return run_readability(tree)

    def guarded_compare(cleaned_tree, raw_tree, body, text, options):
        _state["runs"] += 1
        skip = readability_cannot_win(raw_tree, body, text, options)
        _state["skipped"] += skip
        _state["skip"] = skip
        try:
            return compare(cleaned_tree, raw_tree, body, text, options)
        finally:
            _state["skip"] = False

    guarded_compare.original = compare
    guarded_readability.original = run_readability
    core.compare_extraction = guarded_compare
    external.try_readability = guarded_readability
    _state["installed"] = True
    return True


def uninstall() -> None:
    """trafilatura as it was (for tests that compare with it)."""
    from trafilatura import core, external

    if _state["installed"]:
        core.compare_extraction = core.compare_extraction.original
        external.try_readability = external.try_readability.original
    _state["installed"] = None


def counts() -> tuple[int, int]:
    """(comparisons run, readability runs skipped) since the process started."""
    return _state["runs"], _state["skipped"]
