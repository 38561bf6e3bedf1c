"""extract.method: the cheap-first cascade keeps trafilatura's accuracy on real pages with gold text,
resiliparse alone runs behind the same subprocess protection and prepass, and a wrong method is one
error naming the key."""

from __future__ import annotations

import json
import textwrap

import pytest

from llamapipe.pipeline.config import ExtractConfig, FiltersConfig, LangIdConfig, load_config
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
from llamapipe.pipeline.stages import readability_guard
from llamapipe.pipeline.stages.extract import ExtractionProcess, extractor_setup
from llamapipe.pipeline.stages.extract_subprocess import PageExtractor, use_c_element_lookup
from llamapipe.sources.commoncrawl import decode_html
from tests.pipeline.stages.test_extract import ENGLISH, GERMAN, page


def snippet_f1(items: list[dict], outputs: list[str | None]) -> float:
    """trafilatura's own scoring (benchmarks/extraction.py): `with` snippets found are true positives,
    `without` snippets found are false positives."""
    tp = fn = fp = 0
    for item, output in zip(items, outputs, strict=True):
        output = output or ""
        tp += sum(s in output for s in item["with"])
        fn += sum(s not in output for s in item["with"])
        fp += sum(s in output for s in item["without"])
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall)


def test_the_cascade_keeps_trafilaturas_f1_on_the_real_gold_pages(realdata):
    folder = realdata / "html_extraction" / "trafilatura"
    gold = json.loads((folder / "evaldata.json").read_text(encoding="utf-8"))
    items = [item for item in gold.values() if (folder / "html" / item["file"]).exists()]
    assert len(items) >= 100
    pages = [decode_html((folder / "html" / item["file"]).read_bytes(), None)[0] for item in items]
    f1 = {method: snippet_f1(items, [PageExtractor(False, False, False, method=method)(html).text
                                     for html in pages])
          for method in ("trafilatura", "cascade", "resiliparse")}
    assert f1["cascade"] >= f1["trafilatura"] - 0.005, f1
    assert f1["trafilatura"] > 0.9, f1
    # resiliparse alone keeps boilerplate (its precision is ~0.75): why it is not the default
    assert f1["resiliparse"] < f1["trafilatura"] - 0.05, f1


@pytest.mark.parametrize("method", ["cascade", "resiliparse"])
def test_cheap_first_methods_extract_and_prepass_in_the_subprocess(method):
    setup = extractor_setup(ExtractConfig(method=method), LangIdConfig(), FiltersConfig())
    process = ExtractionProcess(setup, 30.0)
    try:
        kept = process.extract(page(ENGLISH * 3), "", "commoncrawl")
        german = process.extract(page(GERMAN * 3), "", "commoncrawl")
        short = process.extract(page(ENGLISH[:1]), "", "commoncrawl")
    finally:
        process.close()
    assert ENGLISH[0] in kept.text and "Copyright 2024" not in kept.text
    assert (german.stage, german.reason) == ("langid", "language_de")
    assert (short.stage, short.reason) == ("quality", "too_short")


def test_an_unknown_method_is_one_error_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"extract\.method must be one of trafilatura, cascade, resiliparse"):
        ExtractConfig(method="readability")
    with pytest.raises(ValueError, match=r"extract\.method"):
        PageExtractor(False, False, False, method="readability")
    config = tmp_path / "config.yaml"
    text = textwrap.dedent("""\
        output: out
        sources:
          c4: {inputs: ["in/*.json"]}
        extract:
          method: METHOD
        """)
    config.write_text(text.replace("METHOD", "readability"))
    with pytest.raises(ConfigError, match=r"extract\.method"):
        load_config(str(config), check_files=False)
    for method in ("trafilatura", "cascade", "resiliparse"):
        config.write_text(text.replace("METHOD", method))
        assert load_config(str(config), check_files=False).extract.method == method


def _real_pages(realdata) -> list[tuple[str, str]]:
    """(html, url) of the real web pages: the HTML responses of the WARC samples, then the gold pages."""
    from llamapipe.sources import commoncrawl

    reader = commoncrawl.ReadWarcFileDoFn(commoncrawl.Options())
    pages = [(doc["html"], doc["url"]) for path in sorted((realdata / "commoncrawl").glob("*.warc*"))
             for doc in reader.process(str(path)) if isinstance(doc, dict) and "html" in doc]
    folder = realdata / "html_extraction" / "trafilatura" / "html"
    pages += [(decode_html(path.read_bytes(), None)[0], "") for path in sorted(folder.iterdir())]
    assert len(pages) >= 160
    return pages


