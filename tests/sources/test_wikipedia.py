"""Wikipedia reader: dump streaming, namespace/redirect/language handling, wikitext rendering."""

from __future__ import annotations

import bz2
import re
from pathlib import Path
from xml.sax.saxutils import escape

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.sources import wikipedia
from llamapipe.sources.base import open_input

EXPORT_NS = "http://www.mediawiki.org/xml/export-0.10/"

ARTICLE = """{{Infobox person|name=Ada|birth_date={{birth date|1815|12|10}}}}
'''Ada Lovelace''' was an English [[mathematician|math person]] and [[writer]]s.<ref>{{cite web
 |url=https://example.org/ada |title=Ada}}</ref> She wrote notes.<ref name="b">[https://example.org/notes The
 notes]</ref><ref name="b"/>

== Life ==
[[File:Ada.jpg|thumb|A [[portrait]] of Ada]] [[Image:Other.png]]
* Worked with [[Charles Babbage]] on the [http://example.com/engine Analytical Engine].
{| class="wikitable"
|-
| cell || [[Link in table]]
|}
<!-- an editor's comment --> __NOTOC__ E = mc<sup>2</sup> <math>x^2</math>

=== Empty section ===
{{reflist}}

== References ==
<references/>
[[de:Ada Lovelace]]
[[Category:Mathematicians]]
"""


def page_xml(title: str, page_id: int, text: str, ns: int = 0, redirect: str | None = None) -> str:
    redirect_element = f'<redirect title="{escape(redirect)}" />' if redirect else ""
    return (
        f"<page><title>{escape(title)}</title><ns>{ns}</ns><id>{page_id}</id>{redirect_element}"
        f"<revision><id>{page_id * 10}</id><timestamp>2023-03-01T12:00:00Z</timestamp>"
        f'<model>wikitext</model><format>text/x-wiki</format><text xml:space="preserve">{escape(text)}</text>'
        f"</revision></page>"
    )


def dump_xml(pages: list[str], dbname: str | None = "enwiki", export_ns: str = EXPORT_NS) -> str:
    siteinfo = ""
    if dbname is not None:
        siteinfo = (
            f"<siteinfo><sitename>Wikipedia</sitename><dbname>{dbname}</dbname>"
            f"<base>https://{dbname[:-4]}.wikipedia.org/wiki/Main_Page</base><namespaces>"
            '<namespace key="0" case="first-letter" /><namespace key="1" case="first-letter">Talk</namespace>'
            '<namespace key="6" case="first-letter">Fichier</namespace></namespaces></siteinfo>'
        )
    root = f'<mediawiki xmlns="{export_ns}" version="0.10" xml:lang="en">'
    return f'{root}{siteinfo}{"".join(pages)}</mediawiki>'


def write_bz2(path: Path, xml: str, streams: int = 1) -> str:
    """Write like the dump producers: `streams` > 1 gives a multi-stream bz2 file."""
    data = xml.encode("utf-8")
    cut = len(data) // streams
    chunks = [data[i * cut:(i + 1) * cut if i < streams - 1 else len(data)] for i in range(streams)]
    path.write_bytes(b"".join(bz2.compress(chunk) for chunk in chunks))
    return str(path)


def run_read(inputs: list[str], check_documents, check_drops, **options) -> None:
    with TestPipeline() as pipeline:
        outputs = pipeline | wikipedia.Read(wikipedia.Options(inputs=inputs, **options))
        assert_that(outputs["documents"], check_documents, label="CheckDocuments")
        assert_that(outputs["dropped"], check_drops, label="CheckDrops")


def test_dump_yields_articles_and_one_drop_per_skipped_page(tmp_path):
    pages = [
        page_xml("Ada Lovelace", 1, ARTICLE),
        page_xml("Talk:Ada Lovelace", 2, "Some discussion [[x]]", ns=1),
        page_xml("Lovelace", 3, "#REDIRECT [[Ada Lovelace]]", redirect="Ada Lovelace"),
        page_xml("Countess", 4, "#redirect [[Ada Lovelace]]"),  # no <redirect/> element
        page_xml("Stub", 5, "{{stub}}\n[[Category:Stubs]]"),
    ]
    path = write_bz2(tmp_path / "enwiki-20230301-pages-articles1.xml.bz2", dump_xml(pages), streams=3)

    def check_documents(documents):
        assert len(documents) == 1
        document = documents[0]
        assert document["id"] == "wikipedia:en/1"
        assert document["url"] == "https://en.wikipedia.org/wiki/Ada_Lovelace"
        assert document["meta"]["title"] == "Ada Lovelace"
        assert document["meta"]["wiki_lang"] == "en"
        assert document["meta"]["revision_timestamp"] == "2023-03-01T12:00:00Z"
        assert document["meta"]["ref_urls"] == ["https://example.org/ada", "https://example.org/notes"]
        assert document["text"].startswith("Ada Lovelace was an English math person and writers. She wrote")

    # the talk page (namespace 1) is neither a document nor a drop
    expected_drops = [("clean", "redirect", "wikipedia:en/3"), ("clean", "redirect", "wikipedia:en/4"),
                      ("clean", "empty", "wikipedia:en/5")]
    run_read([path], check_documents, _drops_equal(expected_drops))


