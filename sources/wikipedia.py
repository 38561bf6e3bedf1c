"""Wikipedia: MediaWiki `pages-articles` XML dumps -> plain-text articles plus their reference URLs.

The dump is streamed page by page (memory stays flat on a 20 GB `enwiki` file), each page parsed on
its own (sources/xmlrecords.py): a malformed page (an unclosed tag, an undefined entity) is one drop,
`malformed_xml` with its line and cause, and the pages after it are read. Only the main namespace is
kept, redirects are dropped, and the wikitext is rendered to plain text with mwparserfromhell
(templates, tables, references, media/category/language links and formatting markup removed; link
text kept). The URLs cited by each article are kept in `meta["ref_urls"]`:
they are the positives of the CommonCrawl "is this page reference-like?" classifier.

Wikimedia writes its dumps in UTF-8; a dump re-saved in UTF-16 or UTF-32 (byte-order mark, or a 16-bit
XML declaration) or in another encoding its XML declaration names is read the same way, streaming
(sources/xmlrecords.py), split or whole.

Multistream dumps (`*-pages-articles-multistream*.xml*.bz2`, each bz2 stream holding 100 whole pages)
are split across workers by their index (`*-multistream-index*.txt*.bz2`, lines
`offset:page_id:title`, found next to the dump): runs of streams of about `split_bytes` compressed
bytes become one split each, every stream is decompressed and parsed on its own, and the dump's
<siteinfo> (first stream) is read once while planning. Without an index, or when the index does not
match the dump, the file is streamed whole, which is always correct. Index files matched by an
input glob are skipped.
"""

from __future__ import annotations

import bz2
import io
import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import BinaryIO

