"""Exact and near-duplicate removal across all sources, with no step that gathers the corpus.

1. Exact: documents grouped by the SHA-1 of their normalised text; the best-ranked copy of each group
   goes on, the others are dropped (`exact_duplicate`). Exact copies never reach the MinHash step.
2. Near: a datasketch MinHash (affine32 scheme, xxhash-32 of word n-gram shingles instead of the
   default SHA-1, which is several times slower) per remaining document. LSH bands x rows come from
   datasketch's optimal-parameter routine for the threshold. Every document emits one (band,
   band-hash) key per band with a compact b-bit signature; a bucket's members are verified against
   each other by estimated Jaccard similarity (two books: the recipe's stricter book threshold).
3. Connected components of the confirmed pairs, distributed (`components.py`): chains A~B~C end as
   one cluster. Nodes are ordered by the survivor rule, so each component's centre is its survivor;
   every other member is dropped (`near_duplicate`).

Which copy survives is deterministic: the first source of `source_priority`, then the longest text,
then the smallest id. With `scope: source` every key is prefixed by the source, so duplicates are
only looked for within a source (RedPajama's choice). Cluster statistics and examples are built by
`dedup_stats.DedupReport` from the same collections.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
import re
from collections.abc import Iterator

import apache_beam as beam
import numpy as np

from llamapipe.pipeline.components import ConnectedComponents, bundle_output
from llamapipe.pipeline.config import DedupConfig
from llamapipe.sources.base import DROPPED, make_drop

STAGE = "dedup"
EXACT_GROUPS = "exact_groups"
PAIR_COUNTS = "pair_counts"
EXAMPLE_DOCS = "example_docs"
_NON_WORD = re.compile(r"[^\w\s]", re.UNICODE)
_HASH_BATCH = 8192  # shingles hashed per MinHash.update_batch call (bounds its n x num_perm matrix)

_SIGNATURE_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32}

# A node of the duplicate graph is one string that sorts by the survivor rule: source priority (2
# digits), then longer text first (12 digits of 10**12 - length), then the id; the source follows a
# NUL (which sorts before any character, so ids still order as strings). One short string instead of
# a tuple: it is repeated in every LSH band record, and the local runner holds those in memory.
_LENGTH_DIGITS = 12


def normalise(text: str) -> str:
    """Lowercase, drop punctuation, collapse whitespace: the text identity used by exact dedup."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def doc_node(doc: dict, priority: list[str]) -> str:
    """Smaller is better: source priority, then longer text, then smaller id."""
    source = doc["source"]
    index = priority.index(source) if source in priority else len(priority)
    inverted = 10**_LENGTH_DIGITS - min(len(doc["text"]), 10**_LENGTH_DIGITS - 1)
    return f"{index:02d}{inverted:0{_LENGTH_DIGITS}d}{doc['id']}\x00{source}"


def node_id(node: str) -> str:
    return node[2 + _LENGTH_DIGITS:].rsplit("\x00", 1)[0]


def node_source(node: str) -> str:
    return node.rsplit("\x00", 1)[1]


def shingle_bytes(words: list[str], n: int) -> Iterator[bytes]:
    """Word n-grams (all words as one shingle when there are fewer than n), UTF-8 encoded."""
    if len(words) <= n:
        if words:
            yield " ".join(words).encode("utf-8")
        return
    for gram in zip(*(itertools.islice(words, i, None) for i in range(n)), strict=False):
        yield " ".join(gram).encode("utf-8")


def shingles(text: str, n: int) -> set[bytes]:
    return set(shingle_bytes(normalise(text).split(), n))


@functools.lru_cache(maxsize=16)
def lsh_params(threshold: float, num_perm: int, false_positive_weight: float = 0.1,
               false_negative_weight: float = 0.9) -> tuple[int, int]:
    """Bands and rows minimising the weighted false positive/negative areas (datasketch's routine)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, false_positive_weight, false_negative_weight)


def estimated_jaccard(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Jaccard similarity estimated from b-bit signatures (`b` may hold several, one per row).

    Two b-bit values also match by chance (probability 2**-bits); this is datasketch's bBitMinHash
    estimator in its small-set limit: (matches - c) / (1 - c)."""
    matches = np.mean(a == b, axis=-1)
    if bits >= 32:
        return matches
    chance = 2.0 ** -bits
    return (matches - chance) / (1.0 - chance)


class MinHasher:
    """MinHash signatures of texts: datasketch's MinHash with a fast shingle hash, permutations built
    once per process (building them is most of the cost of a fresh MinHash)."""

    def __init__(self, num_perm: int, shingle_words: int, seed: int = 1):
        import xxhash
        from datasketch import MinHash

        self._template = MinHash(num_perm=num_perm, seed=seed, hashfunc=xxhash.xxh32_intdigest,
                                 scheme="affine32")
        self._n = shingle_words

    def signature(self, text: str) -> np.ndarray | None:
        """uint32 hash values, or None for a text without words."""
        words = normalise(text).split()
        if not words:
            return None
        minhash = self._template.copy()
        grams = shingle_bytes(words, self._n)
        while batch := list(itertools.islice(grams, _HASH_BATCH)):
            minhash.update_batch(batch)
        return minhash.hashvalues