def _drops_equal(expected):
    def check(drops):
        assert sorted((d["stage"], d["reason"], d["id"]) for d in drops) == sorted(expected)
        assert all(d["source"] == "wikipedia" for d in drops)

    return check


def test_dump_in_a_language_outside_the_recipe_drops_every_article(tmp_path):
    pages = [page_xml("東京", 1, "'''東京'''は日本の首都。"), page_xml("大阪", 2, "大阪。"),
             page_xml("ノート:東京", 3, "議論", ns=1)]
    path = write_bz2(tmp_path / "jawiki-latest-pages-articles.xml.bz2", dump_xml(pages, dbname="jawiki"))
    run_read(
        [path],
        equal_to([]),
        _drops_equal([("read", "language_not_in_recipe", "wikipedia:ja/1"),
                      ("read", "language_not_in_recipe", "wikipedia:ja/2")]),
    )


def test_language_from_file_name_when_siteinfo_missing_and_other_export_version(tmp_path):
    xml = dump_xml([page_xml("Berlin", 7, "'''Berlin''' ist die [[Hauptstadt]] Deutschlands.")],
                   dbname=None, export_ns="http://www.mediawiki.org/xml/export-0.11/")
    path = tmp_path / "dewiki-20240101-pages-articles.xml"
    path.write_text(xml, encoding="utf-8")
    run_read(
        [str(path)],
        lambda docs: _check_single(docs, "wikipedia:de/7", "Berlin ist die Hauptstadt Deutschlands.",
                                   "https://de.wikipedia.org/wiki/Berlin"),
        equal_to([]),
    )


def _check_single(documents, doc_id, text, url):
    assert [(d["id"], d["text"], d["url"], d["meta"]["wiki_lang"]) for d in documents] == [
        (doc_id, text, url, doc_id.split(":")[1].split("/")[0])]


def test_options_languages_restricts_the_recipe(tmp_path):
    path = write_bz2(tmp_path / "x.xml.bz2", dump_xml([page_xml("Paris", 1, "Paris.")], dbname="frwiki"))
    run_read([str(path)], equal_to([]), _drops_equal([("read", "language_not_in_recipe", "wikipedia:fr/1")]),
             languages=["en", "de"])


def test_render_removes_markup_and_keeps_link_text():
    text, urls = wikipedia.render_article(ARTICLE)
    assert text.split("\n") == [
        "Ada Lovelace was an English math person and writers. She wrote notes.",
        "",
        "Life",
        "Worked with Charles Babbage on the Analytical Engine.",
        "E = mc2",
    ]
    assert urls == ["https://example.org/ada", "https://example.org/notes"]


def test_render_localised_namespaces_and_language_links():
    wikitext = (
        "Le [[chat]] est un [[Mammifère|mammifère]].\n[[Fichier:Chat.jpg|vignette|Un chat]]"
        "[[Datei:Katze.jpg]][[Archivo:Gato.jpg]][[Файл:Кошка.jpg]]\n"
        "[[Catégorie:Félin]][[Kategorie:Katze]][[Категория:Кошки]][[en:Cat]][[ru:Кошка]]"
        "[[:Catégorie:Félin|les félins]] [[wikt:chat|chat]] [[Chat (animal)|]]"
    )
    text, _ = wikipedia.render_article(wikitext)
    assert text == "Le chat est un mammifère.\nles félins chat Chat"