import apache_beam as beam
import mwparserfromhell
from apache_beam.io.filesystems import FileSystems
from mwparserfromhell.nodes import (
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.plumbing.names import CLEAN_STAGE, READ_STAGE
from llamapipe.sources.reading import (
    FileSplit,
    ReadFileDoFn,
    ReadSourceFiles,
    SourceOptions,
    make_document,
    open_input,
    open_raw,
    provenance,
    short_name,
)
from llamapipe.sources.xmlrecords import BadRecord, document_encoding, parse_records

SOURCE = "wikipedia"

# Paper: 20 Wikipedia languages written in Latin or Cyrillic script. The one list of them: the config's
# language policy (pipeline/config.py) takes it from here.
RECIPE_LANGUAGES = (
    "bg", "ca", "cs", "da", "de", "en", "es", "fr", "hr", "hu",
    "it", "nl", "pl", "pt", "ro", "ru", "sl", "sr", "sv", "uk",
)


@dataclass
class Options(SourceOptions):
    languages: list[str] = field(default_factory=lambda: list(RECIPE_LANGUAGES))
    # Rendering wikitext is slow (see benchmarks/readers.py), so multistream dumps are split finer
    # than the common default: 16 MB of bz2 is ~80 MB of XML, ~10k pages.
    split_bytes: int = 16 * 1024**2
    # One bz2 stream holds 100 pages; more than this decompressed is not a real stream.
    max_stream_bytes: int = 1024**3


# --------------------------------------------------------------------------------------------------
# Wikitext -> plain text
# --------------------------------------------------------------------------------------------------

# Link prefixes whose links are not text on the rendered page: media (File/Image/Media, namespace 6
# and -2) and categories (namespace 14), canonical names plus the local names and aliases of the
# recipe languages. A dump's own <siteinfo> names are added at read time. Compared lowercased.
HIDDEN_LINK_NAMESPACES = frozenset(
    name.lower()
    for name in (
        # canonical
        "File", "Image", "Media", "Category",
        # bg, ru, uk, sr (Cyrillic)
        "Файл", "Картинка", "Изображение", "Медия", "Медиа", "Категория", "Зображення", "Медіа",
        "Категорія", "Датотека", "Слика", "Категорија",
        # ca, es, pt, it, ro
        "Fitxer", "Imatge", "Arxiu", "Categoria", "Archivo", "Imagen", "Categoría", "Medio",
        "Ficheiro", "Arquivo", "Imagem", "Mídia", "Immagine", "Fișier", "Fişier", "Imagine",
        "Categorie",
        # cs, pl, hr, sl, sr (Latin), hu
        "Soubor", "Obrázek", "Kategorie", "Plik", "Grafika", "Kategoria", "Datoteka", "Slika",
        "Kategorija", "Fájl", "Kép", "Kategória", "Média",
        # da, sv, de, nl, fr
        "Fil", "Billede", "Kategori", "Bild", "Datei", "Medium", "Bestand", "Afbeelding",
        "Fichier", "Catégorie",
    )
)

# Interlanguage link prefixes ([[de:Foo]] without a leading colon is not shown in the article text).
WIKIPEDIA_LANGUAGE_CODES = frozenset(
    """aa ab ace ady af ak als alt am ami an ang anp ar arc ary arz as ast atj av avk awa ay az azb ba
    ban bar bat-smg bcl be be-tarask be-x-old bg bh bi bjn blk bm bn bo bpy br bs bug bxr ca cbk-zam
    cdo ce ceb ch cho chr chy ckb co cr crh cs csb cu cv cy da dag de din diq dsb dty dv dz ee el eml
    en eo es et eu ext fa fat ff fi fiu-vro fj fo fr frp frr fur fy ga gag gan gcr gd gl glk gn gom
    gor got gpe gu guc gur guw gv ha hak haw he hi hif ho hr hsb ht hu hy hyw hz ia id ie ig ii ik
    ilo inh io is it iu ja jam jbo jv ka kaa kab kbd kbp kcg kg ki kj kk kl km kn ko koi kr krc ks
    ksh ku kv kw ky la lad lb lbe lez lfn lg li lij lld lmo ln lo lrc lt ltg lv mad mai map-bms mdf
    mg mh mhr mi min mk ml mn mni mnw mr mrj ms mt mus mwl my myv mzn na nah nap nb nds nds-nl ne new
    ng nia nl nn no nov nqo nrm nso nv ny oc olo om or os pa pag pam pap pcd pcm pdc pfl pi pih pl
    pms pnb pnt ps pt pwn qu rm rmy rn ro roa-rup roa-tara ru rue rw sa sah sat sc scn sco sd se sg
    sh shi shn si simple sk skr sl sm smn sn so sq sr srn ss st stq su sv sw szl szy ta tay tcy te
    tet tg th ti tk tl tn to tpi tr trv ts tt tum tw ty tyv udm ug uk ur uz ve vec vep vi vls vo wa
    war wo wuu xal xh xmf yi yo za zea zh zh-classical zh-min-nan zh-yue zu""".split()
)

# Tags whose content is not running text: dropped with everything inside.
DROPPED_TAGS = frozenset(
    """ref references math chem ce gallery table timeline score graph templatedata templatestyles
    imagemap hiero mapframe maplink indicator categorytree inputbox includeonly section hr""".split()
)

# Tags whose content is cut out with a regex before parsing: mwparserfromhell falls back to plain text
# for a whole <ref> when its content is malformed (e.g. an unbalanced '' inside), which would leak
# "<ref>...</ref>" into the article.
PRESTRIPPED_TAGS = "|".join(sorted(DROPPED_TAGS - {"ref", "table", "hr", "section"}))
COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
SELF_CLOSING_REF = re.compile(r"<ref(?:\s[^<>]*?)?/\s*>", re.IGNORECASE)
PAIRED_REF = re.compile(r"<ref(?:\s[^<>]*)?>(.*?)</ref\s*>", re.IGNORECASE | re.DOTALL)
PRESTRIPPED = re.compile(
    rf"<({PRESTRIPPED_TAGS})\b[^<>]*?/>|<({PRESTRIPPED_TAGS})\b[^<>]*>.*?</\2\s*>",
    re.IGNORECASE | re.DOTALL,
)
TABLE_START = re.compile(r"^[\s:]*\{\|")
TABLE_END = re.compile(r"^\s*\|\}")

# Leftovers of markup mwparserfromhell could not parse (it keeps broken constructs as text).
LEFTOVER_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
LEFTOVER_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
LEFTOVER_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:)?//[^\s\[\]]+\s*([^\[\]]*)\]", re.IGNORECASE)
HTML_TAG_NAMES = (
    "a abbr b bdi big blockquote br caption center cite code dd del dfn div dl dt em font h1 h2 h3 h4 "
    "h5 h6 i ins kbd li mark nowiki ol onlyinclude noinclude p poem pre q rb rp rt ruby s samp small "
    "source span strike strong sub sup syntaxhighlight td th tr tt u ul var wbr ref references"
)
LEFTOVER_TAG = re.compile(rf"</?(?:{'|'.join(HTML_TAG_NAMES.split())})\b[^<>]*>", re.IGNORECASE)
QUOTES_INSIDE_WORD = re.compile(r"(?<=\w)'''(?=\w)")  # ''Iliad'''s: closing italics + apostrophe
QUOTE_MARKUP = re.compile(r"'{2,}")
STRAY_MARKUP = re.compile(r"\{\{|\}\}|\[\[|\]\]|\{\||\|\}")

