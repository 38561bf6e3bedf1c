"""Exact and near-duplicate removal across all sources, with no step that gathers the corpus.

Every document is normalised once (lowercase, no punctuation, single spaces) and fingerprinted:
1. Exact: (SHA-1 of the normalised text, node) pairs grouped by hash; every copy but the best-ranked
   gets an `exact_duplicate` mark. Only these small pairs are shuffled, not the documents.
2. Near: a datasketch MinHash (affine32 scheme, xxhash-32 of word n-gram shingles instead of the
   default SHA-1, which takes about as long as all the rest). LSH bands x rows minimise the weighted
   false positive and negative areas for the threshold, as datasketch's MinHashLSH chooses them
   (`fingerprints.lsh_params`). Every document emits one (band, band-hash) key per
   band with a compact b-bit signature; the records are grouped by key through run files
   (`buckets.py`: the local runner would hold them all), and a bucket's members (one per distinct
   text) are verified against each other by estimated Jaccard similarity (two books: the recipe's
   stricter book rule).
3. Connected components of the confirmed pairs, distributed (`connected_components.py`): chains A~B~C end as
   one cluster. Nodes are ordered by the survivor rule, so each component's centre is its survivor; every
   other member gets a `near_duplicate` mark.
4. The documents never cross a shuffle: they are written to files where they are
   (`plumbing/files_as_shuffle.py`), their nodes name their file, the marks are grouped by file, and each file
   is read back in one worker beside its marks: unmarked documents are kept.

Which copy survives is deterministic: the first source of `source_priority`, then the longest text,
then the smallest id. With `scope: source` every key is prefixed by the source, so duplicates are
only looked for within a source (RedPajama's choice). Cluster statistics and examples are built by
`statistics.ClusterReport` from the same collections.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable

import apache_beam as beam
import numpy as np

from llamapipe.pipeline.config import DedupConfig
from llamapipe.pipeline.plumbing.bundles import bundle_output
from llamapipe.pipeline.plumbing.drops import DOCUMENTS, DROPPED, drop, drop_record, split_drops
from llamapipe.pipeline.plumbing.files_as_shuffle import FILES, GroupByFile, SpillDocuments, documents_beside
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.dedup.buckets import GroupBuckets, read_buckets
from llamapipe.pipeline.stages.dedup.connected_components import ConnectedComponents
from llamapipe.pipeline.stages.dedup.fingerprints import (
    FINGERPRINT,
    SIGNATURE_DTYPES,
    TEXT_HASHES,
    Fingerprint,
    estimated_jaccard,
    node_id,
    node_source,
    node_tag,
    unpack_member,
)
from llamapipe.pipeline.stages.dedup.statistics import (
    ClusterReport,
    ExampleClusters,
    WriteDedupReport,
    final_stats,
)
from llamapipe.pipeline.stages.registry import DEDUP

STAGE = DEDUP.name
PAIR_COUNTS = "pair_counts"
EXAMPLE_DOCS = "example_docs"
MARKS = "marks"
COPIES = "copies"


class ExactCopies(beam.DoFn):
    """The nodes of one normalised text -> a drop mark (MARKS: (file tag, (id, drop record))) and the node
    (COPIES: (node, 1)) of every copy but the best-ranked one, and (main output) (best node,
    {source: documents}) when the text has copies. Two passes over the group (Beam's grouped values
    can be re-iterated), nothing held but the best node."""

    def process(self, element):
        _, nodes = element
        best = min(nodes)
        per_source: dict[str, int] = {}
        for node in nodes:
            source = node_source(node)
            per_source[source] = per_source.get(source, 0) + 1
            if node != best:
                doc_id = node_id(node)
                yield beam.pvalue.TaggedOutput(MARKS, (node_tag(node), (doc_id, drop_record(
                    source, STAGE, "exact_duplicate", doc_id, f"copy of {node_id(best)}"))))
                yield beam.pvalue.TaggedOutput(COPIES, (node, 1))
        if sum(per_source.values()) > 1:
            yield best, per_source


def distinct_anchors(members: Iterable, limit: int, by_text: bool) -> tuple[list, int]:
    """The `limit` best-ranked members of a bucket (one per text hash when `by_text`: exact copies are
    exact dedup's business) and the number of members, in one pass holding at most `limit` members."""
    if not by_text:
        count = 0

        def counted():
            nonlocal count
            for member in members:
                count += 1
                yield member

        return heapq.nsmallest(limit, counted(), key=lambda m: m[0]), count
    chosen: list = []  # sorted by node
    best_of_text: dict[bytes, str] = {}
    count = 0
    for member in members:
        count += 1
        node, text_hash = member[0], member[3]
        known = best_of_text.get(text_hash)
        if known is not None and node >= known:
            continue
        if known is None and len(chosen) == limit and node >= chosen[-1][0]:
            continue
        if known is not None:
            del chosen[bisect.bisect_left(chosen, known, key=lambda m: m[0])]
        bisect.insort(chosen, member, key=lambda m: m[0])
        best_of_text[text_hash] = node
        if len(chosen) > limit:
            del best_of_text[chosen.pop()[3]]
    return chosen, count


class _Forest:
    """Union-find over a bucket's anchors: an edge is emitted only when it joins two of its groups, so
    a bucket yields a spanning forest of its confirmed pairs (connectivity, not every pair)."""

    def __init__(self, size: int):
        self._parent = list(range(size))

    def find(self, i: int) -> int:
        while self._parent[i] != i:
            self._parent[i] = self._parent[self._parent[i]]
            i = self._parent[i]
        return i

    def union(self, i: int, j: int) -> bool:
        a, b = self.find(i), self.find(j)
        if a == b:
            return False
        self._parent[max(a, b)] = min(a, b)
        return True


class ConfirmedPairs(beam.DoFn):
    """The frames of one partition of LSH buckets (buckets.py) -> for each bucket, edges (node, node)
    between members whose estimated Jaccard reaches the threshold (book_threshold between two books).

    The bucket's `bucket_anchors` best-ranked members (the anchors; one per text when exact dedup is
    on, exact copies being its business) are compared with each other; every other member is
    compared with the anchors only. Up to that size this is every pair; beyond,
    work and memory stay bounded (members similar to no anchor are left to the other bands). An edge is
    emitted only when it joins two groups of anchors not yet joined (a spanning forest: connectivity,
    not every pair). Members come sorted (`read_buckets`), so the edges do not depend on the runner.
    Also emits, per bundle, (PAIR_COUNTS) (pairs compared, confirmed between two books,
    other confirmed, members of the largest bucket)."""

    def __init__(self, options: DedupConfig):
        self._options = options

    def start_bundle(self):
        self._counts = [0, 0, 0, 0]

    def finish_bundle(self):
        if any(self._counts):
            yield beam.pvalue.TaggedOutput(PAIR_COUNTS, bundle_output(tuple(self._counts)))

    def process(self, element):
        _, frames = element
        for _, packed in read_buckets(frames):
            self._counts[3] = max(self._counts[3], len(packed))
            if len(packed) > 1:
                yield from self._bucket_edges(packed)

    def _bucket_edges(self, packed: list[bytes]):
        o = self._options
        signature_bytes = o.num_perm * o.signature_bits // 8

        def members():  # unpacked on the way, in each of the (at most two) passes
            return (unpack_member(value, signature_bytes) for value in packed)

        anchors, size = distinct_anchors(members(), o.bucket_anchors, by_text=o.exact)
        if len(anchors) < 2:
            return
        dtype = SIGNATURE_DTYPES[o.signature_bits]
        signatures = np.stack([np.frombuffer(m[2], dtype=dtype) for m in anchors])
        books = np.array([m[1] for m in anchors])
        forest = _Forest(len(anchors))
        counts = self._counts

        def matches(is_book: bool, signature: np.ndarray, upto: int) -> list[int]:
            similarity = estimated_jaccard(signature, signatures[:upto], o.signature_bits)
            needed = np.where(books[:upto] & is_book, o.book_threshold, o.threshold)
            found = np.flatnonzero(similarity >= needed)
            book_pairs = int(np.count_nonzero(books[found])) if is_book else 0
            counts[0] += upto
            counts[1] += book_pairs
            counts[2] += len(found) - book_pairs
            return found.tolist()

        for i in range(1, len(anchors)):
            node, is_book = anchors[i][:2]
            for j in matches(is_book, signatures[i], i):
                if forest.union(i, j):
                    yield node, anchors[j][0]
        if size > len(anchors):
            chosen = {anchor[0] for anchor in anchors}
            anchor_texts = {anchor[3] for anchor in anchors} if o.exact else set()
            for node, is_book, sig, text_hash in members():
                if node in chosen or text_hash in anchor_texts:
                    continue
                found = matches(is_book, np.frombuffer(sig, dtype=dtype), len(anchors))
                if found:
                    yield node, anchors[found[0]][0]
                for j in found[1:]:
                    if forest.union(found[0], j):
                        yield node, anchors[j][0]


class NearDuplicateMarks(beam.DoFn):
    """(node, centre) -> (file tag, (id, drop record)) for every node that is not its component's
    centre."""

    def process(self, labelled):
        node, centre = labelled
        if node != centre:
            doc_id = node_id(node)
            yield node_tag(node), (doc_id, drop_record(node_source(node), STAGE, "near_duplicate", doc_id,
                                                       f"near copy of {node_id(centre)}"))


class ApplyMarks(beam.DoFn):
    """(file tag, {files, marks, examples}) -> each document of the spilled file: itself if unmarked,
    else its drop record with its text (an exact copy's mark first); documents of example clusters also
    go to EXAMPLE_DOCS as (survivor id, (document, copies per source)). Holds one file's marks."""

    def __init__(self, folder: str):
        self._folder = folder

    def process(self, element):
        grouped, documents = documents_beside(self._folder, element, STAGE)
        marks: dict[str, dict] = {}  # the mark each document is dropped with: an exact copy's first
        for doc_id, mark in grouped["marks"]:
            if doc_id not in marks or mark["reason"] == "exact_duplicate":
                marks[doc_id] = mark
        examples = dict(grouped["examples"])
        for doc in documents:
            doc.pop(FINGERPRINT, None)  # dedup's alone
            example = examples.get(doc["id"])
            if example is not None:
                centre_id, copies = example
                yield beam.pvalue.TaggedOutput(EXAMPLE_DOCS, (centre_id, (doc, copies)))
            mark = marks.get(doc["id"])
            if mark is None:
                yield doc
                continue
            # the text rides along for the rejects sample (pipeline/output/rejects.py strips it elsewhere)
            yield drop(mark["source"], mark["stage"], mark["reason"], mark["id"], mark["detail"], doc["text"])


def _empty(pcoll, label: str):
    return pcoll | label >> beam.FlatMap(lambda _: [])


class Deduplicate(Stage):
    """Documents -> {"documents": survivors, "dropped": drop records, "stats": one dict of cluster
    statistics, "examples": example clusters with texts (see statistics.py)}. `work_folder` holds the
    spilled documents while the pipeline runs; with `report` (stats path, examples path), the recipe's
    `write_reports` writes the statistics and examples there."""

    entry = DEDUP

    def __init__(self, options: DedupConfig, work_folder: str, report: tuple[str, str] | None = None):
        super().__init__()
        self._options = options
        self._folder = work_folder
        self._report = report

    def write_reports(self, outputs: dict) -> None:
        if self._report:
            outputs | "WriteDedupReport" >> WriteDedupReport(*self._report)

    def expand(self, docs):
        o = self._options
        if not (o.exact or o.near):
            docs = docs | "NoFingerprints" >> beam.Map(
                lambda d: {k: v for k, v in d.items() if k != FINGERPRINT})
            nothing = _empty(docs, "Nothing")
            stats = docs.pipeline | "NoStats" >> beam.Create([final_stats(None, o, [], [], [])])
            return self.outputs(docs, nothing, stats=stats, examples=nothing)
        spilled = docs | "Spill" >> beam.ParDo(SpillDocuments(self._folder)).with_outputs(FILES, main="docs")
        prints = spilled.docs | "Fingerprint" >> beam.ParDo(Fingerprint(o)).with_outputs(
            TEXT_HASHES, main="bands")
        marks = []
        if o.exact:
            exact = (
                prints[TEXT_HASHES]
                | "GroupIdenticalTexts" >> beam.GroupByKey()
                | "ExactCopies" >> beam.ParDo(ExactCopies()).with_outputs(MARKS, COPIES, main="groups")
            )
            exact_groups, copies = exact.groups, exact[COPIES]
            marks.append(exact[MARKS])
        else:
            exact_groups, copies = _empty(docs, "NoExactGroups"), _empty(docs, "NoCopies")
        pair_counts = cc_report = None
        if o.near:
            bucketed = (
                prints.bands
                | "GroupBuckets" >> GroupBuckets(self._folder, o.lsh_partitions)
                | "ConfirmedPairs" >> beam.ParDo(ConfirmedPairs(o)).with_outputs(PAIR_COUNTS, main="edges")
            )
            components = bucketed.edges | "Components" >> ConnectedComponents(o.max_rounds)
            labels, pair_counts, cc_report = components["labels"], bucketed[PAIR_COUNTS], components["report"]
            marks.append(labels | "NearDuplicateMarks" >> beam.ParDo(NearDuplicateMarks()))
        else:
            labels = _empty(docs, "NoComponents")
        report = {"labels": labels, "exact": exact_groups, "copies": copies} | "Report" >> ClusterReport(
            o, pair_counts, cc_report)
        # The documents stay in their files: the marks (and example memberships) meet each file's tag.
        joined = (
            {"marks": marks | "AllMarks" >> beam.Flatten(), "examples": report["example_members"]}
            | "JoinMarks" >> GroupByFile(spilled[FILES])
        )
        joined = split_drops(joined, "KeepOrDrop", ApplyMarks(self._folder), tags=(EXAMPLE_DOCS,))
        examples = joined[EXAMPLE_DOCS] | "Examples" >> ExampleClusters(o.shingle_words)
        return self.outputs(joined[DOCUMENTS], joined[DROPPED], stats=report["stats"], examples=examples)
