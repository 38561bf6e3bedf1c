"""Common Crawl WARC.gz files: warcinfo, request, response and metadata records of HTML pages."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from llamapipe.sources.demo.common import (
    CRAWL_START,
    WARC_FILES,
    Plants,
    Ref,
    draw_ip,
    draw_seed,
    draw_uuid,
    fill_snippet,
    png_bytes,
    scaled_count,
    scaled_files,
    warc_date,
)
from llamapipe.sources.demo.text import (
    FOREIGN_LANGUAGES,
    EnglishWriter,
    ForeignWriter,
    capitalise,
    gibberish_paragraphs,
    lexicon,
)
from llamapipe.sources.demo.web import (
    REVIEWED_NOTE,
    SERVERS,
    C4Doc,
    Page,
    Site,
    make_site,
    page_content,
    render_page,
    slugify,
    url_path,
)


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
        self.english_sites = [make_site(rng, "en", self.domains)
                              for _ in range(scaled_count("cc_sites", scale, 4))]
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
        url = f"https://{site.domain}{url_path(rng, title, site, date)}"
        while url in self.urls:
            url = url.rstrip("/") + f"-{rng.randint(2, 99)}"
        self.urls.add(url)
        record_id = draw_uuid(rng)
        page = Page(Ref("commoncrawl", f"commoncrawl:{record_id}", url), kind, site, draw_seed(rng), title,
                    topic, register, date, record_id, draw_ip(rng), **fields)
        self.pages.append(page)
        return page

    def plan(self, c4_sources: list[C4Doc]) -> None:
        n = lambda name: scaled_count(name, self.scale)  # noqa: E731
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
        for _ in range(scaled_count("cc_404", self.scale)):
            site = rng.choice(self.english_sites)
            url = f"https://{site.domain}/{slugify(EnglishWriter(rng).title())}-{rng.randint(2, 999)}"
            when = CRAWL_START + timedelta(seconds=rng.randint(0, 86400))
            capture = Capture(url, draw_uuid(rng), when, draw_ip(rng), "404 Not Found",
                              "text/html; charset=utf-8", body=fill_snippet("html.notfound").encode())
            ref = Ref("commoncrawl", f"commoncrawl:{capture.record_id}", url)
            self.plants.add("http_errors", ref, status=404)
            captures.append(capture)
        url = f"https://{rng.choice(self.english_sites).domain}/images/logo.png"
        image = Capture(url, draw_uuid(rng), CRAWL_START + timedelta(hours=5), draw_ip(rng), "200 OK",
                        "image/png", body=png_bytes(rng))
        self.plants.add("non_html", Ref("commoncrawl", f"commoncrawl:{image.record_id}", url),
                        content_type="image/png")
        captures.append(image)
        rng.shuffle(captures)
        return captures

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        captures = self._captures()
        files = scaled_files(WARC_FILES, self.scale)
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
        info_id = f"<urn:uuid:{draw_uuid(rng)}>"
        fields = (b"isPartOf: CC-MAIN-demo\r\npublisher: llamapipe demo corpus\r\n"
                  b"description: Generated pages in Common Crawl's WARC layout\r\n"
                  b"software: llamapipe demo-data\r\nformat: WARC File Format 1.0\r\n")
        info_headers = StatusAndHeaders("", [
            ("WARC-Type", "warcinfo"), ("WARC-Date", warc_date(CRAWL_START)), ("WARC-Record-ID", info_id),
            ("WARC-Filename", name), ("Content-Type", "application/warc-fields")], protocol="WARC/1.0")
        writer.write_record(writer.create_warc_record(
            "", "warcinfo", payload=io.BytesIO(fields), length=len(fields), warc_headers=info_headers))
        documents = 0
        for capture in captures:
            common = {"WARC-Date": warc_date(capture.date), "WARC-Warcinfo-ID": info_id,
                      "WARC-IP-Address": capture.ip}
            request_id = f"<urn:uuid:{draw_uuid(rng)}>"
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
                       ("Server", rng.choice(SERVERS)), ("Content-Type", content_type),
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
                    warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:{draw_uuid(rng)}>",
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