MAGIC_WORD = re.compile(r"__[A-Z]+__")
EMPTY_PARENTHESES = re.compile(r"\(\s*[,;:]?\s*\)")
INLINE_SPACES = re.compile(r"[ \t\u00a0]{2,}")
MANY_NEWLINES = re.compile(r"\n{3,}")
# Headings are rendered as a line starting with this marker + level, so that headings of sections
# left empty (e.g. "References" holding only {{reflist}}) can be removed afterwards.
HEADING_MARK = "\x00"
# Blank lines of the source (paragraph breaks) are marked before parsing, so that after rendering
# they can be told apart from lines that became empty (a line of category links, a template, ...).
PARAGRAPH_MARK = "\ue000"
BLANK_LINE = re.compile(r"\n[ \t]*\n")


def strip_tables(wikitext: str) -> str:
    """Remove wiki tables (`{|` ... `|}` lines, nested), keeping text after a closing `|}` on its
    line (e.g. the `}}` of an enclosing template)."""
    kept: list[str] = []
    depth = 0
    for line in wikitext.split("\n"):
        if TABLE_START.match(line):
            depth += 1
            continue
        if depth:
            end = TABLE_END.match(line)
            if end:
                depth -= 1
                rest = line[end.end():]
                if depth == 0 and rest.strip():
                    kept.append(rest)
            continue
        kept.append(line)
    return "\n".join(kept)


def preclean(wikitext: str) -> tuple[str, list[str]]:
    """Cut comments, references, tables and other non-text tags out of raw wikitext.

    Returns the remaining wikitext and the contents of the <ref> tags (for their URLs)."""
    wikitext = COMMENT.sub("", wikitext)
    wikitext = SELF_CLOSING_REF.sub("", wikitext)
    references: list[str] = []

    def keep_reference(match: re.Match) -> str:
        references.append(match.group(1))
        return ""

    wikitext = PAIRED_REF.sub(keep_reference, wikitext)
    wikitext = PRESTRIPPED.sub("", wikitext)
    wikitext = BLANK_LINE.sub(f"\n{PARAGRAPH_MARK}\n", strip_tables(wikitext.replace(PARAGRAPH_MARK, "")))
    return wikitext, references


def _leftover_link(match: re.Match, hidden: frozenset[str]) -> str:
    inner = match.group(1)
    title = inner.split("|", 1)[0].strip()
    prefix = title.lstrip(":").split(":", 1)[0].strip().lower() if ":" in title else ""
    if not title.startswith(":") and prefix and (prefix in hidden or prefix in WIKIPEDIA_LANGUAGE_CODES):
        return ""
    return inner.rsplit("|", 1)[-1] if "|" in inner else title.lstrip(":")


def scrub_leftovers(text: str, hidden: frozenset[str] = HIDDEN_LINK_NAMESPACES) -> str:
    """Remove markup that survived rendering because it was too broken to parse."""
    for _ in range(5):  # innermost first; anything nested deeper is cut by STRAY_MARKUP
        before = text
        text = LEFTOVER_TEMPLATE.sub("", text)
        text = LEFTOVER_LINK.sub(lambda match: _leftover_link(match, hidden), text)
        if text == before:
            break
    text = LEFTOVER_EXTERNAL_LINK.sub(r"\1", text)
    text = LEFTOVER_TAG.sub("", text)
    text = QUOTES_INSIDE_WORD.sub("'", text)
    text = QUOTE_MARKUP.sub("", text)
    return STRAY_MARKUP.sub("", text)


