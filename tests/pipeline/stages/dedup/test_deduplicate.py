"""Exact and near duplicates become one document per cluster; the survivor follows the documented rule."""

import json
import random
import shutil
import tempfile

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.config import DedupConfig
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError, from_dict
from llamapipe.pipeline.stages.dedup.deduplicate import Deduplicate
from llamapipe.pipeline.stages.dedup.fingerprints import MinHasher, estimated_jaccard, shingles

# Where Deduplicate spills the documents while a test pipeline runs (removed after the module).
WORK = tempfile.mkdtemp(prefix="llamapipe-test-dedup-")


@pytest.fixture(scope="module", autouse=True)
def _remove_work_folder():
    yield
    shutil.rmtree(WORK, ignore_errors=True)


WORDS = ("river stone garden window market winter summer teacher engine harbor forest candle "
         "village letter bridge mountain kitchen silver doctor planet").split()


def words(seed: int, n: int = 400) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(n)]


def replaced(body: list[str], start: int, count: int, seed: int) -> list[str]:
    """`body` with `count` consecutive words from `start` replaced by others."""
    fresh = words(seed, count)
    return body[:start] + fresh + body[start + count:]


def doc(doc_id: str, source: str, body, book: bool = False) -> dict:
    text = body if isinstance(body, str) else " ".join(body)
    return {"id": f"{source}:{doc_id}", "source": source, "text": text, "url": "",
            "meta": {"book_dedup": True} if book else {}}


def jaccard(a: dict, b: dict) -> float:
    x, y = shingles(a["text"], 5), shingles(b["text"], 5)
    return len(x & y) / len(x | y)


def estimate(a: dict, b: dict, bits: int = 16) -> float:
    hasher = MinHasher(128, 5)
    sa, sb = (hasher.signature(d["text"]).astype("uint16") for d in (a, b))
    return float(estimated_jaccard(sa, sb, bits))


def small(**options) -> DedupConfig:
    """The default config with fewer connected-component rounds: these graphs settle in one or two."""
    return DedupConfig(max_rounds=4, **options)


def ids(pcoll, label):
    return pcoll | label >> beam.Map(lambda d: d["id"])


def drops(pcoll, label):
    return pcoll | label >> beam.Map(lambda d: (d["id"], d["reason"], d["detail"]))


def chain(sources=("commoncrawl", "c4", "wikipedia"), seed=10, prefix=""):
    """A ~ B and B ~ C (Jaccard ~0.86), A and C not (~0.74): edits in two places."""
    a = words(seed)
    b = replaced(a, 40, 25, seed + 1)
    c = replaced(b, 300, 25, seed + 2)
    return [doc(prefix + name, source, body)
            for name, source, body in zip("ABC", sources, (a, b, c), strict=True)]


def test_a_chain_of_near_duplicates_ends_as_one_cluster_kept_in_the_preferred_source():
    # B, the middle of the chain, ranks last: dropping each document that has a better similar one
    # would keep both A and C; connected components keep A only
    a, b, c = chain(("wikipedia", "commoncrawl", "c4"))
    # the premise: A~B and B~C pass the threshold, A~C does not (true and estimated similarity)
    assert estimate(a, b) >= 0.8 and estimate(b, c) >= 0.8 and estimate(a, c) < 0.8
    assert jaccard(a, c) < 0.75
    with TestPipeline() as p:
        out = p | beam.Create([a, b, c, doc("other", "c4", words(99))]) | Deduplicate(DedupConfig(), WORK)
        assert_that(ids(out["documents"], "k"), equal_to(["wikipedia:A", "c4:other"]), label="kept")
        assert_that(drops(out["dropped"], "d"), equal_to([
            ("commoncrawl:B", "near_duplicate", "near copy of wikipedia:A"),
            ("c4:C", "near_duplicate", "near copy of wikipedia:A"),
        ]), label="dropped")


def test_survivor_rule_priority_then_longest_then_smallest_id():
    body = words(20)
    longer = doc("long", "c4", body + words(21, 10))
    shorter = doc("short", "c4", replaced(body, 100, 5, 22))
    same_b, same_a = doc("b", "c4", words(30)), doc("a", "c4", words(30))  # same text and length
    web, wiki = doc("web", "commoncrawl", words(40)), doc("wiki", "wikipedia", replaced(words(40), 9, 4, 41))
    options = small(source_priority=["commoncrawl", "wikipedia", "c4"])  # a user's own order
    with TestPipeline() as p:
        out = p | beam.Create([longer, shorter, same_b, same_a, web, wiki]) | Deduplicate(options, WORK)
        kept = ["c4:long", "c4:a", "commoncrawl:web"]
        assert_that(ids(out["documents"], "k"), equal_to(kept), label="kept")
        assert_that(out["dropped"] | beam.Map(lambda d: (d["id"], d["reason"])), equal_to([
            ("c4:short", "near_duplicate"), ("c4:b", "exact_duplicate"), ("wikipedia:wiki", "near_duplicate"),
        ]), label="dropped")