def test_render_survives_markup_the_parser_cannot_parse():
    # An unbalanced '' inside a <ref> makes mwparserfromhell give up on the tag; it must still go.
    wikitext = ("The ''Iliad'''s hero.<ref>[[Some Book]]'' by X. 2007</ref> After.\n"
                '{| class="wikitable sortable" font-size:80%;"\n|-\n| a || [[b]]\n|}\n'
                "Broken {{template [[link]] here. ''x''")
    text, _ = wikipedia.render_article(wikitext)
    for markup in ("{{", "}}", "[[", "]]", "<ref", "{|", "|}", "''"):
        assert markup not in text
    assert text.startswith("The Iliad's hero. After.")


def test_redirect_detection():
    assert wikipedia.is_redirect("  #REDIRECT [[X]]")
    assert wikipedia.is_redirect("#Redirect[[X]]")
    assert not wikipedia.is_redirect("Redirect is a word. #REDIRECT")


def test_dump_language_order():
    site = wikipedia.SiteInfo(dbname="zh_yuewiki", base="https://zh-yue.wikipedia.org/wiki/", xml_lang="yue")
    assert wikipedia.dump_language(site, "dewiki-latest.xml") == "zh-yue"
    assert wikipedia.dump_language(wikipedia.SiteInfo(), "svwiki-20240101-pages-articles.xml.bz2") == "sv"
    assert wikipedia.dump_language(
        wikipedia.SiteInfo(base="https://uk.wikipedia.org/wiki/Main"), "dump.xml") == "uk"
    assert wikipedia.dump_language(wikipedia.SiteInfo(xml_lang="pl"), "dump.xml") == "pl"
    # not a Wikipedia: no language, so its pages are dropped rather than filed under xx.wikipedia.org
    assert wikipedia.dump_language(wikipedia.SiteInfo(dbname="enwiktionary", xml_lang="en"), "x.xml") == ""
    assert wikipedia.dump_language(
        wikipedia.SiteInfo(base="https://en.wikibooks.org/wiki/Main", xml_lang="en"), "dump.xml") == ""


# --- real dumps ----------------------------------------------------------------------------------


def count_main_namespace_pages(paths: list[Path]) -> int:
    count = 0
    for path in paths:
        with open_input(str(path)) as stream:
            count += sum(1 for item in wikipedia.iter_dump(stream)
                         if isinstance(item, wikipedia.Page) and item.ns == 0)
    return count


def test_real_dumps(realdata):
    paths = sorted((realdata / "wikipedia").glob("*.bz2"))
    assert paths
    main_pages = count_main_namespace_pages(paths)

    def check_documents(documents):
        markup = re.compile(r"\{\{|\}\}|\[\[|\]\]|<ref|\{\||\|\}")
        leaks = [d["id"] for d in documents if markup.search(d["text"])]
        assert not leaks, leaks
        by_title = {d["meta"]["title"]: d for d in documents}
        # [[Simon Critchley#Infinitely Demanding|Infinitely Demanding]] and plain links keep their text.
        anarchism = by_title["Anarchism"]
        assert "According to anarchist scholar Simon Critchley," in anarchism["text"]
        assert anarchism["id"] == "wikipedia:en/12"
        assert anarchism["url"] == "https://en.wikipedia.org/wiki/Anarchism"
        assert not anarchism["text"].startswith("{{")
        # {{Cite web|... |url = ...}} inside a <ref> of the table-markup dump
        constructive = by_title["Constructive vote of no confidence"]
        assert "http://www.gesetze-im-internet.de/englisch_gg/englisch_gg.html#p0315" in (
            constructive["meta"]["ref_urls"])
        assert sum(1 for d in documents if d["meta"]["ref_urls"]) > len(documents) * 0.8
        assert all(d["meta"]["wiki_lang"] == "en" and d["id"].startswith("wikipedia:en/") for d in documents)

    with TestPipeline() as pipeline:
        outputs = pipeline | wikipedia.Read(wikipedia.Options(inputs=[str(p) for p in paths]))
        assert_that(outputs["documents"], check_documents, label="CheckDocuments")
        assert_that(outputs["dropped"] | "Reasons" >> beam.Map(lambda d: d["reason"]),
                    lambda reasons: _check_reasons(reasons, main_pages), label="CheckDrops")
        everything = (outputs["documents"], outputs["dropped"]) | "All" >> beam.Flatten()
        counted = everything | "Count" >> beam.combiners.Count.Globally()
        assert_that(counted, equal_to([main_pages]), label="EveryMainPageAccountedFor")


def _check_reasons(reasons, main_pages):
    assert set(reasons) == {"redirect"}
    assert 90 <= len(reasons) < main_pages