class WikitextRenderer:
    """Renders a parsed page to plain text. `hidden_namespaces` are lowercased link prefixes whose
    links are invisible on the page (media and category links)."""

    def __init__(self, hidden_namespaces: frozenset[str] = HIDDEN_LINK_NAMESPACES):
        self._hidden = hidden_namespaces

    def render(self, code: Wikicode | None) -> str:
        if code is None:
            return ""
        return "".join(self._node(node) for node in code.nodes)

    def _node(self, node) -> str:
        if isinstance(node, Text):
            return str(node.value)
        if isinstance(node, Wikilink):
            return self._wikilink(node)
        if isinstance(node, ExternalLink):
            if node.title is not None:
                return self.render(node.title)
            # "[http://x]" renders as a footnote number; a bare URL is visible text.
            return "" if node.brackets else str(node.url)
        if isinstance(node, Tag):
            return self._tag(node)
        if isinstance(node, Heading):
            title = " ".join(self.render(node.title).split())
            return f"\n{PARAGRAPH_MARK}\n{HEADING_MARK}{node.level}{title}\n" if title else "\n"
        if isinstance(node, HTMLEntity):
            try:
                return node.normalize().replace("\u00a0", " ")
            except ValueError:
                return ""
        # Template, Argument ({{{1}}}), Comment and anything unknown: not article text.
        return ""

    def _tag(self, node: Tag) -> str:
        name = str(node.tag).strip().lower()
        if name in DROPPED_TAGS:
            return ""
        if name == "br":
            return "\n"
        if node.self_closing or node.contents is None:
            return ""  # list markers (* # : ;), <references/>, ...
        return self.render(node.contents)

    def _wikilink(self, node: Wikilink) -> str:
        title = str(node.title).strip()
        shown_as_link = title.startswith(":")  # [[:Category:X]] / [[:fr:X]] are ordinary links
        bare = title.lstrip(":").strip()
        prefix = bare.split(":", 1)[0].strip().lower() if ":" in bare else ""
        if not shown_as_link and prefix and (prefix in self._hidden or prefix in WIKIPEDIA_LANGUAGE_CODES):
            return ""
        if node.text is not None:
            text = self.render(node.text)
            if text.strip():
                return text
            return pipe_trick(bare)  # [[Foo (bar)|]] shows "Foo"
        return bare


def pipe_trick(title: str) -> str:
    """Text MediaWiki shows for `[[title|]]`: no namespace, no trailing "(...)" or ", ..." part."""
    title = title.split(":", 1)[-1]
    title = re.sub(r"\s*\([^()]*\)\s*$", "", title)
    return title.split(",", 1)[0].strip()


def _drop_empty_sections(lines: list[str]) -> list[str]:
    """Remove heading lines whose section (up to the next heading of the same or a higher level)
    has no text, e.g. "References" when its only content was {{reflist}}."""
    kept: list[str] = []
    for index, line in enumerate(lines):
        if not line.startswith(HEADING_MARK):
            kept.append(line)
            continue
        level = int(line[1])
        has_text = False
        for following in lines[index + 1:]:
            if following.startswith(HEADING_MARK):
                if int(following[1]) <= level:
                    break
                continue
            if following:
                has_text = True
                break
        if has_text:
            kept.append(line[2:])
    return kept


def tidy_text(rendered: str) -> str:
    """Whitespace and leftover clean-up of rendered wikitext."""
    rendered = MAGIC_WORD.sub("", rendered)
    rendered = EMPTY_PARENTHESES.sub("", rendered)
    lines: list[str] = []
    for line in rendered.split("\n"):
        line = INLINE_SPACES.sub(" ", line).strip()
        if line == PARAGRAPH_MARK:
            lines.append("")  # a paragraph break of the source
        elif line:
            lines.append(line.replace(PARAGRAPH_MARK, "").strip())
        # else: a line that only held markup; it goes without leaving a gap
    lines = _drop_empty_sections(lines)
    return MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def _url_of(value: Wikicode) -> str | None:
    """A citation's `url=` value as an absolute http(s)/ftp URL, or None."""
    url = "".join(str(node) for node in value.nodes if not isinstance(node, Comment)).strip()
    if url.startswith("//"):
        url = "https:" + url
    if re.match(r"(?i)^(https?|ftp)://[^\s<>\[\]{}|]+$", url):
        return url
    return None


def _is_citation(name: str) -> bool:
    name = name.strip().lower().replace("_", " ")
    if name.startswith("template:"):
        name = name[len("template:"):].strip()
    return name.startswith("cite") or name == "citation"


