"""Stack Exchange reader: Posts.xml rows -> one document per question with its answers, best first."""

from __future__ import annotations

import bz2
import json
import re
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.sources import stackexchange
from llamapipe.sources.stackexchange import (
    AssembleThreadDoFn,
    Options,
    Read,
    ReadPostsDoFn,
    answer_order,
    html_to_text,
    site_name,
)

LEFTOVER_TAG = re.compile(r"</?(?:p|a|code|pre|em|strong|br|img|ul|ol|li|blockquote|h\d|hr|div|span)\b[^>]*>")


def write_posts(path: Path, rows: list[dict]) -> Path:
    """A Posts.xml as the dumps have it (attributes escaped by a real XML writer), plain or bz2."""
    root = ElementTree.Element("posts")
    for attributes in rows:
        ElementTree.SubElement(root, "row", {key: str(value) for key, value in attributes.items()})
    ElementTree.indent(root)  # one row per line, as in the dumps
    data = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bz2.compress(data) if path.suffix == ".bz2" else data)
    return path


def question(post_id, title, body, score=0):
    return {"Id": post_id, "PostTypeId": 1, "Score": score, "Title": title, "Body": body}


def answer(post_id, parent_id, body, score=0):
    return {"Id": post_id, "PostTypeId": 2, "ParentId": parent_id, "Score": score, "Body": body}


def run(paths, options, check_documents, expected_drops) -> dict:
    options.inputs = [str(path) for path in paths]
    pipeline = TestPipeline()
    out = pipeline | Read(options, work_folder=str(Path(paths[0]).parent / "work"))
    assert_that(out["documents"], check_documents, label="CheckDocuments")
    assert_that(out["dropped"] | "IdStageReason" >> beam.Map(lambda d: (d["id"], d["stage"], d["reason"])),
                equal_to(expected_drops), label="CheckDrops")
    result = pipeline.run()
    result.wait_until_finish()
    return {
        item.key.metric.name: item.committed
        for item in result.metrics().query(MetricsFilter().with_namespace("stackexchange"))["counters"]
    }


def direct_read(path: Path, options: Options | None = None):
    """Read + group + assemble without a pipeline (fast on the real sample)."""
    groups, drops = defaultdict(list), []
    for item in ReadPostsDoFn().process(str(path)):
        if isinstance(item, tuple):
            groups[item[0]].append(item[1])
        else:
            drops.append(item.value)
    documents = []
    assemble = AssembleThreadDoFn(options or Options())
    for keyed in groups.items():
        for item in assemble.process(keyed):
            (documents.append(item) if isinstance(item, dict) else drops.append(item.value))
    return documents, drops


# ---------------------------------------------------------------------------------------------
# Pure helpers


def test_html_to_text_keeps_paragraphs_and_code_and_drops_markup():
    html = (
        "<p>Use a <strong>burr</strong> grinder &amp; weigh   the\nbeans.</p>\n\n"
        "<pre><code>def brew(grams):\n    return grams * 16\n</code></pre>\n"
        "<ul><li>coarse</li><li>fine</li></ul>"
        "<p>Line one<br>line two<br><br>after a gap</p><!-- hidden note -->"
        '<p>See <a href="https://example.org">this</a> <img src="x.png" alt="pic"> &lt;tip&gt;</p>'
    )
    assert html_to_text(html) == (
        "Use a burr grinder & weigh the beans.\n\n"
        "def brew(grams):\n    return grams * 16\n\n"
        "coarse\nfine\n\n"
        "Line one\nline two\n\nafter a gap\n\n"
        "See this <tip>"
    )
    assert html_to_text("") == "" and html_to_text("just text") == "just text"


def test_answers_sort_by_numeric_score_not_by_the_score_string():
    answers = [{"id": "5", "score": 9}, {"id": "6", "score": 10}, {"id": "7", "score": -2},
               {"id": "8", "score": 10}, {"id": "40", "score": 0}]
    assert [a["id"] for a in sorted(answers, key=answer_order)] == ["6", "8", "5", "40", "7"]


