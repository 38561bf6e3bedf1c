"""Each quality rule on real text of ../shared/realdata, with the decision (and reason) a reader of that
text expects. The texts are made at run time by the project's readers (tests/pipeline/stages/real_texts.py);
what each one is, is said beside it (their text is not copied here)."""

from __future__ import annotations

import tarfile

from llamapipe.pipeline.stages.quality import (
    C4_CITATION_RE,
    C4_END_MARKS,
    C4Document,
    C4Lines,
    CCNetMinLength,
    GopherQuality,
    GopherRepetition,
    RedPajamaCode,
)
from llamapipe.sources import commoncrawl
from tests.pipeline.stages.real_texts import real_texts

# A real C4 page of three short lines (a sailing race result, 268 characters).
C4_SHORT_PAGE = "c4:olmo_c4-sample.01.json.gz:8"
# Wikipedia's "Anarchism" (the first article of the English sample dump): long, well-formed English prose.
ANARCHISM = "wikipedia:en/12"
# The Common Crawl WET record: an Aragonese Wikipedia page (a village) as plain text, 182 lines of which
# 170 or so are the menu, the language list and the table of contents, around six sentences of article.
ARAGONESE_WET = "commoncrawl:ba729a40-ff84-4085-8d48-0a5b2ee0c42d"
# A Stack Exchange question with no answer: its title and one line that ends in a bracket.
SHORT_QUESTION = "stackexchange:coffee.stackexchange.com/167"
# Gutenberg #3261, News from Nowhere (Morris): an English novel whose footnote markers are "{1}", "{2}".
NEWS_FROM_NOWHERE = "books:pg3261_news-from-nowhere"
DEVILS_DICTIONARY = "books:pg972_the-devils-dictionary"
# A German web page (trafilatura's evaluation set) whose extracted text is a PHP warning repeated on
# most of its lines, above a short paragraph.
PHP_WARNINGS = "trafilatura:seelenradio.de.leo.html"
# A German news article (trafilatura's evaluation set).
GERMAN_ARTICLE = "trafilatura:automobilwoche.de-VW-Betriebsversammlung.html"


def texts_by_id(realdata) -> dict[str, str]:
    return {t.id: t.text for t in real_texts(realdata)}


def test_ccnet_min_length_on_real_pages(realdata):
    texts = texts_by_id(realdata)
    assert len(texts[C4_SHORT_PAGE]) < 300
    assert CCNetMinLength()(texts[C4_SHORT_PAGE]) == (False, "too_short")
    for doc_id in (ANARCHISM, ARAGONESE_WET, NEWS_FROM_NOWHERE):
        assert CCNetMinLength()(texts[doc_id]) == (True, "")


def test_c4_lines_keep_the_article_and_drop_the_menus_of_a_real_page(realdata):
    page = texts_by_id(realdata)[ARAGONESE_WET]
    lines = page.splitlines()
    kept = C4Lines().clean(page).splitlines()
    # The menus, the 32-language list and the table of contents go; the article's sentences and the
    # page's sentence-like footer (licence, last edit, two references) stay, without citation markers.
    assert len(lines) == 182 and len(kept) == 10
    without_markers = {C4_CITATION_RE.sub("", line.strip()) for line in lines}
    assert sum(line.strip() not in without_markers for line in lines) >= 1  # a marker was removed
    assert all(line in without_markers and line.endswith(C4_END_MARKS) and len(line.split()) >= 5
               for line in kept)
    assert C4Document()("\n".join(kept)) == (True, "")


def test_c4_document_on_real_texts(realdata):
    texts = texts_by_id(realdata)
    # A question title and one line that ends in ")": one sentence is left, C4 wants 3.
    assert C4Document()(C4Lines().clean(texts[SHORT_QUESTION])) == (False, "c4_too_few_sentences")
    # C4 drops any page with a "{" (meant for code): a novel's footnote markers are enough.
    assert C4Document()(C4Lines().clean(texts[NEWS_FROM_NOWHERE])) == (False, "c4_curly_bracket")
    assert C4Document()(C4Lines().clean(texts[ANARCHISM])) == (True, "")


def test_gopher_quality_on_real_texts(realdata):
    texts = texts_by_id(realdata)
    for doc_id in (ANARCHISM, NEWS_FROM_NOWHERE, DEVILS_DICTIONARY):
        assert GopherQuality()(texts[doc_id]) == (True, ""), doc_id
    # Pages in other languages have none of the English stop words.
    assert GopherQuality()(texts[ARAGONESE_WET]) == (False, "gopher_stop_words")
    assert GopherQuality()(texts[GERMAN_ARTICLE]) == (False, "gopher_stop_words")
    # Three lines of a race report: under 50 words.
    assert GopherQuality()(texts[C4_SHORT_PAGE]) == (False, "gopher_short_doc")


def test_gopher_repetition_on_real_texts(realdata):
    texts = texts_by_id(realdata)
    assert GopherRepetition()(texts[PHP_WARNINGS]) == (False, "gopher_dup_lines")
    for doc_id in (ANARCHISM, NEWS_FROM_NOWHERE, DEVILS_DICTIONARY, GERMAN_ARTICLE):
        assert GopherRepetition()(texts[doc_id]) == (True, ""), doc_id


def test_redpajama_code_on_real_files(realdata):
    # Hand-written LaTeX class files of two real arXiv submissions: code that passes.
    for archive, member in (("arxiv-filemanager_1801.03879-1.tar.gz", "lipics-v2016.cls"),
                            ("arxiv-filemanager_upload2.tar.gz", "gtart_a.cls")):
        with tarfile.open(realdata / "arxiv" / archive) as tar:
            name = next(n for n in tar.getnames() if n.rsplit("/", 1)[-1] == member)
            code = tar.extractfile(name).read().decode("utf-8")
        assert RedPajamaCode()(code) == (True, ""), member
    # A real page's HTML that is one line of 14,000 characters (generated, minified): not hand-written code.
    reader = commoncrawl.ReadWarcFileDoFn(commoncrawl.Options())
    warc = realdata / "commoncrawl" / "dolma_sample-0000.warc.gz"
    pages = {doc["url"]: doc["html"] for doc in reader.process(str(warc))
             if isinstance(doc, dict) and "html" in doc}
    html = pages["https://kyleclo.com/"]
    assert len(html.splitlines()) == 1
    assert RedPajamaCode()(html) == (False, "code_line_too_long")