def reference_urls(code: Wikicode, references: list[str] = ()) -> list[str]:
    """URLs the article cites: `url=` of cite templates (in the article or in its references) and
    external links inside <ref> tags (`references`: the raw contents of those tags)."""
    urls: list[str | None] = []

    def cite_urls(wikicode: Wikicode) -> None:
        for template in wikicode.ifilter_templates(recursive=True):
            if _is_citation(str(template.name)) and template.has("url"):
                urls.append(_url_of(template.get("url").value))

    cite_urls(code)
    for reference in references:
        parsed = mwparserfromhell.parse(reference)
        cite_urls(parsed)
        urls.extend(_url_of(link.url) for link in parsed.ifilter_external_links(recursive=True))
    return list(dict.fromkeys(url for url in urls if url))


def render_article(wikitext: str, hidden_namespaces: frozenset[str] = HIDDEN_LINK_NAMESPACES):
    """(plain text, reference URLs) of one article's wikitext."""
    wikitext, references = preclean(wikitext)
    code = mwparserfromhell.parse(wikitext)
    rendered = WikitextRenderer(hidden_namespaces).render(code)
    return tidy_text(scrub_leftovers(rendered, hidden_namespaces)), reference_urls(code, references)


def is_redirect(wikitext: str) -> bool:
    return wikitext.lstrip()[:9].upper() == "#REDIRECT"


# --------------------------------------------------------------------------------------------------
# XML dump streaming
# --------------------------------------------------------------------------------------------------

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass
class SiteInfo:
    dbname: str = ""
    base: str = ""
    xml_lang: str = ""
    namespaces: dict[int, str] = field(default_factory=dict)


@dataclass
class Page:
    title: str
    ns: int
    page_id: str
    redirect: bool
    timestamp: str
    text: str


def _local(tag: str) -> str:
    """Element name without its XML namespace (the export schema version varies: 0.3 ... 0.11)."""
    return tag.rsplit("}", 1)[-1]


def _child(element, name: str):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element, name: str) -> str:
    child = _child(element, name) if element is not None else None
    return (child.text or "") if child is not None else ""


def _parse_siteinfo(element, xml_lang: str) -> SiteInfo:
    info = SiteInfo(_child_text(element, "dbname").strip(), _child_text(element, "base").strip(), xml_lang)
    namespaces = _child(element, "namespaces")
    for namespace in namespaces if namespaces is not None else ():
        try:
            info.namespaces[int(namespace.get("key", ""))] = (namespace.text or "").strip()
        except ValueError:
            continue
    return info


def _namespace_of_title(title: str, site: SiteInfo) -> int:
    """Namespace of a page in old exports without <ns>: from the title prefix."""
    if ":" in title:
        prefix = title.split(":", 1)[0].strip().lower()
        for key, name in site.namespaces.items():
            if key != 0 and name and name.lower() == prefix:
                return key
    return 0


def _parse_page(element, site: SiteInfo) -> Page:
    title = _child_text(element, "title")
    ns_text = _child_text(element, "ns").strip()
    ns = int(ns_text) if ns_text.lstrip("-").isdigit() else _namespace_of_title(title, site)
    revisions = [child for child in element if _local(child.tag) == "revision"]
    revision = revisions[-1] if revisions else None  # full-history dumps: the latest revision
    return Page(
        title=title,
        ns=ns,
        page_id=_child_text(element, "id").strip(),
        redirect=_child(element, "redirect") is not None,
        timestamp=_child_text(revision, "timestamp").strip(),
        text=_child_text(revision, "text"),
    )


def _site_of_head(root) -> SiteInfo:
    siteinfo = _child(root, "siteinfo")
    xml_lang = root.get(XML_LANG, "")
    return _parse_siteinfo(siteinfo, xml_lang) if siteinfo is not None else SiteInfo(xml_lang=xml_lang)