def test_site_name_from_folder_or_file_prefix():
    assert site_name("/dumps/coffee.stackexchange.com/Posts.xml") == "coffee.stackexchange.com"
    assert site_name("gs://bucket/se/coffee.stackexchange.com_Posts.xml.bz2") == "coffee.stackexchange.com"
    assert site_name("/d/math.stackexchange.com-Posts.xml.gz") == "math.stackexchange.com"


# ---------------------------------------------------------------------------------------------
# Pipeline


def thread_rows():
    return [
        question(1, "Is a blade grinder good enough?", "<p>For <em>cold brew</em>.</p>", score=7),
        answer(2, 1, "<p>Score nine.</p>", score=9),
        answer(3, 1, "<p>Score ten.</p>", score=10),
        answer(4, 1, "<p>Negative.</p>", score=-1),
        question(5, "Unanswered?", "<p>Anyone?</p>"),
        answer(6, 99, "<p>My question was deleted.</p>"),  # orphans: one drop for question 99
        answer(7, 99, "<p>Mine too.</p>"),
        {"Id": 8, "PostTypeId": 1, "Title": "No body"},   # a title is enough
        {"Id": 9, "PostTypeId": 2, "Body": "<p>no parent</p>"},  # malformed
        {"Id": 10, "PostTypeId": 4, "Body": "tag wiki excerpt"},  # not a Q/A: counted only
        {"Id": 11, "PostTypeId": 5, "Body": "<p>tag wiki</p>"},
    ]


def test_questions_become_documents_with_answers_best_first(tmp_path):
    path = write_posts(tmp_path / "coffee.stackexchange.com" / "Posts.xml.bz2", thread_rows())

    def check_documents(documents):
        by_id = {doc["id"]: doc for doc in documents}
        assert sorted(by_id) == [f"stackexchange:coffee.stackexchange.com/{n}" for n in (1, 5, 8)]
        first = by_id["stackexchange:coffee.stackexchange.com/1"]
        assert first["text"] == (
            "Q: Is a blade grinder good enough?\nFor cold brew.\nA: Score ten.\nA: Score nine.\nA: Negative.")
        assert first["url"] == "https://coffee.stackexchange.com/questions/1"
        assert first["meta"] == {"site": "coffee.stackexchange.com", "score": 7, "answer_count": 3,
                                 "source_file": str(path), "line": 3}  # row 1 of <posts>
        assert by_id["stackexchange:coffee.stackexchange.com/5"]["text"] == "Q: Unanswered?\nAnyone?"
        assert by_id["stackexchange:coffee.stackexchange.com/8"]["text"] == "Q: No body"

    counters = run([path], Options(), check_documents, [
        ("stackexchange:coffee.stackexchange.com/99", "read", "orphan_answer"),
        ("stackexchange:coffee.stackexchange.com/9", "read", "malformed_row"),
    ])
    assert counters["skipped.post_type_4"] == 1 and counters["skipped.post_type_5"] == 1


def test_min_answers_drops_questions_with_too_few_answers(tmp_path):
    path = write_posts(tmp_path / "coffee.stackexchange.com_Posts.xml", thread_rows()[:5])
    run([path], Options(min_answers=1),
        lambda docs: equal_to(["stackexchange:coffee.stackexchange.com/1"])([doc["id"] for doc in docs]),
        [("stackexchange:coffee.stackexchange.com/5", "clean", "too_few_answers")])