@pytest.mark.parametrize("focus", ["balanced", "precision"])
def test_the_c_element_lookup_and_the_readability_guard_extract_what_trafilatura_does_on_real_pages(
        realdata, focus):
    """PageExtractor's parser makes elements through lxml's C lookup (`use_c_element_lookup`) and skips the
    readability runs that cannot change the text (`readability_guard`); the text must be trafilatura's
    own, made with lxml.html's stock lookup and every readability run, on every real page."""
    import trafilatura
    from lxml.html import HtmlElementClassLookup
    from trafilatura.utils import HTML_PARSER

    pages = _real_pages(realdata)
    precision = focus == "precision"
    extractor = PageExtractor(precision, False, False)
    runs, skipped = readability_guard.counts()
    ours = [extractor(html, url).text for html, url in pages]
    runs, skipped = (a - b for a, b in zip(readability_guard.counts(), (runs, skipped), strict=True))
    HTML_PARSER.set_element_class_lookup(HtmlElementClassLookup())
    readability_guard.uninstall()
    try:
        stock = [trafilatura.extract(html, url=url or None, favor_precision=precision, favor_recall=False,
                                     include_tables=False, include_comments=False, deduplicate=False)
                 for html, url in pages]
    finally:
        use_c_element_lookup()  # back as every PageExtractor leaves it, for the tests after this one
        readability_guard.install()
    assert sum(text is not None for text in ours) > 150
    assert ours == [text.strip() if text and text.strip() else None for text in stock]
    assert runs >= len(pages) and skipped > runs / 4, (runs, skipped)


def test_the_readability_bound_holds_on_real_pages(realdata):
    """The guard's bound is at least the length of the text readability returns, on every real page."""
    from lxml.etree import tostring
    from trafilatura.external import try_readability
    from trafilatura.utils import load_html, trim

    readability_guard.uninstall()  # the real readability, whatever ran before
    try:
        for html, url in _real_pages(realdata):
            tree = load_html(html)
            bound = readability_guard.readability_bound(tree)
            text = trim(tostring(try_readability(tree), method="text", encoding="utf-8").decode("utf-8"))
            assert len(text) <= bound, url
    finally:
        readability_guard.install()


def _lxml_visible_text(tree) -> str:
    """The prepass's text as it read it from lxml's tree before it moved to resiliparse (`parse_page`):
    every text and tail outside invisible elements, whitespace collapsed. The reference of the test below."""
    from lxml import etree

    invisible = {"script", "style", "noscript", "template", "head", "title", "iframe", "svg", "object"}
    parts = []
    walker = etree.iterwalk(tree, events=("start", "end"))
    for event, element in walker:
        if event == "start":
            if not isinstance(element.tag, str) or element.tag in invisible:
                walker.skip_subtree()
                continue
            parts.append(element.text or "")
        else:
            parts.append(element.tail or "")
    return " ".join(" ".join(parts).split())


def test_the_prepass_on_resiliparse_decides_as_on_lxml_and_bounds_trafilaturas_text_on_real_pages(realdata):
    """The prepass reads resiliparse's parse of a page (`parse_page`, `visible_text`), which is cheaper than
    lxml's. On every real page its decision is the one lxml's visible text gave (language and length); a
    page it drops as too short is one the CCNet rule drops after trafilatura; and on the pages near that
    rule its length bound (visible text plus an allowance per list item or cell) is at least the length of
    trafilatura's text. (Far from the rule it is not always: on one long page trafilatura's text has more
    line breaks than the visible text has spaces.)"""
    from trafilatura.utils import load_html

    from llamapipe.pipeline.stages.extract_subprocess import _MARKER_ALLOWANCE, parse_page, visible_text

    extractor = PageExtractor(**extractor_setup(ExtractConfig(), LangIdConfig(), FiltersConfig()))
    policy = extractor._policies["commoncrawl"]
    decided = too_short = 0
    for html, url in _real_pages(realdata):
        tree, page = load_html(html), parse_page(html)
        text = visible_text(page)
        markers = len(page.document.query_selector_all("li, td, th"))
        reference = extractor._decide_early(_lxml_visible_text(tree),
                                            len(tree.xpath("//li|//td|//th")), policy)
        decision = extractor._prepass(page, policy)
        assert decision == extractor._decide_early(text, markers, policy), url
        # The same drop (the language's score in the detail may differ in its second decimal).
        assert (decision and decision[:3]) == (reference and reference[:3]), url
        if reference is not None and reference.reason == "too_short":
            extracted = extractor._extract(tree, url=url or None, **extractor._options) or ""
            assert len(extracted.strip()) < policy.min_chars, url
            too_short += 1
        # Near the length rule the bound holds with room (the allowance is 4 characters an item).
        if len(text) + _MARKER_ALLOWANCE * markers < 2 * policy.min_chars:
            extracted = extractor._extract(load_html(html), url=url or None, **extractor._options) or ""
            assert len(extracted.strip()) <= len(text) + _MARKER_ALLOWANCE * markers, url
        decided += reference is not None
    assert decided > 100 and too_short >= 1  # most of these real pages are not English, one is too short
