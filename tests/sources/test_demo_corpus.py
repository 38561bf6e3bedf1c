"""The demo corpus generator: real dump formats read by the real tooling, determinism, size, and the
planted cases (other languages, duplicates, spam, licences, ...) that `plants.json` promises.

The repetition and quality measures below are written here, independently of the pipeline's filters,
so that the generated normal English provably passes the Gopher and C4 rules.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import re
import tarfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from llamapipe.sources.demo import write_demo_corpus
from llamapipe.sources.demo.text import FOREIGN_LANGUAGES, lexicon, load_wordfile

MW = "{http://www.mediawiki.org/xml/export-0.10/}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    summary = write_demo_corpus(out, seed=0, scale=1.0)
    seconds = time.perf_counter() - started
    plants = json.loads((out / "plants.json").read_text(encoding="utf-8"))
    return {"dir": out, "summary": summary, "plants": plants, "seconds": seconds}


# --- readers (the real tooling) ------------------------------------------------------------------------

class ArticleText(HTMLParser):
    """Paragraph texts inside <article> (not the byline), and all visible text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self.visible: list[str] = []
        self._article = self._paragraph = self._hidden = 0
        self._current: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "article":
            self._article += 1
        elif tag == "p" and self._article and dict(attrs).get("class") != "byline":
            self._paragraph, self._current = 1, []
        elif tag in ("script", "style", "title"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag == "article":
            self._article -= 1
        elif tag == "p" and self._paragraph:
            self._paragraph = 0
            self.paragraphs.append("".join(self._current))
        elif tag in ("script", "style", "title"):
            self._hidden -= 1

    def handle_data(self, data):
        if self._paragraph:
            self._current.append(data)
        if not self._hidden and data.strip():
            self.visible.append(data.strip())


def parse_html(body: bytes, charset: str = "utf-8") -> ArticleText:
    parser = ArticleText()
    parser.feed(body.decode(charset))
    return parser


def declared_charset(content_type: str, body: bytes) -> str:
    match = re.search(r"charset=([\w-]+)", content_type) or re.search(rb'charset="?([\w-]+)', body[:600])
    if match is None:
        return "utf-8"
    value = match.group(1)
    return value.decode() if isinstance(value, bytes) else value


@pytest.fixture(scope="module")
def warc(corpus):
    """url -> {id, status, type, body} for every response, plus record-type counts."""
    responses, types = {}, Counter()
    for path in sorted((corpus["dir"] / "commoncrawl").glob("*.warc.gz")):
        with open(path, "rb") as handle:
            for index, record in enumerate(ArchiveIterator(handle)):
                types[record.rec_type] += 1
                if index == 0:
                    assert record.rec_type == "warcinfo"
                if record.rec_type != "response":
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI")
                record_id = record.rec_headers.get_header("WARC-Record-ID")
                responses[url] = {
                    "id": "commoncrawl:" + record_id.removeprefix("<urn:uuid:").removesuffix(">"),
                    "status": record.http_headers.get_statuscode(),
                    "type": record.http_headers.get_header("Content-Type") or "",
                    "body": record.content_stream().read(),
                }
    return {"responses": responses, "types": types}


def page_paragraphs(warc, url: str) -> list[str]:
    response = warc["responses"][url]
    return parse_html(response["body"], declared_charset(response["type"], response["body"])).paragraphs


@pytest.fixture(scope="module")
def c4(corpus):
    """id -> record, read as C4 is: gzip + one JSON object per line."""
    docs = {}
    for path in sorted((corpus["dir"] / "c4").glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                record = json.loads(line)
                assert set(record) == {"text", "url", "timestamp"}
                docs[f"c4:{path.name}:{line_number}"] = record
    return docs


@pytest.fixture(scope="module")
def github(corpus):
    rows = {}
    for path in sorted((corpus["dir"] / "github").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                assert set(row) == {"content", "repo_name", "path", "license", "language"}
                rows[f"github:{row['repo_name']}/{row['path']}"] = row
    return rows


@pytest.fixture(scope="module")
def wiki(corpus):
    with bz2.open(corpus["dir"] / "wikipedia" / "enwiki-20240601-pages-articles.xml.bz2") as handle:
        root = ET.parse(handle).getroot()
    pages = {}
    for page in root.iter(MW + "page"):
        text = page.find(f"{MW}revision/{MW}text")
        pages[f"wikipedia:en/{page.findtext(MW + 'id')}"] = {
            "title": page.findtext(MW + "title"), "ns": int(page.findtext(MW + "ns")),
            "redirect": page.find(MW + "redirect"), "text": text.text, "bytes": int(text.get("bytes")),
        }
    return {"root": root, "pages": pages}


@pytest.fixture(scope="module")
def stackexchange(corpus):
    sites = {}
    for posts in sorted((corpus["dir"] / "stackexchange").glob("*/Posts.xml")):
        sites[posts.parent.name.removesuffix(".stackexchange.com")] = ET.parse(posts).getroot().findall("row")
    return sites


# --- measures (Gopher and C4 rules, written independently of the pipeline) --------------------------------

STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}
TOP_NGRAM_LIMITS = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAM_LIMITS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def normalised_words(text: str) -> list[str]:
    return [w for w in (re.sub(r"[^\w]", "", token.lower()) for token in text.split()) if w]


def duplicate_line_fraction(text: str) -> float:
    lines = [line for line in text.split("\n") if line.strip()]
    counts = Counter(lines)
    return sum(len(line) for line in lines if counts[line] > 1) / max(1, sum(map(len, lines)))


def top_ngram_fraction(words: list[str], n: int, text_length: int) -> float:
    grams = Counter(zip(*(words[i:] for i in range(n)), strict=False))
    if not grams:
        return 0.0
    gram, count = grams.most_common(1)[0]
    return len(" ".join(gram)) * count / text_length


def duplicate_ngram_fraction(words: list[str], n: int) -> float:
    """Characters of all words covered by an n-gram occurring twice or more (first occurrences too, so
    this is stricter than the usual measure that counts only the repeats)."""
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    counts = Counter(grams)
    covered = [False] * len(words)
    for start, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[start:start + n] = [True] * n
    return sum(len(w) for w, hit in zip(words, covered, strict=True) if hit) / max(1, sum(map(len, words)))


def rule_violations(text: str) -> list[str]:
    """Gopher quality and repetition rules, and the C4 line and document rules."""
    words = normalised_words(text)
    problems = []
    if len(words) < 50:
        problems.append("too_few_words")
    raw_words = text.split()
    if not 3 <= sum(map(len, raw_words)) / max(1, len(raw_words)) <= 10:
        problems.append("mean_word_length")
    if sum(any(ch.isalpha() for ch in w) for w in raw_words) < 0.8 * len(raw_words):
        problems.append("alphabetic_words")
    if len(STOP_WORDS & set(words)) < 2:
        problems.append("stop_words")
    if duplicate_line_fraction(text) > 0.2:
        problems.append("duplicate_lines")
    problems += [f"top_{n}gram" for n, limit in TOP_NGRAM_LIMITS.items()
                 if top_ngram_fraction(words, n, len(text)) > limit]
    problems += [f"duplicate_{n}gram" for n, limit in DUP_NGRAM_LIMITS.items()
                 if duplicate_ngram_fraction(words, n) > limit]
    for line in text.split("\n"):
        if not line.rstrip().endswith((".", "?", "!", '"', "'")) or len(line.split()) < 3:
            problems.append("c4_line")
    if len(re.findall(r"[.?!](\s|$)", text)) < 5:
        problems.append("c4_sentences")
    lower = text.lower()
    problems += [name for name, bad in (("c4_brace", "{" in text), ("c4_lorem", "lorem ipsum" in lower),
                                        ("c4_javascript", "javascript" in lower)) if bad]
    return problems


def jaccard_5grams(first: str, second: str) -> float:
    a = set(zip(*(normalised_words(first)[i:] for i in range(5)), strict=False))
    b = set(zip(*(normalised_words(second)[i:] for i in range(5)), strict=False))
    return len(a & b) / len(a | b)


def items(plants: dict, category: str, source: str | None = None) -> list[dict]:
    groups = (group if isinstance(group, list) else [group] for group in plants[category])
    entries = [entry for group in groups for entry in group]
    return [entry for entry in entries if source is None or entry["source"] == source]


# --- tests ----------------------------------------------------------------------------------------------

def test_generation_is_fast(corpus):
    assert corpus["seconds"] < 15


def test_same_seed_gives_identical_bytes_and_another_seed_differs(corpus, tmp_path):
    def digests(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    first = digests(corpus["dir"])
    write_demo_corpus(tmp_path / "again", seed=0, scale=1.0)
    assert digests(tmp_path / "again") == first
    write_demo_corpus(tmp_path / "other", seed=1, scale=1.0)
    other = digests(tmp_path / "other")
    shared = set(first) & set(other)
    assert "c4/c4-train.00000-of-00002.json.gz" in shared
    assert all(first[name] != other[name] for name in shared)


def test_document_counts_as_the_readers_count_them(corpus, warc, c4, github, wiki, stackexchange):
    out = corpus["dir"]
    counted = {
        "commoncrawl": sum(r["status"] == "200" and r["type"].startswith("text/html")
                           for r in warc["responses"].values()),
        "c4": len(c4),
        "github": len(github),
        "wikipedia": sum(page["ns"] == 0 for page in wiki["pages"].values()),
        "books": len(list((out / "books").glob("pg*.txt"))),
        "arxiv": len(list((out / "arxiv").glob("*.gz"))),
        "stackexchange": sum(row.get("PostTypeId") == "1" for rows in stackexchange.values() for row in rows),
    }
    assert counted == corpus["summary"]["documents"]
    assert sum(counted.values()) == corpus["summary"]["total"] >= 2000
    assert counted["commoncrawl"] >= 900 and counted["c4"] >= 500 and counted["github"] >= 250


def test_scale_multiplies_counts_and_keeps_every_plant_kind(corpus, tmp_path):
    small = write_demo_corpus(tmp_path / "small", seed=3, scale=0.1)
    assert small["total"] < corpus["summary"]["total"] / 5
    plants = json.loads((tmp_path / "small" / "plants.json").read_text(encoding="utf-8"))
    categories = {k for k, v in corpus["plants"].items() if isinstance(v, list)}
    assert {k for k, v in plants.items() if isinstance(v, list) and v} == categories
    assert {item["lang"] for item in plants["non_english"]} == set(FOREIGN_LANGUAGES)
    # Writing another corpus into the same folder leaves no file of the first one behind.
    again = write_demo_corpus(tmp_path / "small", seed=4, scale=0.1)
    assert len(list((tmp_path / "small" / "books").glob("pg*.txt"))) == again["documents"]["books"]
    assert len(list((tmp_path / "small" / "arxiv").glob("*.gz"))) == again["documents"]["arxiv"]


def test_warc_records_look_like_common_crawl(warc):
    types = warc["types"]
    assert types["warcinfo"] == 4 and types["metadata"] >= 5
    assert types["request"] == types["response"]
    statuses = Counter((r["status"], r["type"].split(";")[0]) for r in warc["responses"].values())
    assert statuses[("404", "text/html")] >= 5 and statuses[("200", "image/png")] == 1
    png = next(r for r in warc["responses"].values() if r["type"] == "image/png")
    assert png["body"].startswith(b"\x89PNG\r\n\x1a\n")
    page = next(r for r in warc["responses"].values() if r["type"] == "text/html; charset=utf-8")
    html = page["body"].decode("utf-8")
    for part in ("<nav", "<article>", "<h1>", "<footer", "<p>"):
        assert part in html or part.replace(">", " ") in html


def test_normal_english_passes_gopher_and_c4_rules(corpus, warc, c4):
    failures = {}
    normal = items(corpus["plants"], "normal_english")
    assert len(normal) >= 1200
    for item in normal:
        if item["source"] == "commoncrawl":
            text = "\n".join(page_paragraphs(warc, item["url"]))
        else:
            text = c4[item["id"]]["text"]
        problems = rule_violations(text)
        if problems:
            failures[item.get("url")] = problems
    assert not failures


def test_the_measures_catch_spam_and_rule_breakers(corpus, warc, c4):
    for item in items(corpus["plants"], "spam"):
        problems = rule_violations("\n".join(page_paragraphs(warc, item["url"])))
        assert "duplicate_lines" in problems and any(p.startswith("duplicate_") for p in problems)
    expected = {"lorem_ipsum": "c4_lorem", "curly_bracket": "c4_brace", "too_few_sentences": "c4_sentences"}
    for item in items(corpus["plants"], "c4_rule_violations"):
        assert expected[item["rule"]] in rule_violations(c4[item["id"]]["text"])
    for item in items(corpus["plants"], "short"):
        parser = parse_html(warc["responses"][item["url"]]["body"])
        assert len(" ".join(parser.visible)) < 300


def test_planted_languages_are_recognised_by_lid176(corpus, warc):
    import fasttext

    from llamapipe.pipeline.stages.langid import bundled_model_path

    model = fasttext.load_model(bundled_model_path())
    planted = items(corpus["plants"], "non_english")
    assert Counter(item["lang"] for item in planted) == {lang: 9 for lang in FOREIGN_LANGUAGES}
    for item in planted:
        labels, scores = model.predict(" ".join(page_paragraphs(warc, item["url"])).replace("\n", " "))
        assert labels[0] == f"__label__{item['lang']}" and scores[0] > 0.8, (item, labels, scores)
    for item in items(corpus["plants"], "normal_english", "commoncrawl")[:100]:
        labels, scores = model.predict(" ".join(page_paragraphs(warc, item["url"])))
        assert labels[0] == "__label__en" and scores[0] > 0.8


def test_duplicates_are_what_they_claim(corpus, warc, c4, github):
    plants = corpus["plants"]
    for first, second in plants["exact_duplicates"]:
        if first["source"] == "commoncrawl":
            assert warc["responses"][first["url"]]["body"] == warc["responses"][second["url"]]["body"]
            assert first["url"] != second["url"]
        elif first["source"] == "c4":
            assert c4[first["id"]]["text"] == c4[second["id"]]["text"]
            assert c4[first["id"]]["url"] != c4[second["id"]]["url"]
        else:
            assert github[first["id"]]["content"] == github[second["id"]]["content"]
            assert github[first["id"]]["repo_name"] != github[second["id"]]["repo_name"]
    sources = Counter(pair[0]["source"] for pair in plants["near_duplicates"])
    assert sources == {"commoncrawl": 10, "c4": 8, "books": 1}
    for first, second in plants["near_duplicates"]:
        if first["source"] == "commoncrawl":
            texts = ["\n".join(page_paragraphs(warc, item["url"])) for item in (first, second)]
        elif first["source"] == "c4":
            texts = [c4[item["id"]]["text"] for item in (first, second)]
        else:
            continue  # books: see the books test
        assert texts[0] != texts[1] and jaccard_5grams(*texts) > 0.85
    for page, doc in plants["cross_source_duplicates"]:
        assert page["source"] == "commoncrawl" and doc["source"] == "c4"
        assert page_paragraphs(warc, page["url"]) == c4[doc["id"]]["text"].split("\n")


def test_cited_pages_are_cited_by_wikipedia_and_more_encyclopedic(corpus, warc, wiki):
    plants = corpus["plants"]
    cited = {item["url"] for item in plants["cited_urls"]}
    uncited = {item["url"] for item in plants["uncited_urls"]}
    assert len(cited) == 100 and len(uncited) >= 600 and not cited & uncited
    assert cited | uncited <= set(warc["responses"])
    ref_urls = set()
    for page in wiki["pages"].values():
        for ref in re.findall(r"<ref[^>/]*>(.*?)</ref>", page["text"] or "", flags=re.S):
            ref_urls.update(re.findall(r"https?://[^\s|\]}]+", ref))
    assert ref_urls == cited
    for item in plants["cited_urls"]:
        assert item["url"] in wiki["pages"][item["cited_by"]]["text"]

    def formal_share(urls):  # words only the encyclopedic register uses
        formal = set(load_wordfile("en")["adverbs.formal"]) | {"census", "established", "administered"}
        words = [w for url in urls for w in normalised_words(" ".join(page_paragraphs(warc, url)))]
        return sum(w in formal for w in words) / len(words)

    assert formal_share(sorted(cited)) > 3 * formal_share(sorted(uncited)[:200])


def test_charset_pages_decode_with_their_declared_charset(corpus, warc):
    plants = items(corpus["plants"], "charsets")
    assert {(p["charset"], p["declared_in"]) for p in plants} == {
        ("windows-1252", "http-header"), ("iso-8859-1", "meta-charset"), ("windows-1252", "meta-http-equiv")}
    for item in plants:
        response = warc["responses"][item["url"]]
        in_header = "charset=" in response["type"]
        assert in_header == (item["declared_in"] == "http-header")
        charset = declared_charset(response["type"], response["body"])
        assert charset == item["charset"]
        text = " ".join(parse_html(response["body"], charset).paragraphs)
        assert all(word in text for word in item["words"])
        with pytest.raises(UnicodeDecodeError):
            response["body"].decode("utf-8")


def test_wikipedia_dump_structure(corpus, wiki):
    root, pages = wiki["root"], wiki["pages"]
    assert root.tag == MW + "mediawiki" and root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert root.findtext(f"{MW}siteinfo/{MW}dbname") == "enwiki"
    assert root.findtext(f"{MW}siteinfo/{MW}base") == "https://en.wikipedia.org/wiki/Main_Page"
    assert Counter(page["ns"] for page in pages.values()) == {0: 165, 1: 5, 10: 5, 14: 5}
    redirects = [page for page in pages.values() if page["redirect"] is not None]
    assert len(redirects) == 15 and all(page["text"].startswith("#REDIRECT [[") for page in redirects)
    articles = [page for page in pages.values() if page["ns"] == 0 and page["redirect"] is None]
    for page in articles:
        assert page["bytes"] == len(page["text"].encode("utf-8"))
    joined = "\n".join(page["text"] for page in articles)
    for markup in ("{{Infobox", "'''", "[[", "== ", '{| class="wikitable', "{{cite web |url=https://",
                   "<ref>[https://", "<!--", "[[Category:", "[[File:", "{{Reflist}}"):
        assert markup in joined, markup


def test_books_look_like_project_gutenberg(corpus):
    plants = corpus["plants"]
    styles = {item["id"]: item["style"] for item in plants["book_header_styles"]}
    assert set(styles.values()) == {"modern", "this", "nospace"}
    bodies = {}
    for path in sorted((corpus["dir"] / "books").glob("pg*.txt")):
        raw = path.read_bytes()
        assert raw.count(b"\r\n") == raw.count(b"\n")
        text = raw.decode("utf-8")
        assert text.startswith("The Project Gutenberg") and "\r\nLanguage: English\r\n" in text
        start = re.search(r"\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK (.+?) ?\*\*\*", text)
        end = re.search(r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK (.+?) ?\*\*\*", text)
        assert start and end and "Project Gutenberg" in text[end.end():]
        body = text[start.end():end.start()]
        assert "CHAPTER I.\r\n" in body and max(map(len, body.split("\r\n"))) <= 80
        assert 10_000 <= len(body.split()) <= 30_000
        bodies[f"books:{path.stem}"] = body
    first, second = plants["near_duplicates"][-1]
    original, edition = bodies[first["id"]].split(), bodies[second["id"]].split()
    changed = sum(a != b for a, b in zip(original, edition, strict=True))
    assert 0 < changed < 0.02 * len(original)


def test_arxiv_sources(corpus):
    out = corpus["dir"] / "arxiv"
    plants = corpus["plants"]
    single = {item["id"].removeprefix("arxiv:") for item in plants["arxiv_single_file"]}
    with_input = {item["id"].removeprefix("arxiv:") for item in plants["arxiv_with_input"]}
    bib_file = {item["id"].removeprefix("arxiv:") for item in plants["arxiv_bib_file"]}
    assert len(single) == 4 and with_input and bib_file
    for path in sorted(out.glob("*.gz")):
        paper_id = path.name.removesuffix(".gz").removesuffix(".tar")
        assert re.fullmatch(r"\d{4}\.\d{5}", paper_id)
        if paper_id in single:
            assert not path.name.endswith(".tar.gz")
            files = {"main.tex": gzip.decompress(path.read_bytes()).decode("utf-8")}
        else:
            with tarfile.open(path) as tar:
                files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
            assert files.pop("figures/fig1.png").startswith(b"\x89PNG")
            files = {name: data.decode("utf-8") for name, data in files.items()}
        main = files["main.tex"]
        assert main.startswith("\\documentclass")
        for macro in ("\\newcommand{\\R}{\\mathbb{R}}", "\\newcommand{\\norm}[1]", "\\begin{abstract}"):
            assert macro in main
        assert "\\def\\eps{" in main or "\\newcommand{\\eps}" in main
        assert main.index("\\title{") < main.index("\\section{") and "\\%" in "".join(files.values())
        assert re.search(r"(?m)(?<!\\)% ", main)
        split = paper_id in with_input
        assert ("\\input{sections/intro}" in main) == split == ("sections/intro.tex" in files)
        assert ("refs.bib" in files) == (paper_id in bib_file) == ("\\bibliography{refs}" in main)
        assert ("\\begin{thebibliography}" in main) != (paper_id in bib_file)


def test_github_rows(corpus, github):
    plants = corpus["plants"]
    licences = Counter(row["license"] for row in github.values())
    assert licences["mit"] > licences["apache-2.0"] > licences["bsd-3-clause"] > 0
    assert {item["license"] for item in plants["non_permissive_code"]} == {"gpl-3.0", "agpl-3.0", "unknown"}
    assert set(Counter(row["language"] for row in github.values())) >= {
        "Python", "JavaScript", "C", "Go", "Rust", "Java", "Shell", "Markdown"}
    for item in plants["licence_headers"]:
        head = github[item["id"]]["content"][:200]
        assert head.startswith(("#", "//", "/*")) and ("Copyright" in head or "SPDX" in head)
    problems = {item["problem"]: item["id"] for item in plants["code_quality"]}
    assert max(map(len, github[problems["line_longer_than_1000"]]["content"].split("\n"))) > 1000
    assert github[problems["extension_not_whitelisted"]]["path"].endswith((".lock", ".bin"))

    def alpha_per_token(content):
        return sum(ch.isalpha() for ch in content) / max(1, len(content.split()))

    planted = {item["id"] for item in plants["code_quality"]}
    assert alpha_per_token(github[problems["low_alpha_per_token"]]["content"]) < 1.5
    for row_id, row in github.items():
        if row_id in planted:
            continue
        lines = row["content"].split("\n")
        assert max(map(len, lines)) <= 1000 and sum(map(len, lines)) / len(lines) <= 100
        assert sum(ch.isalnum() for ch in row["content"]) / len(row["content"]) >= 0.25
        assert alpha_per_token(row["content"]) >= 1.5


def test_stackexchange_posts(corpus, stackexchange):
    assert set(stackexchange) == {"cooking", "gardening"}
    for rows in stackexchange.values():
        by_id = {row.get("Id"): row for row in rows}
        questions = [row for row in rows if row.get("PostTypeId") == "1"]
        answers = [row for row in rows if row.get("PostTypeId") == "2"]
        assert len(questions) == 80 and {"4", "5"} <= {row.get("PostTypeId") for row in rows}
        for question in questions:
            assert question.get("Title") and question.get("Tags").startswith("<")
            assert "<p>" in question.get("Body") and question.get("ContentLicense").startswith("CC BY-SA")
            count = sum(answer.get("ParentId") == question.get("Id") for answer in answers)
            assert int(question.get("AnswerCount")) == count
        assert all(by_id[answer.get("ParentId")].get("PostTypeId") == "1" for answer in answers)
    planted = corpus["plants"]["stackexchange_answer_order"]
    assert len(planted) == 8
    for item in planted:
        site, question_id = item["id"].removeprefix("stackexchange:").split("/")
        site = site.removesuffix(".stackexchange.com")
        answers = [row for row in stackexchange[site] if row.get("ParentId") == question_id]
        scores = {row.get("Id"): int(row.get("Score")) for row in answers}
        assert {9, 10} <= set(scores.values()) and min(scores.values()) < 0
        assert [scores[str(i)] for i in item["answer_ids_by_score"]] == sorted(scores.values(), reverse=True)
        assert sorted(map(str, scores.values()), reverse=True)[0] == "9"  # the string-sort trap exists


def test_word_lists_are_large_enough():
    counts = lexicon().counts()
    assert counts["nouns"] >= 400 and counts["verbs"] >= 200 and counts["adjectives"] >= 200
    assert counts["sentence_templates"] >= 60
    for lang in FOREIGN_LANGUAGES:
        words = load_wordfile(lang)
        assert len(words["templates"]) >= 20
        assert sum(len(words[s]) for s in ("subjects", "objects", "verbs", "places", "names")) >= 100


def test_a_scaled_corpus_grows_by_files_of_about_the_same_size(tmp_path):
    """Like a real dump: more files, not bigger ones, so the readers' work spreads over workers."""
    write_demo_corpus(tmp_path / "big", seed=0, scale=2.5)
    for source, pattern, files in (("commoncrawl", "*.warc.gz", 10), ("c4", "*.json.gz", 5),
                                   ("github", "*.jsonl.gz", 5)):
        found = sorted((tmp_path / "big" / source).glob(pattern))
        assert len(found) == files, source
    sizes = [p.stat().st_size for p in (tmp_path / "big" / "commoncrawl").glob("*.warc.gz")]
    assert max(sizes) < 1.5 * min(sizes)
