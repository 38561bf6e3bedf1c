"""Wikipedia reader: dump streaming, namespace/redirect/language handling, wikitext rendering."""

from __future__ import annotations

import bz2
import codecs
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from xml.sax.saxutils import escape

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.sources import wikipedia
from llamapipe.sources.reading import open_input

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
                '{| class="wikitable collapsible" width:60%;"\n|-\n| a || [[b]]\n|}\n'
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


# What the real dumps must render to is derived from their raw wikitext at test time (their text is
# never copied into the repository): top-level paragraph lines whose only markup is plain links, and
# the url= of the cite templates inside <ref>s.
RAW_LINK = re.compile(r"\[\[([^\[\]|:]+)(?:\|([^\[\]|]+))?\]\]")
RAW_CITE_URL = re.compile(r"\{\{\s*cite[^{}]*?\|\s*url\s*=\s*(https?://[^\s|{}<>\[\]]+)\s*[|}]",
                          re.IGNORECASE)


def raw_articles(path: Path) -> list[tuple[str, str, str]]:
    """(page id, title, wikitext) of the main-namespace, non-redirect pages of a raw dump."""
    articles = []
    with bz2.open(path) as stream:
        for _, element in ElementTree.iterparse(stream):
            if element.tag.rsplit("}", 1)[-1] != "page":
                continue
            fields = {child.tag.rsplit("}", 1)[-1]: child for child in element}  # page id, not revision id
            text = next(child.text or "" for child in element.iter() if child.tag.endswith("}text"))
            if fields["ns"].text == "0" and "redirect" not in fields:
                articles.append((fields["id"].text, fields["title"].text, text))
            element.clear()
    return articles


def plain_paragraph_lines(wikitext: str) -> list[tuple[str, str]]:
    """(raw line, expected text) of top-level paragraph lines (outside templates and tables, references
    and comments removed) whose only markup is [[links]]: rendered, they keep the link text."""
    wikitext = re.sub(r"<!--.*?-->", "", wikitext, flags=re.DOTALL)
    wikitext = re.sub(r"<ref[^>]*/>|<ref[^>/]*>.*?</ref>", "", wikitext, flags=re.DOTALL | re.IGNORECASE)
    lines, depth = [], 0
    for line in wikitext.split("\n"):
        top_level = depth == 0
        depth += line.count("{{") + line.count("{|") - line.count("}}") - line.count("|}")
        if not top_level or depth != 0 or not line[:1].isalpha():
            continue
        expected = RAW_LINK.sub(lambda link: link.group(2) or link.group(1), line)
        if len(expected.split()) >= 8 and not re.search(r"[\[\]{}<>|=&'_~]", expected):
            lines.append((line, " ".join(expected.split())))
    return lines


def cited_urls(wikitext: str) -> list[str]:
    """url= values of the cite templates inside the <ref>s of raw wikitext."""
    wikitext = re.sub(r"<!--.*?-->", "", wikitext, flags=re.DOTALL)
    refs = re.findall(r"<ref[^>/]*>(.*?)</ref>", wikitext, flags=re.DOTALL | re.IGNORECASE)
    return [url for ref in refs for url in RAW_CITE_URL.findall(ref)]


def test_real_dumps(realdata):
    paths = sorted((realdata / "wikipedia").glob("*.bz2"))
    assert paths
    main_pages = count_main_namespace_pages(paths)
    raw = {path.name: raw_articles(path) for path in paths}
    # keyed by file too: both samples hold a revision of one page (same page id)
    expected = {(name, page_id): (title, [line for _, line in plain_paragraph_lines(wikitext)],
                                  cited_urls(wikitext))
                for name, articles in raw.items() for page_id, title, wikitext in articles}
    articles_dump = next(name for name in raw if "table" not in name)
    first_id, first_title, first_wikitext = raw[articles_dump][0]  # its first article
    assert first_wikitext.lstrip().startswith("{{")  # it opens with a template: the text must not
    # piped links to a section ([[Page#Section|text]]) are among the lines checked
    assert any(re.search(r"\[\[[^\]|]*#[^\]|]*\|", line) for line, _ in plain_paragraph_lines(first_wikitext))
    table_dump = next(name for name in raw if "table" in name)
    assert sum(len(cited_urls(wikitext)) for _, _, wikitext in raw[table_dump]) >= 20

    def check_documents(documents):
        markup = re.compile(r"\{\{|\}\}|\[\[|\]\]|<ref|\{\||\|\}")
        leaks = [d["id"] for d in documents if markup.search(d["text"])]
        assert not leaks, leaks
        by_page_of_file = {(Path(d["meta"]["source_file"]).name, d["id"].rsplit("/", 1)[1]): d
                           for d in documents}
        assert len(documents) == len(by_page_of_file) and sorted(by_page_of_file) == sorted(expected)
        checked_lines = checked_urls = 0
        for key, document in by_page_of_file.items():
            title, lines, urls = expected[key]
            assert document["meta"]["title"] == title
            text = " ".join(document["text"].split())
            for line in lines:
                assert line in text, (document["id"], line)  # link text kept, no markup left
                checked_lines += 1
            for url in urls:  # {{cite ...|url = ...}} inside a <ref>
                assert url in document["meta"]["ref_urls"], (document["id"], url)
                checked_urls += 1
        assert checked_lines > 1000 and checked_urls > 1000
        first = by_page_of_file[(articles_dump, first_id)]
        assert first["url"] == "https://en.wikipedia.org/wiki/" + first_title.replace(" ", "_")
        assert not first["text"].startswith("{{")
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