def test_exact_duplicates_across_sources_keep_the_higher_priority_source():
    body = " ".join(words(1))
    docs = [doc("1", "commoncrawl", body), doc("2", "wikipedia", body.upper()), doc("3", "c4", body + " !"),
            doc("4", "c4", words(2))]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(DedupConfig(near=False), WORK)
        assert_that(ids(out["documents"], "k"), equal_to(["wikipedia:2", "c4:4"]), label="kept")
        assert_that(drops(out["dropped"], "d"), equal_to([
            ("commoncrawl:1", "exact_duplicate", "copy of wikipedia:2"),
            ("c4:3", "exact_duplicate", "copy of wikipedia:2"),
        ]), label="dropped")


def test_books_are_dropped_only_above_the_book_threshold():
    body = words(50, 600)
    similar = replaced(body, 200, 38, 51)  # Jaccard ~0.85: a near duplicate, not a >90% overlap
    edition = replaced(body, 500, 8, 52)  # Jaccard ~0.96
    docs = [doc("a", "books", body, book=True), doc("b", "books", similar, book=True),
            doc("c", "books", edition, book=True),
            doc("x", "c4", body), doc("y", "c4", similar)]  # the same pair as web pages
    assert 0.8 <= estimate(docs[0], docs[1]) < 0.9 and estimate(docs[0], docs[2]) >= 0.9
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(small(scope="source"), WORK)
        assert_that(ids(out["documents"], "k"), equal_to(["books:a", "books:b", "c4:x"]), label="kept")
        assert_that(ids(out["dropped"], "d"), equal_to(["books:c", "c4:y"]), label="dropped")


def test_source_scope_keeps_cross_source_copies():
    body = words(5)
    docs = [doc("1", "commoncrawl", body), doc("2", "c4", body), doc("3", "c4", body)]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(small(scope="source"), WORK)
        assert_that(ids(out["documents"], "k"), equal_to(["commoncrawl:1", "c4:2"]), label="kept")


def test_dissimilar_documents_are_all_kept_and_make_no_cluster():
    docs = [doc(str(i), "c4", words(100 + i)) for i in range(20)]

    def no_clusters(stats):
        assert stats[0]["clusters"] == 0 and stats[0]["lsh"]["pairs_confirmed"] == 0, stats

    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(small(), WORK)
        assert_that(out["dropped"], equal_to([]), label="nothing dropped")
        assert_that(out["stats"], no_clusters, label="stats")


def test_cluster_statistics_and_examples():
    body = " ".join(words(60))
    exact = [doc("e1", "wikipedia", body), doc("e2", "c4", body), doc("e3", "commoncrawl", body.lower())]
    near = chain(("c4", "c4", "c4"), seed=70)
    longest = min(near, key=lambda d: (-len(d["text"]), d["id"]))
    docs = exact + near + [doc("alone", "c4", words(80))]

    def check_stats(stats):
        (s,) = stats
        assert (s["clusters"], s["documents"], s["duplicates_dropped"], s["largest"]) == (2, 6, 4, 3)
        assert s["size_histogram"] == {"3": 2}
        assert s["cross_source_pairs"] == {"c4~commoncrawl": 1, "c4~wikipedia": 1, "commoncrawl~wikipedia": 1}
        assert s["near_clusters"] == 1 and s["multi_source_clusters"] == 1
        assert s["components"]["converged"] and s["lsh"]["pairs_confirmed"] >= 2

    def check_examples(examples):
        by_survivor = {e["survivor"]: e for e in examples}
        assert set(by_survivor) == {"wikipedia:e1", longest["id"]}
        exact_example = by_survivor["wikipedia:e1"]["members"]
        assert [m["exact_copies"] for m in exact_example] == [2]
        (near,) = [e for e in examples if e["survivor"] != "wikipedia:e1"]
        assert len(near["members"]) == 3 and sum(m["survivor"] for m in near["members"]) == 1
        for member in near["members"]:
            assert member["text"] and 0.6 < member["jaccard_to_survivor"] <= 1.0

    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(small(), WORK)
        assert_that(out["stats"], check_stats, label="stats")
        assert_that(out["examples"], check_examples, label="examples")