def test_a_malformed_row_costs_only_itself(tmp_path):
    good = write_posts(tmp_path / "good.xml", thread_rows()[:8]).read_bytes()
    start = good.index(b'<row Id="4"')
    end = good.index(b"<row", start + 1)
    path = tmp_path / "coffee.stackexchange.com_Posts.xml"
    # answer 4 loses the end of its start tag: it runs into the next row's line
    path.write_bytes(good[:start] + b'<row Id="4" PostTypeId="2" ParentId="1" Body="unterminated\n'
                     + good[end:])
    documents, drops = direct_read(path)
    # the rows after the broken one are read: question 5, orphans 6-7 and question 8
    assert sorted(doc["id"] for doc in documents) == [f"stackexchange:coffee.stackexchange.com/{n}"
                                                      for n in (1, 5, 8)]
    assert next(doc for doc in documents if doc["id"].endswith("/1"))["meta"]["answer_count"] == 2
    assert sorted((drop["reason"], drop["id"]) for drop in drops) == [
        ("malformed_xml", "stackexchange:coffee.stackexchange.com/row4"),
        ("orphan_answer", "stackexchange:coffee.stackexchange.com/99")]
    malformed = next(drop for drop in drops if drop["reason"] == "malformed_xml")
    assert f"{path} row 4, <row> at line 6:" in malformed["detail"]
    # a file cut inside its last row: the rows before it are read, the cut row is one drop
    path.write_bytes(good[:end] + b'<row Id="5" Body="unterminated')
    documents, drops = direct_read(path)
    assert [(doc["id"], doc["meta"]["answer_count"]) for doc in documents] == [
        ("stackexchange:coffee.stackexchange.com/1", 3)]
    assert [(drop["reason"], drop["id"]) for drop in drops] == [
        ("malformed_xml", "stackexchange:coffee.stackexchange.com/row5")]


def test_external_entities_are_never_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    path = tmp_path / "evil.stackexchange.com_Posts.xml"
    path.write_text(
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE posts [<!ENTITY leak SYSTEM "file://{secret}">]>\n'
        '<posts>\n<row Id="1" PostTypeId="1" Title="t" Body="&lt;p&gt;safe&lt;/p&gt;"/>\n'
        '<row Id="2" PostTypeId="1" Title="t" Body="&leak;"/>\n</posts>\n'
    )
    documents, drops = direct_read(path)
    assert all("TOP-SECRET" not in doc["text"] for doc in documents)
    assert all("TOP-SECRET" not in drop["detail"] for drop in drops)
    assert [doc["text"] for doc in documents] == ["Q: t\nsafe"]
    # the DOCTYPE never applies to a row: &leak; is an undefined entity there, and the row one drop
    assert [(drop["reason"], drop["id"]) for drop in drops] == [
        ("malformed_xml", "stackexchange:evil.stackexchange.com/row2")]
    assert "Entity 'leak' not defined" in drops[0]["detail"]


# ---------------------------------------------------------------------------------------------
# Real sample


def test_real_coffee_dump(realdata):
    path = realdata / "stackexchange" / "coffee.stackexchange.com_Posts.xml"
    rows = [element.attrib for element in ElementTree.parse(path).getroot()]
    answers_by_question = defaultdict(list)
    for row in rows:
        if row["PostTypeId"] == "2":
            answers_by_question[row["ParentId"]].append(row)
    question_ids = {row["Id"] for row in rows if row["PostTypeId"] == "1"}

    documents, drops = direct_read(path)
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    assert drops == []
    assert len(documents) == len(question_ids)
    string_sorted_differs = 0
    for doc in documents:
        question_id = doc["id"].rsplit("/", 1)[1]
        assert doc["id"].startswith("stackexchange:coffee.stackexchange.com/") and question_id in question_ids
        assert doc["text"].startswith("Q: ")
        assert not LEFTOVER_TAG.search(doc["text"]), doc["id"]
        assert "&lt;" not in doc["text"] and "&quot;" not in doc["text"]
        answers = answers_by_question.get(question_id, [])
        assert doc["meta"]["answer_count"] == len(answers)
        # Each answer's text appears in the document in numeric score order, highest first.
        positions = [doc["text"].index("\nA: " + html_to_text(a["Body"]))
                     for a in sorted(answers, key=lambda a: -int(a["Score"]))]
        assert positions == sorted(positions), doc["id"]
        scores = [a["Score"] for a in answers]
        string_sorted_differs += sorted(scores, key=int, reverse=True) != sorted(scores, reverse=True)
        # provenance: the question's row is on the recorded line
        assert f' Id="{question_id}" ' in lines[doc["meta"]["line"] - 1]
        assert doc["meta"]["source_file"] == str(path)
    assert string_sorted_differs > 0  # the sample does have threads where "9" would have beaten "10"