def iter_dump(stream: BinaryIO, site: SiteInfo | None = None,
              encoding: str | None = None) -> Iterator[SiteInfo | Page | BadRecord]:
    """Stream a pages-articles XML: yields the SiteInfo once (before the first page), then a Page or,
    for a page that does not parse, a BadRecord. With `site` given (a part of a dump whose <siteinfo>
    was read elsewhere), only Pages and BadRecords, and a stream without a <mediawiki> root is fine;
    `encoding` is then the dump's, as its start names it (None: UTF-8). A whole dump may be in any
    encoding its byte-order mark or XML declaration names, UTF-16 included (see xmlrecords).

    Each page is parsed on its own (see xmlrecords), so a malformed page costs only itself and memory
    does not grow with the dump. Parsing resolves no entity and fetches nothing: an entity declared in
    the dump's DOCTYPE (external, or a billion-laughs bomb) is undefined in the page that uses it."""
    for item in parse_records(stream, root="mediawiki", tag="page", require_document=site is None,
                              encoding=encoding):
        if isinstance(item, BadRecord):
            yield item
            continue
        piece, element = item
        if piece.head:
            if site is None and element is not None:
                site = _site_of_head(element)
                yield site
            continue
        if site is None:  # the head was empty or malformed
            site = SiteInfo()
            yield site
        yield _parse_page(element, site)


# --------------------------------------------------------------------------------------------------
# Dump language
# --------------------------------------------------------------------------------------------------

_FILE_NAME_LANG = re.compile(r"(?:^|[^a-z])([a-z]{2,3}(?:_[a-z]+)*)wiki[-_.]")
_DBNAME_LANG = re.compile(r"^([a-z][a-z_]*)wiki$")
_BASE_LANG = re.compile(r"^https?://([a-z][a-z-]*)\.wikipedia\.org/", re.IGNORECASE)


def dump_language(site: SiteInfo, file_name: str) -> str:
    """Wikipedia language code of a dump, "" when unknown or not a Wikipedia (e.g. `enwiktionary`):
    from <dbname>, else the file name (`dewiki-...`), else <base>, else the root's xml:lang."""
    if site.dbname:
        match = _DBNAME_LANG.match(site.dbname)
        return match.group(1).replace("_", "-") if match else ""
    match = _FILE_NAME_LANG.search(file_name)
    if match:
        return match.group(1).replace("_", "-")
    if site.base:
        match = _BASE_LANG.match(site.base)
        return match.group(1).lower() if match else ""
    return site.xml_lang.strip().lower()


def article_url(lang: str, title: str) -> str:
    return f"https://{lang}.wikipedia.org/wiki/{title.replace(' ', '_')}"


# --------------------------------------------------------------------------------------------------
# Beam
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Multistream dumps
# --------------------------------------------------------------------------------------------------

_MULTISTREAM_DUMP = re.compile(r"multistream(\d*)\.xml")
_INDEX_FILE = re.compile(r"-index\d*\.txt", re.IGNORECASE)
# Every bz2 stream starts with "BZh", the block size digit, then the block magic (pi in BCD) or,
# for an empty stream, the end-of-stream magic (sqrt(pi)).
_BZ2_STREAM_START = re.compile(rb"BZh[1-9](?:\x31\x41\x59\x26\x53\x59|\x17\x72\x45\x38\x50\x90)")


def is_index_file(path: str) -> bool:
    return bool(_INDEX_FILE.search(short_name(path)))


def multistream_index_path(path: str) -> str | None:
    """Where the index of a multistream dump is published: `...-multistream.xml.bz2` ->
    `...-multistream-index.txt.bz2`; `...-multistream3.xml-p1p41242.bz2` ->
    `...-multistream-index3.txt-p1p41242.bz2`. None for other files."""
    folder, name = FileSystems.split(path)
    if is_index_file(name) or not _MULTISTREAM_DUMP.search(name):
        return None
    return FileSystems.join(folder, _MULTISTREAM_DUMP.sub(r"multistream-index\1.txt", name, count=1))


def read_stream_offsets(index_path: str) -> list[int]:
    """The distinct stream offsets of a multistream index (`offset:page_id:title` lines), sorted."""
    offsets: set[int] = set()
    with open_input(index_path) as stream:
        for line in stream:
            head = line.split(b":", 1)[0].strip()
            if head:
                offsets.add(int(head))
    return sorted(offsets)


def parse_stream(data: bytes, site: SiteInfo | None = None,
                 encoding: str | None = None) -> Iterator[SiteInfo | Page | BadRecord]:
    """The pages of one decompressed multistream stream: a run of whole <page> elements, or the
    dump's head (`<mediawiki ...><siteinfo>...`), or its tail (`</mediawiki>`). `encoding`: the dump's,
    for a stream after the head (which has no XML declaration or byte-order mark of its own)."""
    yield from iter_dump(io.BytesIO(data), site, encoding)


