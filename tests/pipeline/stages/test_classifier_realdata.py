"""LLaMA's reference classifier on real text (../shared/realdata): trained by the stage itself, in Beam as
in a run, it keeps encyclopedic prose it never saw and drops most real web pages of the kind the recipe
means to remove (home pages, lists of links, listicles).

The stage trains in the run on the pages Wikipedia cites against random pages. realdata has no crawl
that Wikipedia cites, so the training set is built here from real text, through the same mechanism:
- "cited" pages: passages of real English Wikipedia articles (our reader's rendering), offered as
  CommonCrawl pages whose URLs a Wikipedia document cites (Wikipedia's own prose stands in for the
  reference-quality pages it cites);
- random pages: real English web pages (the visible text of trafilatura's evaluation pages and of the
  Dolma WARC sample's responses, menus and footers included), real C4 pages and real Stack Exchange
  questions (coffee.stackexchange.com).
Half the articles and half the random pages train the model (first run; the stage draws as many
random pages as cited ones); the other half, never seen, are scored by the trained model loaded from
the config (second run): the decision tested is the one a reader expects, on text the model did not
learn. (Of the random pages, those kept are mostly news articles, which Wikipedia does cite; home
pages, listings, product and hotel pages and forum questions go.)
"""

from __future__ import annotations

import bz2
import gzip
import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from llamapipe.pipeline.config import ClassifierConfig
from llamapipe.pipeline.stages.classifier import ReferenceClassifier

ARTICLES = 60  # English Wikipedia articles read from the dump sample (rendering is the slow part)
PASSAGES_PER_ARTICLE = 3
QUESTION_CHARS = 400  # Stack Exchange questions at least this long are random pages too
PASSAGE_CHARS = 1_500  # a passage: whole paragraphs of an article, at least this long
WIKIPEDIA_DUMP = "gensim_enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def wikipedia_passages(realdata) -> dict[str, list[str]]:
    """article title -> passages of its rendered text (paragraphs of 200+ characters, grouped)."""
    from llamapipe.sources.wikipedia import Page, iter_dump, render_article

    passages: dict[str, list[str]] = {}
    with bz2.open(realdata / "wikipedia" / WIKIPEDIA_DUMP, "rb") as f:
        articles = (item for item in iter_dump(f)
                    if isinstance(item, Page) and item.ns == 0 and not item.redirect)
        for _, page in zip(range(ARTICLES), articles, strict=False):
            paragraphs = [p for p in render_article(page.text)[0].split("\n") if len(p) >= 200]
            group: list[str] = []
            for paragraph in paragraphs:
                group.append(paragraph)
                if sum(map(len, group)) >= PASSAGE_CHARS:
                    passages.setdefault(page.title, []).append("\n".join(group))
                    group = []
                    if len(passages[page.title]) == PASSAGES_PER_ARTICLE:
                        break
    return passages