# --- dumps in another encoding than UTF-8 ------------------------------------------------------------

# (variant, codec of the XML, bytes written before it, XML declaration put at its start or ""): how a dump
# may come when it was re-saved by other tools. The declaration is put on the root's line, so that the
# line numbers stay those of the original.
REENCODINGS = [
    ("utf-16le-bom", "utf-16-le", codecs.BOM_UTF16_LE, ""),
    ("utf-16be-declared", "utf-16-be", b"", '<?xml version="1.0" encoding="UTF-16"?>'),
    ("utf-32le-bom", "utf-32-le", codecs.BOM_UTF32_LE, ""),
    ("iso-8859-1-declared", "iso-8859-1", b"", '<?xml version="1.0" encoding="ISO-8859-1"?>'),
]


def read_directly(path: Path, split_bytes: int = 1 << 30) -> tuple[list, list[tuple[str, str, str]]]:
    """Documents (`comparable`: without file name and offset) and drops (stage, reason, id) of one dump,
    planned and read by the reader's DoFn without a pipeline."""
    reader = wikipedia.ReadDumpFile(wikipedia.Options())
    documents, drops = [], []
    for split in reader.plan(str(path), path.stat().st_size, split_bytes):
        for item in reader.process(split):
            if isinstance(item, dict):
                documents.append(comparable(item))
            else:
                drops.append((item.value["stage"], item.value["reason"], item.value["id"]))
    return sorted(documents), sorted(drops)


@pytest.mark.parametrize(("variant", "codec", "mark", "declaration"), REENCODINGS,
                         ids=[variant for variant, *_ in REENCODINGS])
def test_real_dumps_in_another_encoding_give_the_pages_of_the_utf8_original(realdata, tmp_path, variant,
                                                                            codec, mark, declaration):
    """The English samples of ../shared/realdata (UTF-8, as Wikimedia writes them) re-encoded: with a
    byte-order mark, or named by the XML declaration; characters ISO-8859-1 lacks written as character
    references (`&#8212;`), as an XML writer in that encoding does. Same pages, same texts, same drops."""
    originals = sorted((realdata / "wikipedia").glob("*.bz2"))
    beyond_16_bits = 0  # characters written as a surrogate pair in UTF-16
    for original in originals:
        xml = bz2.decompress(original.read_bytes()).decode("utf-8")
        assert not xml.startswith("<?xml")
        beyond_16_bits += sum(1 for character in xml if ord(character) > 0xFFFF)
        reencoded = tmp_path / variant / original.name
        reencoded.parent.mkdir(exist_ok=True)
        reencoded.write_bytes(bz2.compress(mark + (declaration + xml).encode(codec, "xmlcharrefreplace")))
        expected_documents, expected_drops = read_directly(original)
        documents, drops = read_directly(reencoded)
        assert len(documents) == len(expected_documents) >= 5
        assert documents == expected_documents
        assert drops == expected_drops
    assert len(originals) == 2 and beyond_16_bits > 0


def test_a_utf16_multistream_dump_is_split_by_its_index_with_the_documents_of_a_whole_read(tmp_path):
    """Each bz2 stream of pages is parsed on its own: it is told the encoding the dump's head names."""
    split_dir, whole_dir = tmp_path / "split", tmp_path / "whole"
    split_dir.mkdir()
    whole_dir.mkdir()
    pages = multistream_pages(24)
    pages[4] = (pages[4][0], pages[4][1], pages[4][2].replace("is a", "is a \U0001d11e clef in a"))
    dump, _ = write_multistream_dump(split_dir, pages, encoding="utf-16-le", head_prefix=codecs.BOM_UTF16_LE)
    (whole_dir / dump.name).write_bytes(dump.read_bytes())  # no index next to it: read whole
    reader = wikipedia.ReadDumpFile(wikipedia.Options())
    splits = reader.plan(str(dump), dump.stat().st_size, split_bytes=500)
    assert len(splits) >= 3 and splits[1].context[2] == "utf-16-le"
    split_docs, split_drops = read_directly(dump, split_bytes=500)
    whole_docs, whole_drops = read_directly(whole_dir / dump.name, split_bytes=500)
    assert len(whole_docs) == 24 - 3 - 2 and split_docs == whole_docs and split_drops == whole_drops
    assert any("\U0001d11e clef" in text for _, text, _, _ in split_docs)