def decompress_stream(raw: BinaryIO, start: int, stop: int | None, max_bytes: int) -> bytes:
    """Decompress the bz2 stream(s) stored at bytes [start, stop) of `raw` (to the end if None)."""
    raw.seek(start)
    compressed = raw.read() if stop is None else raw.read(stop - start)
    parts, total = [], 0
    while compressed:
        decompressor = bz2.BZ2Decompressor()
        part = decompressor.decompress(compressed, max_bytes - total + 1)
        total += len(part)
        if total > max_bytes or not decompressor.eof:
            if total > max_bytes:
                raise ValueError(f"stream decompresses to more than {max_bytes} bytes")
            raise EOFError("bz2 stream ends early (truncated file or wrong index)")
        parts.append(part)
        compressed = decompressor.unused_data
    return b"".join(parts)


def read_head(path: str, first_page_stream: int, max_bytes: int) -> tuple[SiteInfo, str | None]:
    """The <siteinfo> of a multistream dump and the dump's encoding (None: UTF-8), from its head stream
    (the bytes before the first page)."""
    with closing(open_raw(path)) as raw:
        head = decompress_stream(raw, 0, first_page_stream or None, max_bytes)
    site = next((item for item in parse_stream(head) if isinstance(item, SiteInfo)), SiteInfo())
    return site, document_encoding(head)


def plan_multistream_splits(path: str, size: int, split_bytes: int, max_stream_bytes: int) -> list[FileSplit]:
    """Runs of whole streams of about `split_bytes`, from the dump's index; [whole file] when there is
    no index or it does not fit the dump. Each split's context is (siteinfo, its stream offsets, the
    dump's encoding): a stream of pages is parsed on its own, so it is told the encoding (UTF-16 too,
    each stream holding whole pages) that only the dump's head names."""
    index = multistream_index_path(path)
    if size <= split_bytes or index is None or not FileSystems.exists(index):
        return [FileSplit(path)]
    offsets = read_stream_offsets(index)
    if not offsets or offsets[-1] >= size:
        raise ValueError(f"{index} does not fit {path}: offsets past the end of the file")
    streams = ([0] if offsets[0] != 0 else []) + offsets  # stream 0: the dump's head
    runs: list[list[int]] = [[]]
    for offset in streams:
        if runs[-1] and offset - runs[-1][0] >= split_bytes:
            runs.append([])
        runs[-1].append(offset)
    if len(runs) == 1:
        return [FileSplit(path)]
    with closing(open_raw(path)) as raw:
        for start in [offsets[0]] + [run[0] for run in runs[1:]]:
            raw.seek(start)
            if not _BZ2_STREAM_START.match(raw.read(10)):
                raise ValueError(f"{index} does not fit {path}: no bz2 stream starts at byte {start}")
    site, encoding = read_head(path, offsets[0], max_stream_bytes)
    stops = [run[0] for run in runs[1:]] + [None]
    return [FileSplit(path, run[0], stop, context=(site, tuple(run), encoding))
            for run, stop in zip(runs, stops, strict=True)]


# --------------------------------------------------------------------------------------------------
# Beam
# --------------------------------------------------------------------------------------------------