def band_keys(values: np.ndarray, bands: int, rows: int, prefix: bytes = b"") -> list[bytes]:
    """One bucket key per band: band number + a 64-bit hash of the band's rows."""
    import xxhash

    return [
        prefix + band.to_bytes(2, "little") + xxhash.xxh3_64_digest(values[band * rows:(band + 1) * rows])
        for band in range(bands)
    ]


class _Scope:
    """Key prefix: the source when dedup is scoped per source, else nothing."""

    def __init__(self, scope: str):
        self.per_source = scope == "source"

    def prefix(self, doc: dict) -> bytes:
        return doc["source"].encode("utf-8") + b"\x00" if self.per_source else b""


class KeyByTextHash(beam.DoFn):
    def __init__(self, scope: str):
        self._scope = _Scope(scope)

    def process(self, doc: dict):
        digest = hashlib.sha1(normalise(doc["text"]).encode("utf-8")).digest()
        yield self._scope.prefix(doc) + digest, doc


class KeepBestCopy(beam.DoFn):
    """A group of identical texts -> its best-ranked document; the others as drops.

    Two passes over the group (Beam's grouped values can be re-iterated): only the best document is
    held, whatever the group's size. Groups of several copies are also reported (EXACT_GROUPS) as
    (survivor node, {source: copies}) for the cluster statistics."""

    def __init__(self, priority: list[str]):
        self._priority = priority

    def process(self, element):
        _, docs = element
        best, best_node = None, None
        for doc in docs:
            node = doc_node(doc, self._priority)
            if best_node is None or node < best_node:
                best, best_node = doc, node
        per_source: dict[str, int] = {}
        for doc in docs:
            per_source[doc["source"]] = per_source.get(doc["source"], 0) + 1
            if doc["id"] != best["id"]:
                beam.metrics.Metrics.counter(f"{doc['source']}.{STAGE}", "dropped.exact_duplicate").inc()
                yield beam.pvalue.TaggedOutput(DROPPED, make_drop(
                    doc["source"], STAGE, "exact_duplicate", doc["id"], f"copy of {best['id']}"))
        if sum(per_source.values()) > 1:
            yield beam.pvalue.TaggedOutput(EXACT_GROUPS, (best_node, per_source))
        yield best


class MinHashBands(beam.DoFn):
    """A document -> (band key, (node, is_book, b-bit signature bytes)) for each LSH band."""

    def __init__(self, options: DedupConfig):
        self._options = options

    def setup(self) -> None:
        o = self._options
        self._hasher = MinHasher(o.num_perm, o.shingle_words)
        self._bands, self._rows = lsh_params(o.threshold, o.num_perm, *o.lsh_weights)
        self._scope = _Scope(o.scope)
        self._dtype = _SIGNATURE_DTYPES[o.signature_bits]

    def process(self, doc: dict):
        values = self._hasher.signature(doc["text"])
        if values is None:
            return
        node = doc_node(doc, self._options.source_priority)
        is_book = bool((doc.get("meta") or {}).get("book_dedup"))
        compact = values.astype(self._dtype).tobytes()  # keeps the lowest bits
        for key in band_keys(values, self._bands, self._rows, self._scope.prefix(doc)):
            yield key, (node, is_book, compact)


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
    """One LSH bucket -> edges (node, node) between members whose estimated Jaccard reaches the
    threshold (book_threshold between two books).

    The bucket's `bucket_anchors` best-ranked members (the anchors) are compared with each other;
    every other member is compared with the anchors only. Up to that size this is every pair; beyond,
    work and memory stay bounded (members similar to no anchor are left to the other bands). An edge is
    emitted only when it joins two groups of anchors not yet joined (a spanning forest: connectivity,
    not every pair). Which edges come out may depend on the order of the members; the components they
    form do not. Also emits, per bundle, (PAIR_COUNTS) (pairs compared, confirmed between two books,
    other confirmed, members of the largest bucket)."""

    def __init__(self, options: DedupConfig):
        self._options = options

    def start_bundle(self):
        self._counts = [0, 0, 0, 0]

    def finish_bundle(self):
        if any(self._counts):
            yield beam.pvalue.TaggedOutput(PAIR_COUNTS, bundle_output(tuple(self._counts)))

    def process(self, element):
        _, members = element
        o = self._options
        anchors = heapq.nsmallest(o.bucket_anchors, members, key=lambda m: m[0])
        if len(anchors) < 2:
            return
        dtype = _SIGNATURE_DTYPES[o.signature_bits]
        signatures = np.stack([np.frombuffer(sig, dtype=dtype) for _, _, sig in anchors])
        books = np.array([is_book for _, is_book, _ in anchors])
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
            node, is_book, _ = anchors[i]
            for j in matches(is_book, signatures[i], i):
                if forest.union(i, j):
                    yield node, anchors[j][0]
        size = len(anchors)
        if len(anchors) == o.bucket_anchors:
            chosen = {anchor[0] for anchor in anchors}
            for node, is_book, sig in members:
                if node in chosen:
                    continue
                size += 1
                found = matches(is_book, np.frombuffer(sig, dtype=dtype), len(anchors))
                if found:
                    yield node, anchors[found[0]][0]
                for j in found[1:]:
                    if forest.union(found[0], j):
                        yield node, anchors[j][0]
        counts[3] = max(counts[3], size)