def test_buckets_beyond_their_anchors_still_count_every_document_once():
    # bucket_anchors=2: the best two texts are compared with each other, the rest only with them, and an
    # exact copy outside the anchors reaches the graph beside its original
    body = words(90)
    a = doc("a", "wikipedia", body)
    b = doc("b", "c4", replaced(body, 50, 3, 91) + ["longer"])  # the second anchor, before c
    c = doc("c", "c4", replaced(body, 200, 3, 92))
    d = doc("d", "commoncrawl", c["text"])  # an exact copy of c, ranked after it

    def one_cluster_of_four(stats):
        (s,) = stats
        assert (s["clusters"], s["documents"], s["duplicates_dropped"]) == (1, 4, 3), s
        assert s["cross_source_pairs"] == {"c4~commoncrawl": 2, "c4~wikipedia": 2, "commoncrawl~wikipedia": 1}

    with TestPipeline() as p:
        out = p | beam.Create([a, b, c, d]) | Deduplicate(small(bucket_anchors=2), WORK)
        assert_that(ids(out["documents"], "k"), equal_to(["wikipedia:a"]), label="kept")
        assert_that(out["dropped"] | beam.Map(lambda d: (d["id"], d["reason"])), equal_to([
            ("c4:b", "near_duplicate"), ("c4:c", "near_duplicate"), ("commoncrawl:d", "exact_duplicate"),
        ]), label="dropped")
        assert_that(out["stats"], one_cluster_of_four, label="stats")


def test_without_exact_dedup_copies_are_near_duplicates_and_without_both_nothing_is_dropped():
    body = words(95)
    docs = [doc("1", "c4", body), doc("2", "commoncrawl", body), doc("3", "c4", words(96))]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Deduplicate(small(exact=False), WORK)
        assert_that(drops(out["dropped"], "d"), equal_to([
            ("commoncrawl:2", "near_duplicate", "near copy of c4:1")]), label="near only")
        off = p | "Again" >> beam.Create(docs) | "Off" >> Deduplicate(small(exact=False, near=False), WORK)
        assert_that(ids(off["documents"], "k"), equal_to(["c4:1", "commoncrawl:2", "c4:3"]), label="off")


def mixed_corpus() -> list[dict]:
    docs = chain() + chain(("c4", "c4", "c4"), seed=200, prefix="second")
    for i in range(6):  # exact groups across sources, and near copies of those copies
        body = words(300 + i)
        docs += [doc(f"x{i}", "commoncrawl", body), doc(f"y{i}", "c4", body),
                 doc(f"z{i}", "stackexchange", replaced(body, 30 * i, 12, 400 + i))]
    docs += [doc(f"solo{i}", "github", words(500 + i)) for i in range(20)]
    return docs


def run_and_collect(tmp_path, name: str, flags: list[str]) -> dict:
    options = PipelineOptions(flags)
    with beam.Pipeline(options=options) as p:
        out = p | beam.Create(mixed_corpus()) | Deduplicate(DedupConfig(), WORK)
        for key in ("documents", "dropped", "stats"):
            (out[key]
             | f"Json{key}" >> beam.Map(lambda e, key=key: json.dumps(
                 e["id"] if key == "documents" else e, sort_keys=True))
             | f"Write{key}" >> beam.io.WriteToText(str(tmp_path / name / key)))
    folder = tmp_path / name
    return {key: sorted(line for path in folder.glob(f"{key}*") for line in path.read_text().splitlines())
            for key in ("documents", "dropped", "stats")}


def test_same_results_in_memory_and_on_the_multi_process_runner(tmp_path):
    in_memory = run_and_collect(tmp_path, "in_memory", ["--direct_running_mode=in_memory"])
    multi = run_and_collect(tmp_path, "multi", ["--direct_running_mode=multi_processing",
                                                "--direct_num_workers=2"])
    assert in_memory == multi
    assert len(in_memory["documents"]) == 2 + 6 + 20  # one per chain, one per exact+near group, solos
    assert len(in_memory["dropped"]) == 4 + 12


def test_config_names_a_bad_dedup_setting():
    with pytest.raises(ConfigError, match="source_priority: unknown source 'reddit'"):
        from_dict(DedupConfig, {"source_priority": ["wikipedia", "reddit"]}, "dedup")
    with pytest.raises(ConfigError, match="signature_bits"):
        from_dict(DedupConfig, {"signature_bits": 12}, "dedup")


def test_shingles_are_the_utf8_of_the_joined_word_ngrams():
    """`shingle_bytes` encodes each word once and joins bytes; the shingles (so the signatures) are those
    of the joined n-grams encoded, non-ASCII words included."""
    from llamapipe.pipeline.stages.dedup.fingerprints import shingle_bytes

    text = words(3, 60) + ["naïve", "Straße", "東京", "emoji🙂"] + words(4, 10)
    for n in (1, 5, 13):
        expected = [" ".join(text[i:i + n]).encode("utf-8") for i in range(len(text) - n + 1)]
        assert list(shingle_bytes(text, n)) == expected
    assert list(shingle_bytes(text[:3], 5)) == [" ".join(text[:3]).encode("utf-8")]