class ReadDumpFile(ReadFileDoFn):
    """A pages-articles XML(.bz2) file, or a run of streams of a multistream dump -> one document or
    one drop per main-namespace page."""

    source = SOURCE

    def __init__(self, options: Options):
        super().__init__()
        self._languages = frozenset(options.languages)
        self._max_stream_bytes = options.max_stream_bytes
        self._max_decompressed_bytes = options.max_decompressed_bytes

    def plan(self, path: str, size: int, split_bytes: int) -> list[FileSplit]:
        if is_index_file(path):
            beam.metrics.Metrics.counter(SOURCE, "skipped.index_file").inc()
            return []
        return plan_multistream_splits(path, size, split_bytes, self._max_stream_bytes)

    def read_split(self, split: FileSplit) -> Iterator:
        if split.whole_file:
            with open_input(split.path, self._max_decompressed_bytes) as stream:
                yield from self._pages(iter_dump(stream), split.path, None)
            return
        # A multistream part: each bz2 stream is decompressed and parsed on its own.
        site, offsets, encoding = split.context
        name = short_name(split.path)
        with closing(open_raw(split.path)) as raw:
            for index, offset in enumerate(offsets):
                stop = offsets[index + 1] if index + 1 < len(offsets) else split.stop
                try:
                    data = decompress_stream(raw, offset, stop, self._max_stream_bytes)
                    pages = list(parse_stream(data, site, encoding))
                except Exception as exc:  # noqa: BLE001 - a corrupt stream costs its pages, not the split
                    yield drop(SOURCE, READ_STAGE, "unreadable_stream", f"{SOURCE}:{name}@{offset}",
                               f"{split.path} stream at byte {offset}: {type(exc).__name__}: {exc}")
                    continue
                yield from self._pages(pages, split.path, site, offset)

    def _pages(self, items, path: str, site: SiteInfo | None, offset: int | None = None) -> Iterator:
        """Documents and drops for the pages among `items` (a SiteInfo item sets the dump's site).
        `offset`: of the bz2 stream the items come from, None for a whole file."""
        skipped_namespace = beam.metrics.Metrics.counter(SOURCE, "skipped.namespace")
        lang, hidden = self._site_settings(site, path) if site is not None else ("", HIDDEN_LINK_NAMESPACES)
        for item in items:
            if isinstance(item, SiteInfo):
                if site is None:
                    lang, hidden = self._site_settings(item, path)
                continue
            if isinstance(item, BadRecord):
                yield self._bad_record(item, path, offset)
                continue
            if item.ns != 0:
                skipped_namespace.inc()
                continue
            yield from self._page(item, lang, hidden, provenance(path, page_id=item.page_id, offset=offset))

    @staticmethod
    def _bad_record(record: BadRecord, path: str, offset: int | None):
        """One drop for a page (or the dump's head) that does not parse: identified by its line, in
        the file or, for a multistream part, in its bz2 stream."""
        name = short_name(path) if offset is None else f"{short_name(path)}@{offset}"
        stream = "" if offset is None else f" (bz2 stream at byte {offset})"
        where = "head" if record.head else record.line
        return drop(SOURCE, READ_STAGE, record.reason, f"{SOURCE}:{name}:{where}",
                    f"{path}{stream}: {record.detail}")

    @staticmethod
    def _site_settings(site: SiteInfo, path: str) -> tuple[str, frozenset[str]]:
        """The dump's language and the link prefixes hidden in its articles."""
        local_names = {site.namespaces.get(key, "").lower() for key in (-2, 6, 14)}
        return dump_language(site, short_name(path)), HIDDEN_LINK_NAMESPACES | (local_names - {""})

    def _page(self, page: Page, lang: str, hidden: frozenset[str], position: dict) -> Iterator:
        doc_id = f"{SOURCE}:{lang or 'unknown'}/{page.page_id or page.title}"
        if not lang:
            yield drop(SOURCE, READ_STAGE, "language_unknown", doc_id, page.title)
            return
        if lang not in self._languages:
            yield drop(SOURCE, READ_STAGE, "language_not_in_recipe", doc_id, lang)
            return
        if not page.page_id:
            yield drop(SOURCE, READ_STAGE, "missing_page_id", doc_id, page.title)
            return
        if page.redirect or is_redirect(page.text):
            yield drop(SOURCE, CLEAN_STAGE, "redirect", doc_id, page.title)
            return
        try:
            text, ref_urls = render_article(page.text, hidden)
        except Exception as exc:  # noqa: BLE001 - one pathological page must not end the file
            yield drop(SOURCE, READ_STAGE, "unparseable_wikitext", doc_id, f"{type(exc).__name__}: {exc}")
            return
        if not text:
            yield drop(SOURCE, CLEAN_STAGE, "empty", doc_id, page.title)
            return
        yield make_document(
            SOURCE,
            doc_id,
            text,
            article_url(lang, page.title),
            title=page.title,
            wiki_lang=lang,
            ref_urls=ref_urls,
            revision_timestamp=page.timestamp,
            **position,
        )


class Read(ReadSourceFiles):
    """Wikipedia dumps -> {"documents", "dropped"}."""

    dofn_class = ReadDumpFile
    step_label = "ReadWikipediaDumps"
