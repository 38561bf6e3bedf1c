"""Web sites and their pages, for the C4 and Common Crawl writers: domains, URLs, page text and HTML."""

from __future__ import annotations

import html
import random
import re
import string
from dataclasses import dataclass
from datetime import datetime

from llamapipe.sources.demo.common import Ref, change_words, fill_snippet
from llamapipe.sources.demo.text import (
    EnglishWriter,
    ForeignWriter,
    gibberish_paragraphs,
    lexicon,
    load_snippets,
    load_wordfile,
    spam_lines,
    title_case,
)

# --- sites ----------------------------------------------------------------------------------------------

_FOREIGN_DOMAIN_WORDS = {
    "fr": (("journal", "quartier", "cuisine", "voyage", "village", "regard", "terroir", "jardin"), "fr"),
    "de": (("heimat", "blatt", "kueche", "reise", "dorf", "zeitung", "garten", "kultur"), "de"),
    "es": (("diario", "barrio", "cocina", "viaje", "pueblo", "rincon", "cultura", "huerta"), "es"),
    "ru": (("novosti", "gorod", "kultura", "putevoditel", "kuhnya", "dacha", "region", "zhurnal"), "ru"),
    "zh": (("xinwen", "wenhua", "lvyou", "meishi", "chengshi", "shenghuo", "keji", "jiaoyu"), "cn"),
}
_LAYOUTS = ("wordpress", "bootstrap", "plain", "news")
SERVERS = ("nginx/1.18.0", "Apache/2.4.41 (Ubuntu)", "cloudflare", "nginx", "Apache", "LiteSpeed")
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


def slugify(title: str) -> str:
    return _NOT_SLUG.sub("-", title.lower()).strip("-")[:80] or "page"


def url_path(rng: random.Random, title: str, site: Site, date: datetime) -> str:
    if site.lang == "en":
        slug = slugify(title)
    else:
        slug = f"{rng.choice(('article', 'post', 'page'))}-{rng.randint(100, 99999)}"
    style = rng.randrange(4)
    if style == 0:
        return f"/{date.year - rng.randint(1, 5)}/{rng.randint(1, 12):02d}/{slug}/"
    if style == 1 and site.categories:
        return f"/{slugify(rng.choice(site.categories))}/{slug}"
    if style == 2:
        return f"/{slug}.html"
    return f"/blog/{slug}"


# --- CommonCrawl ---------------------------------------------------------------------------------------

@dataclass(eq=False)
class C4Doc:
    ref: Ref
    seed: int
    kind: str = "normal"  # normal | exact_copy | near_copy | lorem | brace | few_sentences | contaminated
    original: C4Doc | None = None
    long: bool = False
    timestamp: str = ""
    planted: str = ""  # contaminated: the evaluation-set text copied into one of its paragraphs


def c4_paragraphs(doc: C4Doc) -> list[str]:
    """The text lines of a C4 document (regenerated from its seed)."""
    if doc.original is not None:
        paragraphs = c4_paragraphs(doc.original)
        if doc.kind == "near_copy":
            paragraphs = change_words(paragraphs, random.Random(doc.seed), 2 + doc.seed % 2)
        return paragraphs
    rng = random.Random(doc.seed)
    writer = EnglishWriter(rng, register=rng.choice(("neutral", "neutral", "formal", "casual")))
    if doc.kind == "few_sentences":  # C4 (c4_utils) wants 3 sentences
        return [writer.sentence() + " " + writer.sentence()]
    paragraphs = writer.paragraphs(rng.randint(8, 12) if doc.long else rng.randint(3, 8), 2, 5)
    if doc.kind == "lorem":
        paragraphs.insert(rng.randint(1, len(paragraphs)), "Lorem ipsum dolor sit amet, consectetur "
                          "adipiscing elit, sed do eiusmod tempor incididunt ut labore.")
    elif doc.kind == "brace":
        paragraphs[rng.randrange(len(paragraphs))] += ' The settings file starts with {"mode": "auto"} today.'
    elif doc.kind == "contaminated":
        at = rng.randrange(len(paragraphs))
        paragraphs[at] = f"{paragraphs[at]} {doc.planted}"
    return paragraphs


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


def escape_text(text: str) -> str:
    return html.escape(text, quote=False)


def _link_list(items: list[tuple[str, str]], ul_class: str = "", li_class: str = "",
               a_class: str = "") -> str:
    ul, li, a = (f' class="{c}"' if c else "" for c in (ul_class, li_class, a_class))
    rows = "".join(f'<li{li}><a{a} href="{html.escape(href)}">{escape_text(label)}</a></li>\n'
                   for label, href in items)
    return f"<ul{ul}>\n{rows}</ul>"