# --- multistream dumps, split by their index --------------------------------------------------------


def multistream_pages(count: int) -> list[tuple[int, str, str]]:
    """(page id, title, page XML): articles, with redirects and talk pages among them."""
    pages = []
    for n in range(1, count + 1):
        title = f"Topic {n}: part {n % 3}"  # a colon in the title, as real index lines have
        if n % 10 == 3:
            xml = page_xml(title, n, f"#REDIRECT [[Topic {n - 1}: part {(n - 1) % 3}]]", redirect="x")
        elif n % 10 == 7:
            xml = page_xml(f"Talk:Topic {n}", n, "A discussion.", ns=1)
            title = f"Talk:Topic {n}"
        else:
            wikitext = (f"'''Topic {n}''' is a [[thing|subject]] number {n}.<ref>"
                        f"{{{{cite web|url=https://example.org/{n}}}}}</ref>\n\n== More ==\nText {n}.")
            xml = page_xml(title, n, wikitext)
        pages.append((n, title, xml))
    return pages


def write_multistream_dump(folder: Path, pages, pages_per_stream: int = 4,
                           encoding: str = "utf-8", head_prefix: bytes = b"") -> tuple[Path, Path]:
    """A dump as Wikimedia publishes it: a head stream (<mediawiki> + <siteinfo>), streams of whole
    pages each compressed on its own, a tail stream, and the index `offset:page_id:title`. The XML is
    written in `encoding`, `head_prefix` (a byte-order mark) before it."""
    head, tail = dump_xml([]).split("</siteinfo>")
    streams = [bz2.compress(head_prefix + (head + "</siteinfo>\n").encode(encoding))]
    index_lines = []
    offset = len(streams[0])
    for first in range(0, len(pages), pages_per_stream):
        chunk = pages[first:first + pages_per_stream]
        streams.append(bz2.compress("".join(xml for _, _, xml in chunk).encode(encoding)))
        index_lines += [f"{offset}:{page_id}:{title}" for page_id, title, _ in chunk]
        offset += len(streams[-1])
    streams.append(bz2.compress(tail.encode(encoding)))  # "</mediawiki>"
    dump = folder / "enwiki-20240601-pages-articles-multistream.xml.bz2"
    dump.write_bytes(b"".join(streams))
    index = folder / "enwiki-20240601-pages-articles-multistream-index.txt.bz2"
    index.write_bytes(bz2.compress(("\n".join(index_lines) + "\n").encode()))
    return dump, index


def index_lines(index: Path) -> list[str]:
    return [line for line in bz2.decompress(index.read_bytes()).decode().split("\n") if line]


def comparable(document):
    meta = {k: v for k, v in document["meta"].items() if k not in ("offset", "source_file")}
    return document["id"], document["text"], document["url"], sorted((k, str(v)) for k, v in meta.items())


def read_all(inputs, **options):
    """Documents and (stage, reason, id) drops of a pipeline read (written out as json lines)."""
    out_dir = Path(inputs[0]).parent / f"out-{abs(hash(tuple(inputs)))}"
    with TestPipeline() as pipeline:
        out = pipeline | wikipedia.Read(wikipedia.Options(inputs=inputs, **options))
        for name in ("documents", "dropped"):
            (out[name] | f"Json_{name}" >> beam.Map(json.dumps)
             | f"Write_{name}" >> beam.io.WriteToText(str(out_dir / name)))
    documents, drops = ([json.loads(line) for path in sorted(out_dir.glob(f"{name}*"))
                         for line in path.read_text().splitlines()] for name in ("documents", "dropped"))
    return documents, sorted((d["stage"], d["reason"], d["id"]) for d in drops)