# --- the largest sites, both dump schemas ------------------------------------------------------------


def site_rows(questions: int, answers_each: int) -> list[dict]:
    rows = []
    for n in range(questions):
        question_id = 100 * (n + 1)
        rows.append(question(question_id, f"Question {n}?", f"<p>Body {n}.</p>"))
        rows += [answer(question_id + k, question_id, f"<p>A {k}.</p>") for k in range(1, answers_each + 1)]
    return rows


@pytest.mark.parametrize("partitions", [1, 3, 512])
def test_only_the_largest_sites_by_post_count_are_kept(tmp_path, partitions, monkeypatch):
    # (the posts reach their threads through `partitions` local partition files: the result is the same)
    monkeypatch.setattr(stackexchange, "PARTITION_BYTES", 1)  # as many partitions as allowed
    # posts: cooking 3 x 3 = 9, gardening 2 x 4 = 8 (fewer questions than bikes, more posts), bikes 4 x 1
    paths = [write_posts(tmp_path / "cooking.stackexchange.com" / "Posts.xml", site_rows(3, 2)),
             write_posts(tmp_path / "gardening.stackexchange.com" / "Posts.xml", site_rows(2, 3)),
             write_posts(tmp_path / "bikes.stackexchange.com_Posts.xml", site_rows(4, 0))]

    def sites(documents):
        assert sorted(doc["id"].split(":")[1].split("/")[0] for doc in documents) == (
            ["cooking.stackexchange.com"] * 3 + ["gardening.stackexchange.com"] * 2)

    bikes = [f"stackexchange:bikes.stackexchange.com/{100 * n}" for n in range(1, 5)]
    run(paths, Options(max_sites=2, thread_partitions=partitions), sites,
        [(doc_id, "read", "site_not_largest") for doc_id in bikes])
    run(paths, Options(max_sites=0, thread_partitions=partitions),  # 0: every site
        lambda docs: equal_to([9])([len(docs)]), [])


def test_the_largest_sites_step_keeps_real_threads_unchanged(tmp_path, realdata):
    """The real coffee dump against a smaller site, with one site kept: its threads come back from the
    files they wait in (`KeepLargestSites` spills them) exactly as the reader made them, and the other
    site's threads are dropped."""
    coffee = tmp_path / "coffee.stackexchange.com_Posts.xml"
    coffee.write_bytes((realdata / "stackexchange" / "coffee.stackexchange.com_Posts.xml").read_bytes())
    small = write_posts(tmp_path / "bikes.stackexchange.com_Posts.xml", site_rows(2, 0))
    read, _ = direct_read(coffee)
    expected = sorted(json.dumps(doc, sort_keys=True) for doc in read)

    def same_threads(documents):
        assert sorted(json.dumps(doc, sort_keys=True) for doc in documents) == expected

    bikes = [f"stackexchange:bikes.stackexchange.com/{100 * n}" for n in range(1, 3)]
    run([coffee, small], Options(max_sites=1), same_threads,
        [(doc_id, "read", "site_not_largest") for doc_id in bikes])


def test_thread_partitions_must_be_positive():
    with pytest.raises(ValueError, match="thread_partitions must be >= 1"):
        Options(thread_partitions=0)