class NearDuplicateMarks(beam.DoFn):
    """(node, centre) -> (id, drop record) for every node that is not its component's centre."""

    def process(self, labelled):
        node, centre = labelled
        if node != centre:
            doc_id = node_id(node)
            yield doc_id, make_drop(node_source(node), STAGE, "near_duplicate", doc_id,
                                    f"near copy of {node_id(centre)}")


class ApplyMarks(beam.DoFn):
    """(id, {docs, marks, examples}) -> the document if unmarked, else its drop record; documents of
    example clusters also go to EXAMPLE_DOCS as (survivor id, (document, copies per source))."""

    def process(self, element):
        _, grouped = element
        marks = list(grouped["marks"])
        examples = list(grouped["examples"])
        for doc in grouped["docs"]:
            if examples:
                centre_id, copies = examples[0]
                yield beam.pvalue.TaggedOutput(EXAMPLE_DOCS, (centre_id, (doc, copies)))
            if marks:
                beam.metrics.Metrics.counter(f"{doc['source']}.{STAGE}", "dropped.near_duplicate").inc()
                yield beam.pvalue.TaggedOutput(DROPPED, marks[0])
            else:
                yield doc


def _empty(pcoll, label: str):
    return pcoll | label >> beam.FlatMap(lambda _: [])


class Deduplicate(beam.PTransform):
    """Documents -> {"documents": survivors, "dropped": drop records, "stats": one dict of cluster
    statistics, "examples": example clusters with texts (see dedup_stats.py)}."""

    def __init__(self, options: DedupConfig):
        super().__init__()
        self._options = options

    def expand(self, docs):
        from llamapipe.pipeline.dedup_stats import ClusterReport, ExampleClusters, ExampleDocs

        o = self._options
        drops = []
        exact_groups = None
        if o.exact:
            exact = (
                docs
                | "KeyByTextHash" >> beam.ParDo(KeyByTextHash(o.scope))
                | "GroupIdenticalTexts" >> beam.GroupByKey()
                | "KeepBestCopy" >> beam.ParDo(KeepBestCopy(o.source_priority)).with_outputs(
                    DROPPED, EXACT_GROUPS, main="documents")
            )
            docs, exact_groups = exact.documents, exact[EXACT_GROUPS]
            drops.append(exact[DROPPED])
        else:
            exact_groups = _empty(docs, "NoExactGroups")
        if not o.near:
            report = {"labels": _empty(docs, "NoComponents"), "exact": exact_groups} | "Report" >> (
                ClusterReport(o))
            # without a near-duplicate join, example documents are picked with a side input
            example_docs = docs | "ExampleDocs" >> beam.ParDo(
                ExampleDocs(), chosen=beam.pvalue.AsDict(report["example_members"]))
        else:
            bucketed = (
                docs
                | "MinHashBands" >> beam.ParDo(MinHashBands(o))
                | "GroupBuckets" >> beam.GroupByKey()
                | "ConfirmedPairs" >> beam.ParDo(ConfirmedPairs(o)).with_outputs(PAIR_COUNTS, main="edges")
            )
            components = bucketed.edges | "Components" >> ConnectedComponents(o.max_rounds)
            labels = components["labels"]
            report = {"labels": labels, "exact": exact_groups} | "Report" >> ClusterReport(
                o, bucketed[PAIR_COUNTS], components["report"])
            joined = (
                {"docs": docs | "KeyById" >> beam.Map(lambda d: (d["id"], d)),
                 "marks": labels | "NearDuplicateMarks" >> beam.ParDo(NearDuplicateMarks()),
                 "examples": report["example_members"]}
                | "JoinMarks" >> beam.CoGroupByKey()
                | "KeepOrDrop" >> beam.ParDo(ApplyMarks()).with_outputs(
                    DROPPED, EXAMPLE_DOCS, main="documents")
            )
            docs, example_docs = joined.documents, joined[EXAMPLE_DOCS]
            drops.append(joined[DROPPED])
        examples = example_docs | "Examples" >> ExampleClusters(o.shingle_words)
        dropped = (drops | "AllDedupDrops" >> beam.Flatten()) if drops else _empty(docs, "NoDrops")
        return {"documents": docs, "dropped": dropped, "stats": report["stats"], "examples": examples}
