"""The demo corpus: a small corpus in the real dump format of each of the seven LLaMA sources.

`write_demo_corpus(out_dir, seed, scale)` writes

    commoncrawl/CC-MAIN-demo-0000{0..3}.warc.gz      WARC/1.0 warcinfo/request/response/metadata records
    c4/c4-train.0000{0,1}-of-00002.json.gz           {"text", "timestamp", "url"} lines
    github/github-0000{0,1}.jsonl.gz                  {"content", "repo_name", "path", "license", "language"}
    wikipedia/enwiki-20240601-pages-articles.xml.bz2  MediaWiki export XML (schema 0.10)
    books/pg<NNNNN>.txt                               Project Gutenberg plain text (UTF-8, CRLF)
    arxiv/<yymm.nnnnn>.tar.gz and <id>.gz             LaTeX sources (tarball, or one gzipped .tex)
    stackexchange/<site>.stackexchange.com/Posts.xml  Stack Exchange dump rows
    plants.json                                       what was planted, by category

All text comes from `text.py` (templates and word lists written for this project). The output is a
pure function of (seed, scale): every draw comes from a `random.Random` seeded from them, gzip headers
carry mtime 0, tar members fixed times, and WARC dates and record ids come from the rng.

Each document is generated from its own small seed when it is written, so memory stays flat at large
scales; a duplicate regenerates its original from the original's seed.

`plants.json` names every planted item by `source` and `id` (the document id the reader emits:
`commoncrawl:<uuid>`, `c4:<file>:<line>`, `github:<repo>/<path>`, `wikipedia:en/<page id>`,
`books:pg<N>`, `arxiv:<id>`, `stackexchange:<site host>/<question id>`), plus `url` where the source has
one (CommonCrawl pages are most easily matched by URL). Pairs (duplicates) are lists of two items.
`normal_english` lists the CommonCrawl pages and C4 documents that every quality filter should keep.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import html
import io
import json
import math
import random
import re
import string
import struct
import tarfile
import uuid
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from llamapipe.sources.demo.text import (
    FOREIGN_LANGUAGES,
    Character,
    CodeWriter,
    EnglishWriter,
    ForeignWriter,
    PaperWriter,
    capitalise,
    fix_articles,
    gibberish_paragraphs,
    lexicon,
    load_snippets,
    load_wordfile,
    spam_lines,
    title_case,
)

# Documents per category at scale 1.0 (multiplied by `scale`; see `_n` for the minimums).
BASE_COUNTS = {
    "cc_normal": 590, "cc_heavy": 90, "cc_cited": 100, "cc_per_language": 9, "cc_spam": 20,
    "cc_gibberish": 20, "cc_short": 15, "cc_exact_pairs": 10, "cc_near_pairs": 10, "cc_cross_source": 10,
    "cc_404": 6, "cc_sites": 130,
    "c4_normal": 480, "c4_exact_pairs": 8, "c4_near_pairs": 8, "c4_rule_breakers": 2, "c4_sites": 60,
    "gh_repos": 56, "gh_duplicates": 6,
    "wiki_articles": 150, "wiki_redirects": 15, "wiki_other_ns": 15,
    "books": 12, "arxiv_tar": 60, "arxiv_single": 4, "se_questions_per_site": 80,
}
WARC_FILES, C4_FILES, GITHUB_FILES = 4, 2, 2  # at scale <= 1


def _files(base: int, scale: float) -> int:
    """Files of a source at `scale`: real dumps grow by adding files of about the same size (Common
    Crawl's ~1 GB WARCs, C4's 1024 parts), so a scaled corpus does too, and the work can spread."""
    return max(base, math.ceil(base * scale))
SE_SITES = {"cooking": "cooking", "gardening": "gardening"}  # site -> topic of its vocabulary
CRAWL_START = datetime(2024, 5, 17, 23, 31, 22, tzinfo=UTC)


def _n(name: str, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(BASE_COUNTS[name] * scale))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _seed(rng: random.Random) -> int:
    return rng.getrandbits(63)


def _ip(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _snippet(name: str, rng: random.Random | None = None, **values: object) -> str:
    """One snippet of pages.txt (a random one when the section has several), placeholders filled."""
    options = load_snippets("pages")[name]
    chosen = rng.choice(options) if rng else options[0]
    return string.Template(chosen).safe_substitute({k: str(v) for k, v in values.items()})


def _gzip_writer(path: Path) -> gzip.GzipFile:
    """A gzip file with an empty name and mtime 0 in its header (so output bytes are reproducible)."""
    return gzip.GzipFile(filename="", mode="wb", fileobj=open(path, "wb"), mtime=0)


def _close_gzip(gz: gzip.GzipFile) -> None:
    raw = gz.fileobj
    gz.close()
    raw.close()


# --- plants ----------------------------------------------------------------------------------------

@dataclass(eq=False)
class Ref:
    """A document as the pipeline will see it; `id` may be filled in when the document is written."""

    source: str
    id: str = ""
    url: str = ""

    def item(self) -> dict:
        out = {"source": self.source, "id": self.id}
        if self.url:
            out["url"] = self.url
        return out


class Plants:
    """Planted cases by category: single refs with details, or pairs of refs."""

    def __init__(self) -> None:
        self._entries: dict[str, list] = defaultdict(list)

    def add(self, category: str, ref: Ref, **details) -> None:
        self._entries[category].append((ref, details))

    def pair(self, category: str, first: Ref, second: Ref) -> None:
        self._entries[category].append([first, second])

    def to_json(self) -> dict:
        return {
            category: [[ref.item() for ref in entry] if isinstance(entry, list)
                       else {**entry[0].item(), **entry[1]} for entry in entries]
            for category, entries in self._entries.items()
        }


def change_words(paragraphs: list[str], rng: random.Random, count: int) -> list[str]:
    """Replace `count` lowercase words at random positions by other words (a near duplicate)."""
    words = [p.split(" ") for p in paragraphs]
    positions = [(i, j) for i, para in enumerate(words) for j, word in enumerate(para)
                 if word.isalpha() and word.islower() and len(word) >= 4]
    replacements = lexicon().general_adjectives
    for i, j in rng.sample(positions, min(count, len(positions))):
        old = words[i][j]
        while words[i][j] == old:
            words[i][j] = rng.choice(replacements)
    return [" ".join(para) for para in words]


# --- sites ----------------------------------------------------------------------------------------------

_FOREIGN_DOMAIN_WORDS = {
    "fr": (("journal", "quartier", "cuisine", "voyage", "village", "regard", "terroir", "jardin"), "fr"),
    "de": (("heimat", "blatt", "kueche", "reise", "dorf", "zeitung", "garten", "kultur"), "de"),
    "es": (("diario", "barrio", "cocina", "viaje", "pueblo", "rincon", "cultura", "huerta"), "es"),
    "ru": (("novosti", "gorod", "kultura", "putevoditel", "kuhnya", "dacha", "region", "zhurnal"), "ru"),
    "zh": (("xinwen", "wenhua", "lvyou", "meishi", "chengshi", "shenghuo", "keji", "jiaoyu"), "cn"),
}
_LAYOUTS = ("wordpress", "bootstrap", "plain", "news")
_SERVERS = ("nginx/1.18.0", "Apache/2.4.41 (Ubuntu)", "cloudflare", "nginx", "Apache", "LiteSpeed")
_FOOTER_LINKS = ("About us", "Contact", "Privacy Policy", "Terms of Use", "Cookie Policy", "Sitemap",
                 "Advertise", "Careers", "Accessibility", "Newsletter")


@dataclass(eq=False)
class Site:
    domain: str
    name: str
    lang: str
    layout: str
    topic: str
    nav: list[str]
    categories: list[str]
    cookie_banner: bool
    founded: int


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalpha())


def _english_site_words(rng: random.Random) -> list[str]:
    """The words of a site name; the domain is the same words run together."""
    lex = lexicon()
    noun = lambda: _letters(rng.choice(lex.all_nouns).sg)  # noqa: E731
    adjective = _letters(rng.choice(lex.general_adjectives))
    return rng.choice((
        [adjective, noun()], ["the", adjective, noun()], [noun(), "and", noun()],
        [_letters(rng.choice(lex.words["last_names"])), rng.choice(("blog", "journal", "notes", "press"))],
        [_letters(rng.choice(lex.words["places"])), noun()],
    ))


def make_site(rng: random.Random, lang: str, taken: set[str]) -> Site:
    """A generated web site: a unique domain, a name, navigation and a page layout."""
    lex = lexicon()
    topic = rng.choice(lex.topics)
    while True:
        if lang == "en":
            site_words = _english_site_words(rng)
            stem = "".join(site_words)
            domain = f"{stem}.{rng.choice(('com', 'com', 'com', 'org', 'net', 'co.uk', 'io', 'info'))}"
        else:
            words, tld = _FOREIGN_DOMAIN_WORDS[lang]
            stem = "-".join(rng.sample(words, 2))
            domain = f"{stem}.{tld}"
        if domain not in taken:
            taken.add(domain)
            break
    if lang == "en":
        name = title_case(" ".join(site_words))
        writer = EnglishWriter(rng, topic=topic)
        nav = ["Home", *(title_case(n.pl) for n in rng.sample(lex.nouns[topic], 4)), "About", "Contact"]
        categories = [title_case(writer.render("{A} {Ns}")) for _ in range(rng.randint(4, 7))]
    else:
        name, nav, categories = stem.replace("-", " ").title(), list(load_wordfile(lang)["nav"]), []
    return Site(domain, name, lang, rng.choice(_LAYOUTS), topic, nav, categories, rng.random() < 0.7,
                rng.randint(2003, 2019))


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(title: str) -> str:
    return _NOT_SLUG.sub("-", title.lower()).strip("-")[:80] or "page"


def _url_path(rng: random.Random, title: str, site: Site, date: datetime) -> str:
    if site.lang == "en":
        slug = _slug(title)
    else:
        slug = f"{rng.choice(('article', 'post', 'page'))}-{rng.randint(100, 99999)}"
    style = rng.randrange(4)
    if style == 0:
        return f"/{date.year - rng.randint(1, 5)}/{rng.randint(1, 12):02d}/{slug}/"
    if style == 1 and site.categories:
        return f"/{_slug(rng.choice(site.categories))}/{slug}"
    if style == 2:
        return f"/{slug}.html"
    return f"/blog/{slug}"


# --- C4 ----------------------------------------------------------------------------------------------

@dataclass(eq=False)
class C4Doc:
    ref: Ref
    seed: int
    kind: str = "normal"  # normal | exact_copy | near_copy | lorem | brace | few_sentences
    original: C4Doc | None = None
    long: bool = False
    timestamp: str = ""


def c4_paragraphs(doc: C4Doc) -> list[str]:
    """The text lines of a C4 document (regenerated from its seed)."""
    if doc.original is not None:
        paragraphs = c4_paragraphs(doc.original)
        if doc.kind == "near_copy":
            paragraphs = change_words(paragraphs, random.Random(doc.seed), 2 + doc.seed % 2)
        return paragraphs
    rng = random.Random(doc.seed)
    writer = EnglishWriter(rng, register=rng.choice(("neutral", "neutral", "formal", "casual")))
    if doc.kind == "few_sentences":
        return [writer.sentence() + " " + writer.sentence(), writer.sentence()]
    paragraphs = writer.paragraphs(rng.randint(8, 12) if doc.long else rng.randint(3, 8), 2, 5)
    if doc.kind == "lorem":
        paragraphs.insert(rng.randint(1, len(paragraphs)), "Lorem ipsum dolor sit amet, consectetur "
                          "adipiscing elit, sed do eiusmod tempor incididunt ut labore.")
    elif doc.kind == "brace":
        paragraphs[rng.randrange(len(paragraphs))] += ' The settings file starts with {"mode": "auto"} today.'
    return paragraphs


class C4Writer:
    """~530 C4 documents (scale 1) with exact and near duplicates and a few rule breakers."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants):
        self.rng = rng
        self.files = _files(C4_FILES, scale)
        self.docs: list[C4Doc] = []
        self.sites = [make_site(rng, "en", set()) for _ in range(_n("c4_sites", scale, 3))]
        for _ in range(_n("c4_normal", scale)):
            plants.add("normal_english", self._new().ref)
        for _ in range(_n("c4_exact_pairs", scale)):
            original = self._new()
            plants.pair("exact_duplicates", original.ref, self._new("exact_copy", original).ref)
        for _ in range(_n("c4_near_pairs", scale)):
            original = self._new(long=True)
            plants.pair("near_duplicates", original.ref, self._new("near_copy", original).ref)
        for kind, rule in (("lorem", "lorem_ipsum"), ("brace", "curly_bracket"),
                           ("few_sentences", "too_few_sentences")):
            for _ in range(_n("c4_rule_breakers", scale)):
                plants.add("c4_rule_violations", self._new(kind).ref, rule=rule)
        self.cross_source = [self._new() for _ in range(_n("cc_cross_source", scale))]

    def _new(self, kind: str = "normal", original: C4Doc | None = None, long: bool = False) -> C4Doc:
        rng = self.rng
        site = rng.choice(self.sites)
        title = EnglishWriter(rng, topic=site.topic).title()
        url = f"https://{site.domain}{_url_path(rng, title, site, datetime(2019, 4, 1))}"
        moment = datetime(2019, 4, 18, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 14 * 86400))
        doc = C4Doc(Ref("c4", url=url), _seed(rng), kind, original, long, _warc_date(moment))
        self.docs.append(doc)
        return doc

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        order = list(self.docs)
        self.rng.shuffle(order)
        per_file = -(-len(order) // self.files)
        for index in range(self.files):
            name = f"c4-train.{index:05d}-of-{self.files:05d}.json.gz"
            gz = _gzip_writer(out / name)
            for line, doc in enumerate(order[index * per_file:(index + 1) * per_file], start=1):
                doc.ref.id = f"c4:{name}:{line}"
                text = "\n".join(c4_paragraphs(doc))
                record = {"text": text, "timestamp": doc.timestamp, "url": doc.ref.url}
                gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            _close_gzip(gz)
        return len(order)


# --- CommonCrawl ---------------------------------------------------------------------------------------

@dataclass(eq=False)
class Page:
    ref: Ref
    # normal heavy cited foreign spam gibberish short exact_copy near_copy long cross_source charset
    kind: str
    site: Site
    seed: int
    title: str
    topic: str
    register: str
    date: datetime
    record_id: str
    ip: str
    original: Page | None = None
    c4_doc: C4Doc | None = None
    charset: str = "utf-8"


# A line every cited page ends with, its year varying: CCNet's line dedup (digits normalised to 0)
# removes it from all of them, since it is found in more than one page.
REVIEWED_NOTE = "This page was last reviewed in {year} by the editors of the archive."


def page_content(page: Page) -> list[str]:
    """The article paragraphs of a page (regenerated from its seed)."""
    if page.original is not None:
        paragraphs = page_content(page.original)
        if page.kind == "near_copy":
            paragraphs = change_words(paragraphs, random.Random(page.seed), 2 + page.seed % 3)
        return paragraphs
    if page.c4_doc is not None:
        return c4_paragraphs(page.c4_doc)
    rng = random.Random(page.seed)
    if page.kind == "foreign":
        return ForeignWriter(rng, page.site.lang).paragraphs(rng.randint(4, 8))
    if page.kind == "spam":
        return spam_lines(rng)
    if page.kind == "gibberish":
        return gibberish_paragraphs(rng, rng.randint(3, 7))
    writer = EnglishWriter(rng, topic=page.topic, register=page.register)
    if page.kind == "short":
        return [writer.sentence()]
    if page.kind == "heavy":
        return writer.paragraphs(2, 3, 4)
    if page.kind == "long":
        return writer.paragraphs(rng.randint(10, 13), 5, 7)
    paragraphs = writer.paragraphs(rng.randint(4, 12))
    if page.kind == "charset":
        sentences = list(load_snippets("pages")["html.accented"])
        if page.charset == "windows-1252":
            sentences += load_snippets("pages")["html.cpsentences"]
        rng.shuffle(sentences)
        place = rng.choice(lexicon().words["places"])
        paragraphs.insert(1, string.Template(" ".join(sentences)).safe_substitute(PLACE=place))
    if page.kind == "cited":
        paragraphs.append(REVIEWED_NOTE.format(year=rng.randint(2012, 2023)))
    return paragraphs


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _link_list(items: list[tuple[str, str]], ul_class: str = "", li_class: str = "",
               a_class: str = "") -> str:
    ul, li, a = (f' class="{c}"' if c else "" for c in (ul_class, li_class, a_class))
    rows = "".join(f'<li{li}><a{a} href="{html.escape(href)}">{_esc(label)}</a></li>\n'
                   for label, href in items)
    return f"<ul{ul}>\n{rows}</ul>"


def _site_links(rng: random.Random, site: Site, count: int) -> list[tuple[str, str]]:
    """Links to other (made-up) pages of the site, for menus, sidebars and footers."""
    if site.lang != "en":
        writer = ForeignWriter(rng, site.lang)
        return [(writer.title(), f"/article-{rng.randint(100, 99999)}") for _ in range(count)]
    writer = EnglishWriter(rng, topic=site.topic)
    return [(title, "/" + _slug(title)) for title in (writer.title() for _ in range(count))]


_LIST_CLASSES = {"wordpress": ("menu", "menu-item", ""), "bootstrap": ("navbar-nav", "nav-item", "nav-link")}
_META = {"utf-8": '<meta charset="utf-8">\n', "iso-8859-1": '<meta charset="iso-8859-1">\n',
         "windows-1252-meta": '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">\n'}


def render_page(page: Page, paragraphs: list[str]) -> str:
    """A full HTML document around the article: navigation, header, sidebar, cookie banner, footer."""
    site = page.site
    rng = random.Random(page.seed ^ 0x5EED)  # boilerplate randomness, shared by a page and its copies
    heavy, english = page.kind == "heavy", site.lang == "en"
    head = _snippet("html.head", LANG=site.lang, META=_META.get(page.charset, ""), TITLE=_esc(page.title),
                    SITE=_esc(site.name), DESCRIPTION=html.escape(paragraphs[0][:150]),
                    VERSION=rng.randint(100, 999), URL=html.escape(page.ref.url))
    article = [f"<h1>{_esc(page.title)}</h1>"]
    if english and page.kind != "short":
        byline = f"By {EnglishWriter(rng).person()} | {page.date.strftime('%B %d, %Y')}"
        article.append(f'<p class="byline">{_esc(byline)}</p>')
    for index, paragraph in enumerate(paragraphs):
        article.append(f"<p>{_esc(paragraph)}</p>")
        if index == 1 and page.kind in ("normal", "cited") and rng.random() < 0.2:
            article.append(f'<figure><img src="/images/{rng.randint(1000, 9999)}.jpg" alt="">'
                           f"<figcaption>{_esc(site.name)} archive photo.</figcaption></figure>")
    if page.kind == "short":  # a bare page: under 300 characters of text in total
        return head + _snippet("html.minimal", ARTICLE="\n".join(article), YEAR=page.date.year,
                               SITE=_esc(site.name))
    nav = [(label, "/" if i == 0 else "/" + _slug(label)) for i, label in enumerate(site.nav)]
    sidebar = _site_links(rng, site, rng.randint(30, 45) if heavy else rng.randint(4, 8))
    footer_names = _FOOTER_LINKS if english else load_wordfile(site.lang)["footer"]
    footer = [(label, "/" + _slug(label) if english else f"/p/{i}") for i, label in enumerate(footer_names)]
    if heavy:  # mega-menus and link farms around a short article
        nav += _site_links(rng, site, rng.randint(50, 80))
        footer += _site_links(rng, site, rng.randint(60, 90))
    if english:
        copyright_line = f"&copy; {site.founded}-{page.date.year} {_esc(site.name)}. All rights reserved."
    else:
        copyright_line = f"&copy; {page.date.year} {_esc(site.name)}. {_esc(footer_names[0])}"
    body = _snippet(
        f"html.{site.layout}", SITE=_esc(site.name), ARTICLE="\n".join(article),
        COOKIE=_snippet("html.cookie") + "\n" if site.cookie_banner and english else "",
        NAV=_link_list(nav, *_LIST_CLASSES.get(site.layout, ("", "", ""))),
        SIDEBAR_TITLE=("Popular posts" if english else site.nav[1]), SIDEBAR=_link_list(sidebar),
        CATEGORIES=_link_list([(c, "/category/" + _slug(c)) for c in site.categories]),
        NEWSLETTER=_snippet("html.newsletter") if english else "", FOOTER=_link_list(footer),
        COPYRIGHT=copyright_line, SOCIAL=_snippet("html.social"), POST_ID=rng.randint(10, 9999),
        DATE_LONG=page.date.strftime("%A, %d %B %Y"),
    )
    return head + "\n" + body + "\n"


def _png(rng: random.Random) -> bytes:
    """A valid 8x8 RGB PNG with random pixels."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)
    raw = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(24)) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _warc_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(eq=False)
class Capture:
    """One fetched URL: a page (HTML document) or a response that is no document (404, image)."""

    url: str
    record_id: str
    date: datetime
    ip: str
    status: str
    content_type: str = ""
    page: Page | None = None
    body: bytes = b""


class CommonCrawlWriter:
    """Plans ~930 pages (scale 1) over generated sites and writes them as Common Crawl WARC files."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants):
        self.rng = rng
        self.scale = scale
        self.plants = plants
        self.domains: set[str] = set()
        self.urls: set[str] = set()
        self.english_sites = [make_site(rng, "en", self.domains) for _ in range(_n("cc_sites", scale, 4))]
        self.pages: list[Page] = []

    def _new_page(self, kind: str, site: Site | None = None, title: str = "", register: str = "",
                  **fields) -> Page:
        rng = self.rng
        site = site or rng.choice(self.english_sites)
        date = CRAWL_START + timedelta(seconds=rng.randint(0, 12 * 86400))
        topic = site.topic if rng.random() < 0.7 else rng.choice(lexicon().topics)
        register = register or rng.choice(("neutral", "neutral", "casual"))
        if not title:
            title = (ForeignWriter(rng, site.lang).title() if site.lang != "en"
                     else EnglishWriter(rng, topic=topic, register=register).title())
        url = f"https://{site.domain}{_url_path(rng, title, site, date)}"
        while url in self.urls:
            url = url.rstrip("/") + f"-{rng.randint(2, 99)}"
        self.urls.add(url)
        record_id = _uuid(rng)
        page = Page(Ref("commoncrawl", f"commoncrawl:{record_id}", url), kind, site, _seed(rng), title, topic,
                    register, date, record_id, _ip(rng), **fields)
        self.pages.append(page)
        return page

    def plan(self, c4_sources: list[C4Doc]) -> None:
        n = lambda name: _n(name, self.scale)  # noqa: E731
        plants, rng = self.plants, self.rng
        for kind, count in (("normal", n("cc_normal")), ("heavy", n("cc_heavy"))):
            for _ in range(count):
                page = self._new_page(kind)
                plants.add("normal_english", page.ref)
                plants.add("uncited_urls", page.ref)
                if kind == "heavy":
                    plants.add("boilerplate_heavy", page.ref)
        for _ in range(n("cc_cited")):  # cited by Wikipedia: written in the encyclopedic register
            page = self._new_page("cited", register="formal")
            plants.add("normal_english", page.ref)
            plants.add("shared_line_pages", page.ref, line=REVIEWED_NOTE)
        for lang in FOREIGN_LANGUAGES:
            sites = [make_site(rng, lang, self.domains) for _ in range(3)]
            for _ in range(n("cc_per_language")):
                plants.add("non_english", self._new_page("foreign", rng.choice(sites)).ref, lang=lang)
        for _ in range(n("cc_spam")):
            page = self._new_page("spam", title="Cheap Deals - Best Price Online - Click Here")
            plants.add("spam", page.ref)
        for _ in range(n("cc_gibberish")):
            title = capitalise(" ".join(gibberish_paragraphs(rng, 1)[0].split()[:4]))
            plants.add("gibberish", self._new_page("gibberish", title=title).ref)
        for _ in range(n("cc_short")):
            plants.add("short", self._new_page("short").ref)
        # Duplicated pages are written in the encyclopedic register, like the cited pages: the
        # reference classifier keeps such pages, so which copy survives is dedup's decision.
        for _ in range(n("cc_exact_pairs")):
            original = self._new_page("normal", register="formal")
            copy = self._new_page("exact_copy", original.site, original.title, original=original)
            plants.pair("exact_duplicates", original.ref, copy.ref)
        for _ in range(n("cc_near_pairs")):
            original = self._new_page("long", register="formal")
            copy = self._new_page("near_copy", original.site, original.title, original=original)
            plants.pair("near_duplicates", original.ref, copy.ref)
        for doc in c4_sources:
            plants.pair("cross_source_duplicates", self._new_page("cross_source", c4_doc=doc).ref, doc.ref)
        for charset, declared in (("windows-1252", "http-header"), ("iso-8859-1", "meta-charset"),
                                  ("windows-1252-meta", "meta-http-equiv")):
            page = self._new_page("charset", charset=charset)
            plants.add("charsets", page.ref, charset=charset.replace("-meta", ""), declared_in=declared,
                       words=["café", "façade", "crème brûlée"])
        rng.shuffle(self.pages)

    def cited_pages(self) -> list[Page]:
        return [p for p in self.pages if p.kind == "cited"]

    def normal_urls(self) -> list[str]:
        return [p.ref.url for p in self.pages if p.kind == "normal"]

    def _captures(self) -> list[Capture]:
        rng = self.rng
        captures = [Capture(p.ref.url, p.record_id, p.date, p.ip, "200 OK", page=p) for p in self.pages]
        for _ in range(_n("cc_404", self.scale)):
            site = rng.choice(self.english_sites)
            url = f"https://{site.domain}/{_slug(EnglishWriter(rng).title())}-{rng.randint(2, 999)}"
            when = CRAWL_START + timedelta(seconds=rng.randint(0, 86400))
            capture = Capture(url, _uuid(rng), when, _ip(rng), "404 Not Found", "text/html; charset=utf-8",
                              body=_snippet("html.notfound").encode())
            ref = Ref("commoncrawl", f"commoncrawl:{capture.record_id}", url)
            self.plants.add("http_errors", ref, status=404)
            captures.append(capture)
        url = f"https://{rng.choice(self.english_sites).domain}/images/logo.png"
        image = Capture(url, _uuid(rng), CRAWL_START + timedelta(hours=5), _ip(rng), "200 OK", "image/png",
                        body=_png(rng))
        self.plants.add("non_html", Ref("commoncrawl", f"commoncrawl:{image.record_id}", url),
                        content_type="image/png")
        captures.append(image)
        rng.shuffle(captures)
        return captures

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        captures = self._captures()
        files = _files(WARC_FILES, self.scale)
        per_file = -(-len(captures) // files)
        documents = 0
        for index in range(files):
            name = f"CC-MAIN-demo-{index:05d}.warc.gz"
            with open(out / name, "wb") as handle:
                documents += self._write_file(handle, name, captures[index * per_file:(index + 1) * per_file])
        return documents

    def _write_file(self, handle, name: str, captures: list[Capture]) -> int:
        rng = self.rng
        writer = WARCWriter(handle, gzip=True, warc_version="1.0")
        info_id = f"<urn:uuid:{_uuid(rng)}>"
        fields = (b"isPartOf: CC-MAIN-demo\r\npublisher: llamapipe demo corpus\r\n"
                  b"description: Generated pages in Common Crawl's WARC layout\r\n"
                  b"software: llamapipe demo-data\r\nformat: WARC File Format 1.0\r\n")
        info_headers = StatusAndHeaders("", [
            ("WARC-Type", "warcinfo"), ("WARC-Date", _warc_date(CRAWL_START)), ("WARC-Record-ID", info_id),
            ("WARC-Filename", name), ("Content-Type", "application/warc-fields")], protocol="WARC/1.0")
        writer.write_record(writer.create_warc_record(
            "", "warcinfo", payload=io.BytesIO(fields), length=len(fields), warc_headers=info_headers))
        documents = 0
        for capture in captures:
            common = {"WARC-Date": _warc_date(capture.date), "WARC-Warcinfo-ID": info_id,
                      "WARC-IP-Address": capture.ip}
            request_id = f"<urn:uuid:{_uuid(rng)}>"
            request = StatusAndHeaders(f"GET /{capture.url.split('/', 3)[3]} HTTP/1.1", [
                ("User-Agent", "CCBot/2.0 (https://commoncrawl.org/faq/)"),
                ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                ("Accept-Language", "en-US,en;q=0.5"), ("Accept-Encoding", "br,gzip"),
                ("Host", capture.url.split("/")[2]), ("Connection", "Keep-Alive")], is_http_request=True)
            writer.write_record(writer.create_warc_record(
                capture.url, "request", payload=io.BytesIO(b""), length=0, http_headers=request,
                warc_headers_dict={"WARC-Record-ID": request_id, **common}))
            body, content_type = capture.body, capture.content_type
            if capture.page is not None:
                body, content_type = self._page_bytes(capture.page)
                documents += 1
            headers = [("Date", capture.date.strftime("%a, %d %b %Y %H:%M:%S GMT")),
                       ("Server", rng.choice(_SERVERS)), ("Content-Type", content_type),
                       ("Content-Length", str(len(body))), ("Cache-Control", "max-age=600"),
                       ("Vary", "Accept-Encoding"), ("Connection", "close")]
            response_id = f"<urn:uuid:{capture.record_id}>"
            writer.write_record(writer.create_warc_record(
                capture.url, "response", payload=io.BytesIO(body), length=len(body),
                http_headers=StatusAndHeaders(capture.status, headers, protocol="HTTP/1.1"),
                warc_headers_dict={"WARC-Record-ID": response_id, "WARC-Concurrent-To": request_id,
                                   "WARC-Identified-Payload-Type": content_type.split(";")[0], **common}))
            if rng.random() < 0.05:  # Common Crawl adds fetch metadata to some captures
                fields = (f"fetchTimeMs: {rng.randint(40, 2500)}\r\ncharset-detected: UTF-8\r\n"
                          'languages-cld2: {"reliable":true,"languages":[{"code":"eng"}]}\r\n').encode()
                writer.write_record(writer.create_warc_record(
                    capture.url, "metadata", payload=io.BytesIO(fields), length=len(fields),
                    warc_content_type="application/warc-fields",
                    warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:{_uuid(rng)}>",
                                       "WARC-Refers-To": response_id, **common}))
        return documents

    @staticmethod
    def _page_bytes(page: Page) -> tuple[bytes, str]:
        # Copies are rendered with their original's boilerplate (an exact copy is byte-identical).
        document = render_page(page.original or page, page_content(page))
        if page.charset == "windows-1252":
            return document.encode("cp1252"), "text/html; charset=windows-1252"
        if page.charset == "windows-1252-meta":
            return document.encode("cp1252"), "text/html"
        if page.charset == "iso-8859-1":
            return document.encode("latin-1"), "text/html"
        return document.encode("utf-8"), "text/html; charset=utf-8"


# --- GitHub ----------------------------------------------------------------------------------------------

_PERMISSIVE = ("mit", "mit", "mit", "apache-2.0", "apache-2.0", "bsd-3-clause")
_PATHS = {
    "Python": ("src/{pkg}/{name}.py", "{pkg}/{name}.py", "tests/test_{name}.py", "scripts/{name}.py"),
    "JavaScript": ("src/{name}.js", "lib/{name}.js", "src/utils/{name}.js"),
    "C": ("src/{name}.c", "{name}.c", "lib/{name}.c"),
    "Go": ("internal/{pkg}/{name}.go", "pkg/{pkg}/{name}.go", "cmd/{pkg}/main.go"),
    "Rust": ("src/{name}.rs", "src/{pkg}/mod.rs", "crates/{pkg}/src/lib.rs"),
    "Java": ("src/main/java/com/{pkg}/{Name}.java", "src/main/java/org/{pkg}/{Name}.java"),
    "Shell": ("scripts/{name}.sh", "bin/{name}.sh", "{name}.sh"),
    "Markdown": ("README.md", "docs/{name}.md", "CONTRIBUTING.md", "docs/guide/{name}.md"),
}
_COMMENT_STYLE = {"Python": "#", "C": "/*", "Java": "/*", "JavaScript": "//", "Go": "//", "Rust": "//"}
_LICENCE_SNIPPET = {"apache-2.0": "licence.apache", "mit": "licence.mit", "bsd-3-clause": "licence.bsd"}


def licence_header(rng: random.Random, licence: str, language: str) -> str:
    """A licence comment in the language's comment style, as it opens many files."""
    holder = EnglishWriter(rng).person()
    text = _snippet(_LICENCE_SNIPPET[licence], rng, YEAR=rng.randint(2012, 2023), HOLDER=holder)
    style = _COMMENT_STYLE[language]
    if style == "/*":
        return "/*\n" + "\n".join((" * " + line).rstrip() for line in text.split("\n")) + "\n */\n\n"
    return "\n".join((f"{style} " + line).rstrip() for line in text.split("\n")) + "\n\n"


@dataclass(eq=False)
class Repo:
    name: str
    licence: str
    language: str
    package: str


@dataclass(eq=False)
class GithubRow:
    ref: Ref
    repo: Repo
    path: str
    language: str
    content: str


class GithubWriter:
    """~260 files in ~60 repositories; non-permissive licences, duplicates and bad files planted."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants):
        self.rng = rng
        self.files = _files(GITHUB_FILES, scale)
        self.plants = plants
        self.code = CodeWriter(rng)
        self.rows: list[GithubRow] = []
        self._paths: set[str] = set()
        repos = [self._repo(rng.choice(_PERMISSIVE)) for _ in range(_n("gh_repos", scale, 4))]
        for licence, files in (("gpl-3.0", 4), ("agpl-3.0", 3), ("unknown", 3)):
            for row in self._fill(self._repo(licence), files, header_rate=0.0):
                plants.add("non_permissive_code", row.ref, license=licence)
        normal = [row for repo in repos for row in self._fill(repo, rng.randint(3, 6), header_rate=0.25)]
        for original in rng.sample(normal, min(len(normal), _n("gh_duplicates", scale))):
            target = rng.choice([repo for repo in repos if repo is not original.repo])
            copy = self._add(target, original.language, original.content, original.path)
            plants.pair("exact_duplicates", original.ref, copy.ref)
        self._plant_bad_files(rng.choice(repos))

    def _repo(self, licence: str) -> Repo:
        rng = self.rng
        words = lexicon().words
        owner = rng.choice((
            rng.choice(words["last_names"]).lower() + rng.choice(("", "-dev", "labs", "hq")),
            rng.choice(words["first_names.f"] + words["first_names.m"]).lower() + str(rng.randint(1, 99))))
        name = f"{self.code.noun()}-{rng.choice(('kit', 'tools', 'lite', 'core', 'utils', 'server', 'cli'))}"
        return Repo(f"{owner}/{name}", licence, rng.choice(CodeWriter.LANGUAGES[:7]), self.code.noun())

    def _add(self, repo: Repo, language: str, content: str, path: str = "") -> GithubRow:
        if not path:
            main_class = re.search(r"public class (\w+)", content)  # Java files are named after their class
            path = self.rng.choice(_PATHS[language]).format(
                pkg=repo.package, name=self.code.snake(), Name=main_class.group(1) if main_class else "Main")
        while f"{repo.name}/{path}" in self._paths:
            stem, dot, ext = path.rpartition(".")
            path = f"{stem}_{self.rng.randint(2, 99)}{dot}{ext}"
        self._paths.add(f"{repo.name}/{path}")
        row = GithubRow(Ref("github", f"github:{repo.name}/{path}"), repo, path, language, content)
        self.rows.append(row)
        return row

    def _fill(self, repo: Repo, files: int, header_rate: float) -> list[GithubRow]:
        rng = self.rng
        rows = [self._add(repo, "Markdown", self.code.file("Markdown"), "README.md")]
        for _ in range(files - 1):
            language = repo.language if rng.random() < 0.75 else rng.choice(CodeWriter.LANGUAGES)
            content = self.code.file(language)
            header = language in _COMMENT_STYLE and rng.random() < header_rate
            if header:
                content = licence_header(rng, repo.licence, language) + content
            rows.append(self._add(repo, language, content))
            if header:
                self.plants.add("licence_headers", rows[-1].ref, license=repo.licence)
        return rows

    def _plant_bad_files(self, repo: Repo) -> None:
        rng, code = self.rng, self.code
        bad = []
        minified = " ".join(" ".join(code.file("JavaScript").split()) for _ in range(4))
        bad.append((self._add(repo, "JavaScript", minified + "\n", f"dist/{code.noun()}.min.js"),
                    "line_longer_than_1000"))
        lock = "".join(f'[[package]]\nname = "{code.noun()}-{code.verb()}"\n'
                       f'version = "{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"\n'
                       f'checksum = "{rng.getrandbits(256):064x}"\n\n' for _ in range(30))
        bad.append((self._add(repo, "", lock, "Cargo.lock"), "extension_not_whitelisted"))
        binary = "".join(chr(rng.randrange(32, 256)) for _ in range(3000))
        bad.append((self._add(repo, "", binary, f"assets/{code.noun()}.bin"), "extension_not_whitelisted"))
        # Base64 of a mostly-0xFF bitmap: digits, '+' and '/', no letters in the payload at all.
        payload = ("".join(rng.choice("0123456789+/") for _ in range(76)) for _ in range(60))
        lines = "\n".join(f'    "{line}"' for line in payload)
        blob = f"ICON_ATLAS = (\n{lines}\n)\n"
        row = self._add(repo, "Python", blob, f"src/{repo.package}/_icon_atlas.py")
        bad.append((row, "low_alpha_per_token"))
        numbers = ",\n".join("    " + ", ".join(str(rng.randint(0, 65535)) for _ in range(12))
                             for _ in range(80))
        table = f"static const unsigned short crc_table[] = {{\n{numbers}\n}};\n"
        bad.append((self._add(repo, "C", table, f"src/{repo.package}_table.c"), "low_alpha_per_token"))
        for row, problem in bad:
            self.plants.add("code_quality", row.ref, problem=problem)

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        order = list(self.rows)
        self.rng.shuffle(order)
        per_file = -(-len(order) // self.files)
        for index in range(self.files):
            gz = _gzip_writer(out / f"github-{index:05d}.jsonl.gz")
            for row in order[index * per_file:(index + 1) * per_file]:
                record = {"content": row.content, "repo_name": row.repo.name, "path": row.path,
                          "license": row.repo.licence, "language": row.language}
                gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            _close_gzip(gz)
        return len(order)


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
        articles, redirects, others = (_n(name, scale) for name in ("wiki_articles", "wiki_redirects",
                                                                    "wiki_other_ns"))
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
        page = WikiPage(Ref("wikipedia", f"wikipedia:en/{page_id}"), page_id, title, ns, _seed(self.rng),
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
            f"| image       = {_slug(page.title)}.jpg\n"
            f"| caption     = {writer.sentence()[:-1]}\n| location    = [[{place}]], [[{country}]]\n"
            f"| established = {rng.randint(1500, 2010)}\n| type        = {lead_noun}\n}}}}",
            fix_articles(f"'''{page.title}''' is a {lead_noun} in [[{place}]], [[{country}]]. ")
            + paragraph(rng.randint(2, 4)),
        ]
        for index, heading in enumerate(rng.sample(_SECTIONS, rng.randint(2, 4))):
            parts.append(f"== {heading} ==")
            if index == 0 and rng.random() < 0.6:
                parts.append(f"[[File:{_slug(page.title)}-{index}.jpg|thumb|{writer.sentence()[:-1]}]]")
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
            who = f"<ip>{_ip(rng)}</ip>"
        redirect = f'    <redirect title="{html.escape(page.redirect)}" />\n' if page.redirect else ""
        comment = rng.choice(("copyedit", "/* History */ expanded", "added citation", "fixed link", ""))
        comment = f"      <comment>{esc(comment)}</comment>\n" if comment else ""
        return (f"  <page>\n    <title>{esc(page.title)}</title>\n    <ns>{page.ns}</ns>\n"
                f"    <id>{page.page_id}</id>\n{redirect}    <revision>\n      <id>{revision}</id>\n"
                f"      <parentid>{revision - rng.randint(1, 9_000_000)}</parentid>\n"
                f"      <timestamp>{_warc_date(moment)}</timestamp>\n"
                f"      <contributor>\n        {who}\n      </contributor>\n{comment}"
                "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
                f'      <text bytes="{len(text.encode("utf-8"))}" xml:space="preserve">{esc(text)}</text>\n'
                f"      <sha1>{_base36_sha1(text)}</sha1>\n    </revision>\n  </page>\n")


# --- Books -------------------------------------------------------------------------------------------------

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV",
          "XVI", "XVII", "XVIII", "XIX")
# Header styles of the real files: the current one, the 2008-2015 "THIS" one, and one without spaces.
_MARKERS = {
    "modern": ("The Project Gutenberg eBook of {title}, by {author}",
               "*** START OF THE PROJECT GUTENBERG EBOOK {upper} ***",
               "*** END OF THE PROJECT GUTENBERG EBOOK {upper} ***"),
    "this": ("The Project Gutenberg EBook of {title}, by {author}",
             "*** START OF THIS PROJECT GUTENBERG EBOOK {upper} ***",
             "*** END OF THIS PROJECT GUTENBERG EBOOK {upper} ***"),
    "nospace": ("The Project Gutenberg eBook, {title}, by {author}",
                "***START OF THE PROJECT GUTENBERG EBOOK {upper}***",
                "***END OF THE PROJECT GUTENBERG EBOOK {upper}***"),
}


def wrap(text: str, width: int = 70) -> list[str]:
    """Greedy word wrap (Gutenberg files are wrapped at about 70 characters)."""
    lines, current = [], ""
    for word in text.split(" "):
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return lines + [current] if current else lines


@dataclass(eq=False)
class Book:
    ref: Ref
    number: int
    seed: int
    title: str
    author: str
    style: str  # a key of _MARKERS
    release: str
    original: Book | None = None  # set on another edition of a book (a near duplicate)


class BooksWriter:
    """~12 novels of 10-20k words with Gutenberg headers, plus a second edition of one of them."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants):
        count = _n("books", scale)
        numbers = rng.sample(range(10000, 70000), count + 1)
        styles = ["modern", "this", "nospace"] + ["modern"] * 40
        self.books: list[Book] = []
        for index in range(count):
            seed = _seed(rng)
            naming = random.Random(seed)
            writer = EnglishWriter(naming, register="narrative", cast=self.cast(naming))
            title = title_case(writer.render(naming.choice(lexicon().words["book_titles"])))
            number = numbers[index]
            book = Book(Ref("books", f"books:pg{number}"), number, seed, title, writer.person(),
                        styles[index % len(styles)], self._release(rng, number))
            self.books.append(book)
            plants.add("book_header_styles", book.ref, style=book.style)
        original = self.books[min(3, count - 1)]
        edition = Book(Ref("books", f"books:pg{numbers[-1]}"), numbers[-1], original.seed, original.title,
                       original.author, "this" if original.style == "modern" else "modern",
                       self._release(rng, numbers[-1]), original=original)
        self.books.append(edition)
        plants.pair("near_duplicates", original.ref, edition.ref)

    @staticmethod
    def _release(rng: random.Random, number: int) -> str:
        month = rng.choice(lexicon().words["months"])
        return f"{month} {rng.randint(1, 28)}, {1996 + number // 4000} [eBook #{number}]"

    @staticmethod
    def cast(rng: random.Random) -> tuple[Character, ...]:
        words = lexicon().words
        cast = []
        for _ in range(rng.randint(3, 5)):
            female = rng.random() < 0.5
            first = rng.choice(words["first_names.f"] if female else words["first_names.m"])
            cast.append(Character(first, rng.choice(words["last_names"]), female))
        return tuple(cast)

    def body(self, book: Book) -> list[str]:
        """Title page, contents and chapters; another edition changes about 0.5% of the words."""
        rng = random.Random(book.seed)
        writer = EnglishWriter(rng, register="narrative", cast=self.cast(rng))
        target = rng.randint(10000, 20000)
        chapters = min(len(_ROMAN), max(5, target // 1600))
        titles = [title_case(writer.render("the {A} {HN}")) for _ in range(chapters)]
        lines = [book.title.upper(), "", f"By {book.author}", "", "", "CONTENTS", "",
                 *(f"     CHAPTER {_ROMAN[i]}. {titles[i]}" for i in range(chapters)), "", ""]
        for index in range(chapters):
            lines += ["", "", f"CHAPTER {_ROMAN[index]}.", "", titles[index].upper(), "", ""]
            written = 0
            while written < target // chapters:
                paragraph = writer.paragraph(rng.randint(1, 6))
                written += paragraph.count(" ") + 1
                lines += wrap(paragraph) + [""]
        lines += ["", "THE END", ""]
        if book.original is not None:
            tokens = "\n".join(lines).split(" ")
            edit = random.Random(book.number)
            for position in edit.sample(range(len(tokens)), len(tokens) // 200):
                if tokens[position].isalpha() and tokens[position].islower():
                    tokens[position] = edit.choice(lexicon().general_adjectives)
            lines = " ".join(tokens).split("\n")
        return lines

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        snippets = load_snippets("pages")
        for book in self.books:
            first, start, end = (marker.format(title=book.title, author=book.author, upper=book.title.upper())
                                 for marker in _MARKERS[book.style])
            credits = "Produced by volunteers of the llamapipe demo project"
            if book.original is not None:
                credits = "Second edition. " + credits
            header = [first, "", *wrap(snippets["gutenberg.intro"][0]), "", "", f"Title: {book.title}", "",
                      f"Author: {book.author}", "", f"Release Date: {book.release}", "", "Language: English",
                      "", "Character set encoding: UTF-8", "", f"Credits: {credits}", "", "", start,
                      "", "", ""]
            footer = ["", "", "", end, "", ""]
            for paragraph in snippets["gutenberg.licence"]:
                footer += wrap(paragraph) + [""]
            text = "\r\n".join(header + self.body(book) + footer) + "\r\n"
            (out / f"pg{book.number}.txt").write_bytes(text.encode("utf-8"))
        return len(self.books)


# --- ArXiv -----------------------------------------------------------------------------------------------

def _tar_member(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


class ArxivWriter:
    """~60 source tarballs (main.tex, sometimes sections/intro.tex and refs.bib, a figure) and a few
    single-file papers (one gzipped .tex, as arXiv serves them)."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants):
        self.rng = rng
        self.plants = plants
        ids: set[str] = set()
        while len(ids) < _n("arxiv_tar", scale) + _n("arxiv_single", scale):
            ids.add(f"{rng.randint(21, 23):02d}{rng.randint(1, 12):02d}.{rng.randint(0, 29999):05d}")
        self.papers = sorted(ids)
        self.single = set(rng.sample(self.papers, _n("arxiv_single", scale)))

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        for paper_id in self.papers:
            rng = random.Random(_seed(self.rng))
            ref = Ref("arxiv", f"arxiv:{paper_id}")
            if paper_id in self.single:
                gz = _gzip_writer(out / f"{paper_id}.gz")
                main = PaperWriter(rng).files(split_intro=False, bib_file=False)["main.tex"]
                gz.write(main.encode("utf-8"))
                _close_gzip(gz)
                self.plants.add("arxiv_single_file", ref)
                continue
            split_intro, bib_file = rng.random() < 0.4, rng.random() < 0.5
            files = PaperWriter(rng).files(split_intro=split_intro, bib_file=bib_file)
            mtime = 1_600_000_000 + int(paper_id.replace(".", "")) % 100_000_000
            gz = _gzip_writer(out / f"{paper_id}.tar.gz")
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for name in sorted(files):
                    _tar_member(tar, name, files[name].encode("utf-8"), mtime)
                _tar_member(tar, "figures/fig1.png", _png(rng), mtime)
            _close_gzip(gz)
            if split_intro:
                self.plants.add("arxiv_with_input", ref, input="sections/intro.tex")
            if bib_file:
                self.plants.add("arxiv_bib_file", ref)
        return len(self.papers)


# --- Stack Exchange ---------------------------------------------------------------------------------------

_SE_TAGS = {
    "cooking": ("baking", "bread", "sauce", "knife-skills", "food-safety", "storage-method", "vegetables",
                "temperature", "substitutions", "spices", "equipment", "frying", "soup", "cheese", "eggs"),
    "gardening": ("pruning", "tomatoes", "soil", "compost", "pests", "watering", "trees", "lawn", "seeds",
                  "containers", "roses", "fertilizer", "propagation", "indoor", "vegetables"),
}


def _attr(value: object) -> str:
    """Escape an XML attribute value as the dumps do (newlines as &#xA;)."""
    escaped = html.escape(str(value), quote=True).replace("&#x27;", "'")
    return escaped.replace("\n", "&#xA;").replace("\r", "&#xD;")


def _se_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


@dataclass(eq=False)
class Question:
    asked: datetime
    seed: int
    scores: list[int]
    answered: list[datetime]
    planted: bool
    post_id: int = 0
    answer_ids: dict[int, int] = field(default_factory=dict)  # answer position -> post id


class StackExchangeWriter:
    """Two sites of ~80 questions (scale 1) with 0-5 answers each, and tag-wiki rows."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants, link_urls: list[str]):
        self.rng = rng
        self.questions = _n("se_questions_per_site", scale, 2)
        self.plants = plants
        self.link_urls = link_urls or ["https://example.org/"]

    def _body(self, rng: random.Random, writer: EnglishWriter, paragraphs: int, question: str = "") -> str:
        parts = [f"<p>{_esc(writer.paragraph(rng.randint(2, 4)))}</p>" for _ in range(paragraphs)]
        if rng.random() < 0.3:
            items = "".join(f"<li>{_esc(writer.sentence())}</li>\n" for _ in range(rng.randint(2, 4)))
            parts.insert(rng.randint(0, len(parts)), f"<ul>\n{items}</ul>")
        if rng.random() < 0.3:
            code = rng.choice((f"{rng.randint(150, 240)}C", f"{rng.randint(1, 4)}:{rng.randint(1, 3)}",
                               f"pH {rng.randint(5, 7)}.{rng.randint(0, 9)}", f"{rng.randint(2, 30)} g"))
            parts.append(f"<p>I measured <code>{code}</code> the last time I checked.</p>")
        if rng.random() < 0.3:
            url = html.escape(rng.choice(self.link_urls))
            parts.append(f'<p>There is more background in <a href="{url}" rel="nofollow noreferrer">this '
                         "article</a>.</p>")
        if question:
            parts.append(f"<p>{_esc(question)}</p>")
        return "\n\n".join(parts) + "\n"

    def write(self, out: Path) -> int:
        for site, topic in SE_SITES.items():
            rows = self._site_rows(site, topic)
            lines = ['\ufeff<?xml version="1.0" encoding="utf-8"?>', "<posts>"]
            lines += ["  <row " + " ".join(f'{key}="{_attr(value)}"' for key, value in row.items()) + " />"
                      for row in rows]
            lines.append("</posts>")
            site_dir = out / f"{site}.stackexchange.com"
            site_dir.mkdir(parents=True, exist_ok=True)
            (site_dir / "Posts.xml").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
        return self.questions * len(SE_SITES)

    def _plan(self) -> list[tuple[datetime, str, Question, int]]:
        """Posts in creation order: (time, kind q|a|w, question, answer position)."""
        rng = self.rng
        start = datetime(2012, 1, 1, tzinfo=UTC)
        posts = []
        for index in range(self.questions):
            asked = start + timedelta(seconds=rng.randint(0, 11 * 365 * 86400),
                                      milliseconds=rng.randint(0, 999))
            scores = [rng.randint(-3, 25) for _ in range(rng.choices(range(6), (10, 25, 25, 20, 12, 8))[0])]
            if index < 4:  # planted: 10 must sort above 9 (numerically), a negative score below both
                scores = [9, -2, 10, rng.randint(0, 8)]
                rng.shuffle(scores)
            answered = [asked + timedelta(seconds=rng.randint(600, 90 * 86400),
                                          milliseconds=rng.randint(0, 999)) for _ in scores]
            question = Question(asked, _seed(rng), scores, answered, index < 4)
            posts.append((asked, "q", question, 0))
            posts += [(when, "a", question, position) for position, when in enumerate(answered)]
        posts += [(start + timedelta(days=30), "w", None, 4), (start + timedelta(days=30), "w", None, 5)]
        posts.sort(key=lambda post: (post[0], post[1], post[3]))
        return posts

    def _site_rows(self, site: str, topic: str) -> list[dict]:
        rng = self.rng
        posts = self._plan()
        users = [rng.randint(2, 9000) for _ in range(60)]
        ids, next_id = [], 1
        # Ids grow with time, with gaps (deleted posts) as in the dumps.
        for _, kind, question, position in posts:
            ids.append(next_id)
            if kind == "q":
                question.post_id = next_id
            elif kind == "a":
                question.answer_ids[position] = next_id
            next_id += rng.randint(1, 3)
        rows = []
        for post_id, (when, kind, question, position) in zip(ids, posts, strict=True):
            licence = "CC BY-SA 3.0" if when.year < 2018 else "CC BY-SA 4.0"
            common = {"CreationDate": _se_date(when)}
            if kind == "w":  # tag wiki excerpt (4) and body (5)
                writer = EnglishWriter(random.Random(post_id), topic=topic)
                body = writer.sentence() if position == 4 else f"<p>{_esc(writer.paragraph(3))}</p>\n"
                rows.append({"Id": post_id, "PostTypeId": str(position), **common, "Score": 0, "Body": body,
                             "OwnerUserId": rng.choice(users), "LastActivityDate": _se_date(when),
                             "CommentCount": 0, "ContentLicense": licence})
                ref = Ref("stackexchange", f"stackexchange:{site}.stackexchange.com/{post_id}")
                self.plants.add("stackexchange_non_questions", ref, post_type=position)
                continue
            prng = random.Random(question.seed + (0 if kind == "q" else 1 + position))
            writer = EnglishWriter(prng, topic=topic, register="casual")
            if kind == "a":
                owner = ({"OwnerUserId": rng.choice(users)} if prng.random() < 0.9
                         else {"OwnerDisplayName": writer.person()})
                body = self._body(prng, writer, prng.randint(1, 4))
                rows.append({"Id": post_id, "PostTypeId": "2", "ParentId": question.post_id, **common,
                             "Score": question.scores[position], "Body": body, **owner,
                             "LastActivityDate": _se_date(when), "CommentCount": prng.randint(0, 4),
                             "ContentLicense": licence})
                continue
            asking = EnglishWriter(prng, topic=topic, register="question")
            title = asking.sentence()
            row = {"Id": post_id, "PostTypeId": "1"}
            if question.answer_ids and prng.random() < 0.5:
                row["AcceptedAnswerId"] = prng.choice(sorted(question.answer_ids.values()))
            tags = "".join(f"<{tag}>" for tag in prng.sample(_SE_TAGS[site], prng.randint(1, 3)))
            row.update({**common, "Score": prng.randint(-2, 40), "ViewCount": prng.randint(20, 90000),
                        "Body": self._body(prng, writer, prng.randint(1, 3), asking.sentence()),
                        "OwnerUserId": rng.choice(users),
                        "LastActivityDate": _se_date(max([when, *question.answered])), "Title": title,
                        "Tags": tags, "AnswerCount": len(question.scores), "CommentCount": prng.randint(0, 6),
                        "ContentLicense": licence})
            rows.append(row)
            if question.planted:
                order = sorted(range(len(question.scores)), key=lambda i: -question.scores[i])
                ref = Ref("stackexchange", f"stackexchange:{site}.stackexchange.com/{post_id}")
                self.plants.add("stackexchange_answer_order", ref,
                                answer_ids_by_score=[question.answer_ids[i] for i in order],
                                scores_by_score=[question.scores[i] for i in order])
        return rows


# --- entry point ------------------------------------------------------------------------------------------

# Files this module writes; those left by an earlier run (another seed or scale) are removed first, so
# the readers' globs never mix two corpora.
OUTPUT_PATTERNS = {
    "commoncrawl": ("CC-MAIN-demo-*.warc.gz",), "c4": ("c4-train.*.json.gz",),
    "github": ("github-*.jsonl.gz",), "wikipedia": ("enwiki-*-pages-articles.xml.bz2",),
    "books": ("pg*.txt",), "arxiv": ("*.tar.gz", "*.gz"),
    "stackexchange": ("*.stackexchange.com/Posts.xml",),
}

def write_demo_corpus(out_dir: str | Path, seed: int = 0, scale: float = 1.0) -> dict:
    """Write the demo corpus under `out_dir` and its `plants.json`.

    Returns {"documents": {source: count as the readers count them}, "total": n, "seed", "scale"}.
    `scale` multiplies the number of documents (at least one of every planted kind is kept).
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plants = Plants()

    def rng_for(source: str) -> random.Random:  # one stream per source: sources do not shift each other
        return random.Random(f"llamapipe-demo:{seed}:{source}")

    c4 = C4Writer(rng_for("c4"), scale, plants)
    commoncrawl = CommonCrawlWriter(rng_for("commoncrawl"), scale, plants)
    commoncrawl.plan(c4.cross_source)
    writers = {
        "commoncrawl": commoncrawl,
        "c4": c4,
        "github": GithubWriter(rng_for("github"), scale, plants),
        "wikipedia": WikipediaWriter(rng_for("wikipedia"), scale, plants, commoncrawl.cited_pages()),
        "books": BooksWriter(rng_for("books"), scale, plants),
        "arxiv": ArxivWriter(rng_for("arxiv"), scale, plants),
        "stackexchange": StackExchangeWriter(rng_for("stackexchange"), scale, plants,
                                             commoncrawl.normal_urls()[:50]),
    }
    for source, patterns in OUTPUT_PATTERNS.items():
        for pattern in patterns:
            for stale in (out / source).glob(pattern):
                stale.unlink()
    documents = {source: writer.write(out / source) for source, writer in writers.items()}
    summary = {"documents": documents, "total": sum(documents.values()), "seed": seed, "scale": scale}
    manifest = {**summary, **plants.to_json()}
    (out / "plants.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    return summary
