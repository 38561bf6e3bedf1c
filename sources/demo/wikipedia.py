"""A MediaWiki `pages-articles` XML.bz2 export (schema 0.10)."""

from __future__ import annotations

import bz2
import hashlib
import html
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llamapipe.sources.demo.common import Plants, Ref, draw_ip, draw_seed, scaled_count, warc_date
from llamapipe.sources.demo.text import (
    EnglishWriter,
    fix_articles,
    lexicon,
    title_case,
)
from llamapipe.sources.demo.web import Page, slugify

# --- Wikipedia -------------------------------------------------------------------------------------------

_NAMESPACES = ((-2, "Media"), (-1, "Special"), (0, ""), (1, "Talk"), (2, "User"), (3, "User talk"),
               (4, "Wikipedia"), (5, "Wikipedia talk"), (6, "File"), (7, "File talk"), (8, "MediaWiki"),
               (9, "MediaWiki talk"), (10, "Template"), (11, "Template talk"), (12, "Help"),
               (13, "Help talk"), (14, "Category"), (15, "Category talk"), (100, "Portal"),
               (101, "Portal talk"), (828, "Module"), (829, "Module talk"))
_SECTIONS = ("History", "Description", "Background", "Geography", "Reception", "Legacy", "Economy",
             "Notable features", "Later years", "Activities")
_SITEINFO = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.10/ http://www.mediawiki.org/xml/export-0.10.xsd" \
version="0.10" xml:lang="en">
  <siteinfo>
    <sitename>Wikipedia</sitename>
    <dbname>enwiki</dbname>
    <base>https://en.wikipedia.org/wiki/Main_Page</base>
    <generator>MediaWiki 1.43.0-wmf.8</generator>
    <case>first-letter</case>
    <namespaces>
{namespaces}
    </namespaces>
  </siteinfo>