def _site_links(rng: random.Random, site: Site, count: int) -> list[tuple[str, str]]:
    """Links to other (made-up) pages of the site, for menus, sidebars and footers."""
    if site.lang != "en":
        writer = ForeignWriter(rng, site.lang)
        return [(writer.title(), f"/article-{rng.randint(100, 99999)}") for _ in range(count)]
    writer = EnglishWriter(rng, topic=site.topic)
    return [(title, "/" + slugify(title)) for title in (writer.title() for _ in range(count))]


_LIST_CLASSES = {"wordpress": ("menu", "menu-item", ""), "bootstrap": ("navbar-nav", "nav-item", "nav-link")}
_META = {"utf-8": '<meta charset="utf-8">\n', "iso-8859-1": '<meta charset="iso-8859-1">\n',
         "windows-1252-meta": '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">\n'}


def render_page(page: Page, paragraphs: list[str]) -> str:
    """A full HTML document around the article: navigation, header, sidebar, cookie banner, footer."""
    site = page.site
    rng = random.Random(page.seed ^ 0x5EED)  # boilerplate randomness, shared by a page and its copies
    heavy, english = page.kind == "heavy", site.lang == "en"
    head = fill_snippet("html.head", LANG=site.lang, META=_META.get(page.charset, ""),
                        TITLE=escape_text(page.title), SITE=escape_text(site.name),
                        DESCRIPTION=html.escape(paragraphs[0][:150]), VERSION=rng.randint(100, 999),
                        URL=html.escape(page.ref.url))
    article = [f"<h1>{escape_text(page.title)}</h1>"]
    if english and page.kind != "short":
        byline = f"By {EnglishWriter(rng).person()} | {page.date.strftime('%B %d, %Y')}"
        article.append(f'<p class="byline">{escape_text(byline)}</p>')
    for index, paragraph in enumerate(paragraphs):
        article.append(f"<p>{escape_text(paragraph)}</p>")
        if index == 1 and page.kind in ("normal", "cited") and rng.random() < 0.2:
            article.append(f'<figure><img src="/images/{rng.randint(1000, 9999)}.jpg" alt="">'
                           f"<figcaption>{escape_text(site.name)} archive photo.</figcaption></figure>")
    if page.kind == "short":  # a bare page: under 300 characters of text in total
        return head + fill_snippet("html.minimal", ARTICLE="\n".join(article), YEAR=page.date.year,
                                   SITE=escape_text(site.name))
    nav = [(label, "/" if i == 0 else "/" + slugify(label)) for i, label in enumerate(site.nav)]
    sidebar = _site_links(rng, site, rng.randint(30, 45) if heavy else rng.randint(4, 8))
    footer_names = _FOOTER_LINKS if english else load_wordfile(site.lang)["footer"]
    footer = [(label, "/" + slugify(label) if english else f"/p/{i}") for i, label in enumerate(footer_names)]
    if heavy:  # mega-menus and link farms around a short article
        nav += _site_links(rng, site, rng.randint(50, 80))
        footer += _site_links(rng, site, rng.randint(60, 90))
    if english:
        copyright_line = (f"&copy; {site.founded}-{page.date.year} {escape_text(site.name)}. "
                          "All rights reserved.")
    else:
        copyright_line = f"&copy; {page.date.year} {escape_text(site.name)}. {escape_text(footer_names[0])}"
    body = fill_snippet(
        f"html.{site.layout}", SITE=escape_text(site.name), ARTICLE="\n".join(article),
        COOKIE=fill_snippet("html.cookie") + "\n" if site.cookie_banner and english else "",
        NAV=_link_list(nav, *_LIST_CLASSES.get(site.layout, ("", "", ""))),
        SIDEBAR_TITLE=("Popular posts" if english else site.nav[1]), SIDEBAR=_link_list(sidebar),
        CATEGORIES=_link_list([(c, "/category/" + slugify(c)) for c in site.categories]),
        NEWSLETTER=fill_snippet("html.newsletter") if english else "", FOOTER=_link_list(footer),
        COPYRIGHT=copyright_line, SOCIAL=fill_snippet("html.social"), POST_ID=rng.randint(10, 9999),
        DATE_LONG=page.date.strftime("%A, %d %B %Y"),
    )
    return head + "\n" + body + "\n"