# Rows as written before 2021 and after (ContentLicense, |tag| lists, no Title on answers, editor names).
OLD_SCHEMA = [
    {"Id": 1, "PostTypeId": 1, "AcceptedAnswerId": 2, "CreationDate": "2014-02-11T08:14:05.310", "Score": 5,
     "ViewCount": 57, "Body": "<p>Old question body.</p>", "OwnerUserId": 11, "LastActivityDate":
     "2014-06-18T11:42:37.904", "Title": "Old title?", "Tags": "<roasting><decaf>", "AnswerCount": 1,
     "CommentCount": 2, "FavoriteCount": 3},
    {"Id": 2, "PostTypeId": 2, "ParentId": 1, "CreationDate": "2014-02-11T21:00:00.000", "Score": 3,
     "Body": "<p>Old answer.</p>", "OwnerUserId": 8, "LastActivityDate": "2014-02-11T21:00:00.000",
     "CommentCount": 0},
]
NEW_SCHEMA = [
    {"Id": 1, "PostTypeId": 1, "AcceptedAnswerId": 3, "CreationDate": "2022-05-01T10:00:00.000", "Score": 2,
     "ViewCount": 10, "Body": "<p>New question body.</p>", "OwnerDisplayName": "guest",
     "LastEditorDisplayName": "editor", "LastEditDate": "2022-05-02T10:00:00.000",
     "LastActivityDate": "2022-05-02T10:00:00.000", "Title": "New title?", "Tags": "|espresso|grinding|",
     "AnswerCount": 2, "CommentCount": 0, "CommunityOwnedDate": "2022-06-01T00:00:00.000",
     "ClosedDate": "2022-07-01T00:00:00.000", "ContentLicense": "CC BY-SA 4.0"},
    {"Id": 2, "PostTypeId": 2, "ParentId": 1, "CreationDate": "2022-05-01T11:00:00.000", "Score": 1,
     "Body": "<p>Lower answer.</p>", "OwnerUserId": 7, "LastActivityDate": "2022-05-01T11:00:00.000",
     "CommentCount": 0, "ContentLicense": "CC BY-SA 4.0"},
    {"Id": 3, "PostTypeId": 2, "ParentId": 1, "CreationDate": "2022-05-01T12:00:00.000", "Score": 12,
     "Body": "<p>Higher answer.</p>", "LastEditorDisplayName": "someone", "LastActivityDate":
     "2022-05-01T12:00:00.000", "CommentCount": 1, "CommunityOwnedDate": "2022-06-01T00:00:00.000",
     "ContentLicense": "CC BY-SA 4.0"},
    {"Id": 4, "PostTypeId": 1, "CreationDate": "2022-05-03T00:00:00.000", "Title": "Title only, no body"},
]


def test_old_and_2021_dump_schemas_are_both_read(tmp_path):
    old = write_posts(tmp_path / "coffee.stackexchange.com" / "Posts.xml", OLD_SCHEMA)
    new = write_posts(tmp_path / "tea.stackexchange.com" / "Posts.xml.bz2", NEW_SCHEMA)

    def check_documents(documents):
        by_id = {doc["id"]: doc for doc in documents}
        assert sorted(by_id) == [f"stackexchange:{site}.stackexchange.com/{n}"
                                 for site, n in (("coffee", 1), ("tea", 1), ("tea", 4))]
        old_doc = by_id["stackexchange:coffee.stackexchange.com/1"]
        assert old_doc["text"] == "Q: Old title?\nOld question body.\nA: Old answer."
        assert old_doc["meta"]["tags"] == ["roasting", "decaf"]
        assert "content_license" not in old_doc["meta"]
        assert old_doc["meta"]["creation_date"] == "2014-02-11T08:14:05.310"
        new_doc = by_id["stackexchange:tea.stackexchange.com/1"]
        assert new_doc["text"] == "Q: New title?\nNew question body.\nA: Higher answer.\nA: Lower answer."
        assert new_doc["meta"]["tags"] == ["espresso", "grinding"]
        assert new_doc["meta"]["content_license"] == "CC BY-SA 4.0"
        assert by_id["stackexchange:tea.stackexchange.com/4"]["text"] == "Q: Title only, no body"

    run([old, new], Options(), check_documents, [])