"""


def _base36_sha1(text: str) -> str:
    """The revision checksum of the dumps: SHA-1 in base 36."""
    number = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out.rjust(31, "0")


@dataclass(eq=False)
class WikiPage:
    ref: Ref
    page_id: int
    title: str
    ns: int
    seed: int
    topic: str = ""
    cited: list[Page] = field(default_factory=list)
    redirect: str = ""


class WikipediaWriter:
    """~150 articles citing the `cited` CommonCrawl pages, plus redirects and other namespaces."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants, cited_pages: list[Page]):
        self.rng = rng
        lex = lexicon()
        self._link_targets = (set(lex.words["places"]) | set(lex.words["countries"]),
                              {n.pl: n.sg for n in lex.all_nouns}, {n.sg for n in lex.all_nouns})
        articles, redirects, others = (scaled_count(name, scale)
                                       for name in ("wiki_articles", "wiki_redirects", "wiki_other_ns"))
        self._ids = rng.sample(range(1000, 1000 + 40 * (articles + 60)), articles + redirects + others)
        self._titles: set[str] = set()
        self.articles = []
        for _ in range(articles):
            topic = rng.choice(lex.topics)
            title = self._unique(EnglishWriter(rng, topic=topic, register="formal").title(formal=True))
            self.articles.append(self._page(title, 0, topic))
        # Every cited CommonCrawl page is cited by one article, on its topic where there is one.
        by_topic = defaultdict(list)
        for article in self.articles:
            by_topic[article.topic].append(article)
        for page in cited_pages:
            rng.choice(by_topic.get(page.topic) or self.articles).cited.append(page)
        for article in self.articles:
            for page in article.cited:
                plants.add("cited_urls", page.ref, cited_by=article.ref.id)
        self.pages = list(self.articles)
        for _ in range(redirects):
            target = rng.choice(self.articles)
            base = target.title.split(" (")[0]  # alternative names: case, article, hyphens, plural
            title = self._unique(rng.choice((base.lower().capitalize(), "The " + base, base.replace(" ", "-"),
                                             base + "s")))
            page = self._page(title, 0, redirect=target.title)
            plants.add("wikipedia_redirects", page.ref, title=title, target=target.title)
        for index in range(others):
            base = rng.choice(self.articles)
            ns = (1, 10, 14)[index % 3]
            noun = title_case(rng.choice(lex.nouns[base.topic]).pl)
            title = self._unique({1: f"Talk:{base.title}", 10: f"Template:Infobox {base.topic} {index}",
                                  14: f"Category:{noun} in {rng.choice(lex.words['countries'])}"}[ns])
            page = self._page(title, ns, base.topic)
            plants.add("wikipedia_other_namespaces", page.ref, title=title, ns=ns)
        self.pages.sort(key=lambda p: p.page_id)

    def _unique(self, title: str) -> str:
        while title in self._titles:
            title += f" ({self.rng.choice(lexicon().words['places'])})"
        self._titles.add(title)
        return title

    def _page(self, title: str, ns: int, topic: str = "", redirect: str = "") -> WikiPage:
        page_id = self._ids.pop()
        page = WikiPage(Ref("wikipedia", f"wikipedia:en/{page_id}"), page_id, title, ns, draw_seed(self.rng),
                        topic, redirect=redirect)
        if ns != 0 or redirect:
            self.pages.append(page)
        return page

    def _wikify(self, rng: random.Random, sentence: str) -> str:
        """Link places and some nouns: [[Lisbon]], [[bridge]], [[bridge|bridges]]."""
        places, plurals, singulars = self._link_targets
        out = []
        for token in sentence.split(" "):
            word = token.rstrip(".,;:?!")
            tail = token[len(word):]
            if word in places and rng.random() < 0.6:
                token = f"[[{word}]]{tail}"
            elif word in plurals and rng.random() < 0.07:
                token = f"[[{plurals[word]}|{word}]]{tail}"
            elif word in singulars and rng.random() < 0.07:
                token = f"[[{word}]]{tail}"
            out.append(token)
        return " ".join(out)

    @staticmethod
    def _cite(rng: random.Random, page: Page, names: dict[str, str]) -> str:
        if page.ref.url in names:
            return f'<ref name="{names[page.ref.url]}" />'
        if rng.random() < 0.6:
            access = f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            inner = (f"{{{{cite web |url={page.ref.url} |title={page.title} |website={page.site.domain} "
                     f"|access-date={access}}}}}")
        else:
            inner = f"[{page.ref.url} {page.title}]"
        if rng.random() < 0.3:
            names[page.ref.url] = f"ref{len(names) + 1}"
            return f'<ref name="{names[page.ref.url]}">{inner}</ref>'
        return f"<ref>{inner}</ref>"

    @staticmethod
    def _cite_book(rng: random.Random, writer: EnglishWriter) -> str:
        first, last = writer.person().split(" ", 1)
        publisher = f"{rng.choice(lexicon().words['places'])} University Press"
        return (f"{{{{cite book |last={last} |first={first} |title={writer.title()} |publisher={publisher} "
                f"|year={rng.randint(1950, 2022)} |page={rng.randint(3, 400)}}}}}")

    def article_text(self, page: WikiPage) -> str:
        rng = random.Random(page.seed)
        writer = EnglishWriter(rng, topic=page.topic, register="formal")
        words = lexicon().words
        names: dict[str, str] = {}
        cites = list(page.cited) + page.cited[:1]  # the first source is cited twice
        place, country = rng.choice(words["places"]), rng.choice(words["countries"])

        def paragraph(sentences: int) -> str:
            out = []
            for _ in range(sentences):
                sentence = self._wikify(rng, writer.sentence())
                if cites and rng.random() < 0.3:
                    sentence += self._cite(rng, cites.pop(0), names)
                elif rng.random() < 0.08:
                    sentence += f"<ref>{self._cite_book(rng, writer)}</ref>"
                out.append(sentence)
            return " ".join(out)

        lead_noun = writer.render("{A} {N}").lower()
        parts = [
            f"{{{{Short description|{writer.render('{A} {N} in {COUNTRY}')}}}}}",
            f"{{{{Use dmy dates|date={rng.choice(words['months'])} {rng.randint(2015, 2023)}}}}}",
            f"{{{{Infobox {page.topic}\n| name        = {page.title}\n"
            f"| image       = {slugify(page.title)}.jpg\n"
            f"| caption     = {writer.sentence()[:-1]}\n| location    = [[{place}]], [[{country}]]\n"
            f"| established = {rng.randint(1500, 2010)}\n| type        = {lead_noun}\n}}}}",
            fix_articles(f"'''{page.title}''' is a {lead_noun} in [[{place}]], [[{country}]]. ")
            + paragraph(rng.randint(2, 4)),
        ]
        for index, heading in enumerate(rng.sample(_SECTIONS, rng.randint(2, 4))):
            parts.append(f"== {heading} ==")
            if index == 0 and rng.random() < 0.6:
                parts.append(f"[[File:{slugify(page.title)}-{index}.jpg|thumb|{writer.sentence()[:-1]}]]")
            parts += [paragraph(rng.randint(3, 6)) for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.3:
                parts += [f"=== {title_case(writer.render('{A} {Ns}'))} ===", paragraph(rng.randint(2, 5))]
            if rng.random() < 0.25:
                parts.append("<!-- Please discuss major changes to this section on the talk page first. -->")
        while cites:  # sources not placed yet close a final paragraph
            text = paragraph(3)
            parts.append(text + self._cite(rng, cites.pop(0), names) if cites else text)
        if rng.random() < 0.4:
            years = sorted(rng.sample(range(1900, 2023), rng.randint(3, 6)))
            rows = "\n".join(f"|-\n| {year} || {rng.randint(100, 99999):,} || {writer.render('{A} {N}')}"
                             for year in years)
            parts.append(f'{{| class="wikitable sortable"\n|+ {writer.render("{A} {Ns} by year")}\n'
                         f"! Year !! {writer.render('{N}')} count !! Notes\n{rows}\n|}}")
        see_also = rng.sample(self.articles, min(3, len(self.articles)))
        parts += ["== See also ==\n" + "\n".join(f"* [[{other.title}]]" for other in see_also),
                  "== References ==\n{{Reflist}}", "== Further reading ==\n* " + self._cite_book(rng, writer)]
        if page.cited:
            parts.append(f"== External links ==\n* [{page.cited[0].ref.url} {page.cited[0].title}]")
        categories = {f"{title_case(rng.choice(lexicon().nouns[page.topic]).pl)} in {country}",
                      title_case(writer.render("{A} {Ns}")), f"Buildings and structures in {place}"}
        parts.append("\n".join(f"[[Category:{c}]]" for c in sorted(categories)))
        return "\n\n".join(parts)

    @staticmethod
    def other_text(page: WikiPage) -> str:
        rng = random.Random(page.seed)
        writer = EnglishWriter(rng, topic=page.topic, register="formal")
        if page.ns == 1:
            user = writer.person().replace(" ", "")
            month = rng.choice(lexicon().words["months"])
            signature = (f"[[User:{user}|{user}]] ([[User talk:{user}|talk]]) 12:{rng.randint(10, 59)}, "
                         f"{rng.randint(1, 28)} {month} {rng.randint(2010, 2023)} (UTC)")
            return "\n\n".join(f"== {title_case(writer.render('{A} {N}'))} ==\n{writer.paragraph(2)} "
                               f"{signature}" for _ in range(rng.randint(1, 3)))
        if page.ns == 10:
            return ("{{Infobox\n| name = {{{name|{{PAGENAME}}}}}\n| label1 = Location\n"
                    "| data1 = {{{location|}}}\n| label2 = Established\n| data2 = {{{established|}}}\n"
                    f"}}}}<noinclude>\n{writer.sentence()}\n[[Category:Infobox templates]]\n</noinclude>")
        return f"{writer.paragraph(2)}\n\n[[Category:{title_case(writer.render('{A} {Ns}'))}]]"

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        namespaces = "\n".join(f'      <namespace key="{key}" case="first-letter" />' if not name else
                               f'      <namespace key="{key}" case="first-letter">{name}</namespace>'
                               for key, name in _NAMESPACES)
        compressor = bz2.BZ2Compressor(9)
        chunks = [compressor.compress(_SITEINFO.format(namespaces=namespaces).encode("utf-8"))]
        documents = 0
        for page in self.pages:
            if page.redirect:
                text = f"#REDIRECT [[{page.redirect}]]\n\n{{{{R from alternative name}}}}"
            elif page.ns == 0:
                text = self.article_text(page)
            else:
                text = self.other_text(page)
            documents += page.ns == 0
            chunks.append(compressor.compress(self._page_xml(page, text).encode("utf-8")))
        chunks += [compressor.compress(b"</mediawiki>\n"), compressor.flush()]
        (out / "enwiki-20240601-pages-articles.xml.bz2").write_bytes(b"".join(chunks))
        return documents

    def _page_xml(self, page: WikiPage, text: str) -> str:
        rng, esc = self.rng, lambda value: html.escape(value, quote=False)
        moment = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 500 * 86400))
        revision = rng.randint(1_100_000_000, 1_226_000_000)
        if rng.random() < 0.85:
            who = (f"<username>{esc(EnglishWriter(rng).person())}</username>\n"
                   f"        <id>{rng.randint(1000, 45_000_000)}</id>")
        else:
            who = f"<ip>{draw_ip(rng)}</ip>"
        redirect = f'    <redirect title="{html.escape(page.redirect)}" />\n' if page.redirect else ""
        comment = rng.choice(("copyedit", "/* History */ expanded", "added citation", "fixed link", ""))
        comment = f"      <comment>{esc(comment)}</comment>\n" if comment else ""
        return (f"  <page>\n    <title>{esc(page.title)}</title>\n    <ns>{page.ns}</ns>\n"
                f"    <id>{page.page_id}</id>\n{redirect}    <revision>\n      <id>{revision}</id>\n"
                f"      <parentid>{revision - rng.randint(1, 9_000_000)}</parentid>\n"
                f"      <timestamp>{warc_date(moment)}</timestamp>\n"
                f"      <contributor>\n        {who}\n      </contributor>\n{comment}"
                "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
                f'      <text bytes="{len(text.encode("utf-8"))}" xml:space="preserve">{esc(text)}</text>\n'
                f"      <sha1>{_base36_sha1(text)}</sha1>\n    </revision>\n  </page>\n")