def test_multistream_dump_is_split_by_its_index_with_the_documents_of_a_whole_read(tmp_path):
    split_dir, whole_dir = tmp_path / "split", tmp_path / "whole"
    split_dir.mkdir()
    whole_dir.mkdir()
    pages = multistream_pages(60)
    dump, index = write_multistream_dump(split_dir, pages)
    (whole_dir / dump.name).write_bytes(dump.read_bytes())  # no index next to it: read whole

    reader = wikipedia.ReadDumpFile(wikipedia.Options())
    splits = reader.plan(str(dump), dump.stat().st_size, split_bytes=1500)
    assert len(splits) >= 4
    assert splits[0].start == 0 and splits[-1].stop is None
    assert [s.stop for s in splits[:-1]] == [s.start for s in splits[1:]]
    site, _, _ = splits[1].context
    assert site.dbname == "enwiki" and site.namespaces[6] == "Fichier"
    assert reader.plan(str(index), index.stat().st_size, 1500) == []  # the index is not a dump

    # the glob matches the index too: it is skipped, not an unreadable dump
    split_docs, split_drops = read_all([str(split_dir / "*.bz2")], split_bytes=1500)
    whole_docs, whole_drops = read_all([str(whole_dir / "*.bz2")], split_bytes=1500)
    assert len(whole_docs) == 60 - 6 - 6 and len(whole_drops) == 6
    assert sorted(map(comparable, split_docs)) == sorted(map(comparable, whole_docs))
    assert split_drops == whole_drops == sorted(("clean", "redirect", f"wikipedia:en/{n}")
                                                for n in range(1, 61) if n % 10 == 3)

    # provenance: the offset is the bz2 stream that holds the page
    data = dump.read_bytes()
    for document in split_docs:
        meta = document["meta"]
        assert meta["source_file"] == str(dump)
        stream = bz2.BZ2Decompressor().decompress(data[meta["offset"]:])
        assert f"<id>{meta['page_id']}</id>".encode() in stream
    assert all("offset" not in d["meta"] and d["meta"]["page_id"] for d in whole_docs)


def test_a_corrupt_stream_costs_only_its_pages_and_a_wrong_index_means_a_whole_read(tmp_path):
    pages = multistream_pages(24)
    dump, index = write_multistream_dump(tmp_path, pages)
    offsets = sorted({int(line.split(":")[0]) for line in index_lines(index)})
    data = bytearray(dump.read_bytes())
    data[offsets[2] + 20] ^= 0xFF  # inside the third page stream (pages 9-12)
    dump.write_bytes(bytes(data))
    documents, drops = read_all([str(dump)], split_bytes=600)
    assert ("read", "unreadable_stream", f"wikipedia:{dump.name}@{offsets[2]}") in drops
    assert sorted(int(d["id"].split("/")[1]) for d in documents) == [
        n for n in range(1, 25) if n % 10 not in (3, 7) and not 9 <= n <= 12]

    # an index that does not belong to the dump: planning notices, and the dump is read whole
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    dump, index = write_multistream_dump(fresh, pages)
    shifted = [f"{int(o) + 1}:{rest}" for o, rest in (line.split(":", 1) for line in index_lines(index))]
    index.write_bytes(bz2.compress("\n".join(shifted).encode()))
    with pytest.raises(ValueError, match="does not fit"):
        wikipedia.ReadDumpFile(wikipedia.Options()).plan(str(dump), dump.stat().st_size, 600)
    documents, drops = read_all([str(dump)], split_bytes=600)
    assert len(documents) == 24 - 3 - 2 and all("offset" not in d["meta"] for d in documents)


def test_a_malformed_page_in_a_multistream_dump_costs_only_itself_split_or_whole(tmp_path):
    pages = multistream_pages(24)
    n, title, xml = pages[9]  # page 10, the 2nd of the 3rd page stream (pages 9-12)
    pages[9] = (n, title, xml.replace("<title>", "<title>&bogus;", 1))
    split_dir, whole_dir = tmp_path / "split", tmp_path / "whole"
    split_dir.mkdir()
    whole_dir.mkdir()
    dump, index = write_multistream_dump(split_dir, pages)
    (whole_dir / dump.name).write_bytes(dump.read_bytes())  # no index: read whole
    offsets = sorted({int(line.split(":")[0]) for line in index_lines(index)})

    split_docs, split_drops = read_all([str(dump)], split_bytes=600)
    whole_docs, whole_drops = read_all([str(whole_dir / dump.name)], split_bytes=600)
    kept = [n for n in range(1, 25) if n % 10 not in (3, 7) and n != 10]  # pages 11, 12 too
    for documents in (split_docs, whole_docs):
        assert sorted(int(d["id"].split("/")[1]) for d in documents) == kept
    redirects = [("clean", "redirect", f"wikipedia:en/{n}") for n in range(1, 25) if n % 10 == 3]
    # one drop, named by the page's line: in its bz2 stream (split read), or in the whole dump
    stream = "".join(xml for _, _, xml in pages[8:12])
    whole = bz2.decompress(dump.read_bytes()).decode()
    in_stream, in_dump = (text[:text.index("<title>&bogus;")].count("\n") + 1 for text in (stream, whole))
    assert split_drops == sorted(
        redirects + [("read", "malformed_xml", f"wikipedia:{dump.name}@{offsets[2]}:{in_stream}")])
    assert whole_drops == sorted(redirects + [("read", "malformed_xml", f"wikipedia:{dump.name}:{in_dump}")])