def web_pages(realdata) -> dict[str, str]:
    """URL or file name -> text of real English web pages: visible text of HTML pages, C4 pages, and
    Stack Exchange questions (title and body: a forum page)."""
    from warcio.archiveiterator import ArchiveIterator

    from llamapipe.pipeline.stages.lid176 import LanguageIdentifier
    from llamapipe.sources.stackexchange import html_to_text, iter_rows

    identify = LanguageIdentifier()
    pages = {}
    for path in sorted((realdata / "html_extraction" / "trafilatura" / "html").glob("*.html")):
        text = html_to_text(path.read_bytes().decode("utf-8", "replace"))
        if identify(" ".join(text.split())[:3_000])[0] == "en":
            pages[path.name] = text
    with open(realdata / "commoncrawl" / "dolma_sample-0000.warc.gz", "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type == "response":
                url = record.rec_headers.get_header("WARC-Target-URI").strip("<>")
                pages[url] = html_to_text(record.content_stream().read().decode("utf-8", "replace"))
    for path in sorted((realdata / "c4").glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                pages[row["url"]] = row["text"]
    with open(realdata / "stackexchange" / "coffee.stackexchange.com_Posts.xml", "rb") as f:
        for item in iter_rows(f):
            if isinstance(item, tuple) and item[1].get("PostTypeId") == "1":
                body = html_to_text(item[1].get("Body", ""))
                if len(body) >= QUESTION_CHARS:
                    url = f"https://coffee.stackexchange.com/questions/{item[1]['Id']}"
                    pages[url] = f"{item[1].get('Title', '')}\n{body}"
    return {name: text for name, text in pages.items() if text.strip()}


def page(doc_id: str, url: str, text: str) -> dict:
    return {"id": f"commoncrawl:{doc_id}", "source": "commoncrawl", "url": url, "text": text, "meta": {}}


def run_stage(folder, wikipedia: list[dict], docs: list[dict], **options) -> tuple[dict, dict]:
    """(metrics.json, id -> P(reference)) of the stage: kept pages carry the score in their meta,
    dropped ones in their detail."""
    config = ClassifierConfig(**{"min_positives": 20, **options})
    scores_file = folder / "scores.json"
    with TestPipeline() as p:
        citing = (p | "Wiki" >> beam.Create(wikipedia or [{"id": "x", "source": "wikipedia", "meta": {}}])
                  | "OnlyGiven" >> beam.Filter(lambda d: bool(wikipedia)))
        pages = p | "Docs" >> beam.Create(docs)
        out = (citing, pages) | ReferenceClassifier(config, str(folder), str(folder / "work"))
        kept = out["documents"] | "KeptScore" >> beam.Map(lambda d: (d["id"], d["meta"]["reference_score"]))
        dropped = out["dropped"] | "DroppedScore" >> beam.Map(
            lambda d: (d["id"], float(d["detail"].split()[1])))  # "P(reference) 0.123 < 0.25"
        _ = ((kept, dropped) | beam.Flatten() | beam.combiners.ToList()
             | beam.Map(lambda scores: scores_file.write_text(json.dumps(dict(scores)))))
    return json.loads((folder / "metrics.json").read_text()), json.loads(scores_file.read_text())


@pytest.fixture(scope="module")
def trained(realdata, tmp_path_factory):
    """The stage trained on half the real texts; the other half, held out, scored by the saved model."""
    passages = wikipedia_passages(realdata)
    web = web_pages(realdata)
    titles, names = sorted(passages), sorted(web)
    train_titles, heldout_titles = titles[::2], titles[1::2]
    train_pages, heldout_pages = names[::2], names[1::2]

    def wiki_docs(chosen):
        return [page(f"wiki/{title}/{i}", f"https://en.wikipedia.org/wiki/{title}?passage={i}", text)
                for title in chosen for i, text in enumerate(passages[title])]

    def web_docs(chosen):
        return [page(f"web/{n}", n if n.startswith("http") else f"https://{n}", web[n]) for n in chosen]

    cited = wiki_docs(train_titles)
    citing = [{"id": "wikipedia:en/refs", "source": "wikipedia", "text": "References.", "url": "",
               "meta": {"ref_urls": [d["url"] for d in cited]}}]
    folder = tmp_path_factory.mktemp("reference-train")
    status, _ = run_stage(folder, citing, cited + web_docs(train_pages))
    heldout_folder = tmp_path_factory.mktemp("reference-heldout")
    heldout_wiki, heldout_web = wiki_docs(heldout_titles), web_docs(heldout_pages)
    _, scores = run_stage(heldout_folder, [], heldout_wiki + heldout_web, model=str(folder / "model.bin"))
    return {"status": status, "wiki": {d["id"]: scores[d["id"]] for d in heldout_wiki},
            "web": {d["id"]: scores[d["id"]] for d in heldout_web}}


def test_trained_on_real_text(trained):
    status = trained["status"]
    assert status["status"] == "trained", status
    assert status["training"]["positives"] >= 20 and status["training"]["negatives"] >= 20, status
    assert len(trained["wiki"]) >= 20 and len(trained["web"]) >= 20


def test_unseen_encyclopedic_prose_is_kept(trained):
    wiki = trained["wiki"]
    kept = [doc_id for doc_id, score in wiki.items() if score >= ClassifierConfig().threshold]
    assert len(kept) >= 0.9 * len(wiki), sorted(wiki.items(), key=lambda item: item[1])[:5]


def test_unseen_random_pages_score_below_encyclopedic_prose_and_most_are_dropped(trained):
    wiki, web = trained["wiki"], trained["web"]
    # A passage of Wikipedia outscores a random page in nearly every pair (the ranking a reader expects).
    pairs = [(w, p) for w in wiki.values() for p in web.values()]
    assert sum(w > p for w, p in pairs) >= 0.9 * len(pairs)
    dropped = [doc_id for doc_id, score in web.items() if score < ClassifierConfig().threshold]
    assert len(dropped) >= 0.6 * len(web), sorted(web.items(), key=lambda item: item[1])
