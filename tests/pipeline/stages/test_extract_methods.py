"""extract.method: the cheap-first cascade keeps trafilatura's accuracy on real pages with gold text,
resiliparse alone runs behind the same subprocess protection and prepass, and a wrong method is one
error naming the key."""

from __future__ import annotations

import json
import textwrap

import pytest

from llamapipe.pipeline.config import ExtractConfig, FiltersConfig, LangIdConfig, load_config
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
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


def test_the_c_element_lookup_extracts_what_trafilatura_does_on_real_pages(realdata):
    """PageExtractor's parser makes elements through lxml's C lookup (`use_c_element_lookup`); the text
    must be trafilatura's own, made with lxml.html's stock lookup, on every real page."""
    import trafilatura
    from lxml.html import HtmlElementClassLookup
    from trafilatura.utils import HTML_PARSER

    pages = _real_pages(realdata)
    extractor = PageExtractor(False, False, False)
    ours = [extractor(html, url).text for html, url in pages]
    HTML_PARSER.set_element_class_lookup(HtmlElementClassLookup())
    try:
        stock = [trafilatura.extract(html, url=url or None, favor_precision=False, favor_recall=False,
                                     include_tables=False, include_comments=False, deduplicate=False)
                 for html, url in pages]
    finally:
        use_c_element_lookup()  # back as every PageExtractor leaves it, for the tests after this one
    assert sum(text is not None for text in ours) > 150
    assert ours == [text.strip() if text and text.strip() else None for text in stock]


def test_the_prepass_stops_reading_a_page_where_its_decision_is_made_on_real_pages(realdata):
    """The prepass reads a page's visible text only as far as language ID and the length rule need (and
    counts list items only on a short page): every decision is the one the whole page gives."""
    from trafilatura.utils import load_html

    from llamapipe.pipeline.stages.extract_subprocess import visible_text

    extractor = PageExtractor(**extractor_setup(ExtractConfig(), LangIdConfig(), FiltersConfig()))
    policy = extractor._policies["commoncrawl"]
    decided = 0
    for html, _ in _real_pages(realdata):
        tree = load_html(html)
        whole = visible_text(tree)
        prefix = visible_text(tree, 2000)
        assert prefix == whole if len(whole) <= 2000 else (len(prefix) >= 2000 and whole.startswith(prefix))
        markers = len(tree.xpath("//li|//td|//th"))
        expected = extractor._decide_early(whole, markers, policy)
        assert extractor._prepass(tree, policy) == expected
        decided += expected is not None
    assert decided > 100  # most of these real pages are not English (and one is too short)
