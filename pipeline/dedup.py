"""Exact and near-duplicate removal across all sources, with no step that gathers the corpus.

Every document is normalised once (lowercase, no punctuation, single spaces) and fingerprinted:
1. Exact: (SHA-1 of the normalised text, node) pairs grouped by hash; every copy but the best-ranked
   gets an `exact_duplicate` mark. Only these small pairs are shuffled, not the documents.
2. Near: a datasketch MinHash (affine32 scheme, xxhash-32 of word n-gram shingles instead of the
   default SHA-1, which takes about as long as all the rest). LSH bands x rows come from datasketch's
   optimal-parameter routine for the threshold. Every document emits one (band, band-hash) key per
   band with a compact b-bit signature; the records are grouped by key through run files
   (`lsh_buckets.py`: the local runner would hold them all), and a bucket's members (one per distinct
   text) are verified against each other by estimated Jaccard similarity (two books: the recipe's
   stricter book rule).
3. Connected components of the confirmed pairs, distributed (`components.py`): chains A~B~C end as one
   cluster. Nodes are ordered by the survivor rule, so each component's centre is its survivor; every
   other member gets a `near_duplicate` mark.
4. The documents never cross a shuffle: they are written to files where they are
(`plumbing/files_as_shuffle.py`), their
   nodes name their file, the marks are grouped by file, and each file is read back in one worker
   beside its marks: unmarked documents are kept.

Which copy survives is deterministic: the first source of `source_priority`, then the longest text,
then the smallest id. With `scope: source` every key is prefixed by the source, so duplicates are
only looked for within a source (RedPajama's choice). Cluster statistics and examples are built by
`dedup_stats.ClusterReport` from the same collections.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import itertools
import re
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from llamapipe.pipeline.components import ConnectedComponents, bundle_output
from llamapipe.pipeline.config import DedupConfig
from llamapipe.pipeline.lsh_buckets import GroupBuckets, read_buckets
from llamapipe.pipeline.plumbing.drops import DROPPED, drop, drop_record
from llamapipe.pipeline.plumbing.files_as_shuffle import FILES, GroupByFile, SpillDocuments, documents_beside

STAGE = "dedup"
FINGERPRINT = "_dedup_fingerprint"  # a document's key holding its `fingerprint`, until dedup is done
PAIR_COUNTS = "pair_counts"
EXAMPLE_DOCS = "example_docs"
TEXT_HASHES = "text_hashes"
MARKS = "marks"
COPIES = "copies"
_NON_WORD = re.compile(r"[^\w\s]", re.UNICODE)
_HASH_BATCH = 8192  # shingles hashed per MinHash.update_batch call (bounds its n x num_perm matrix)

_SIGNATURE_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32}

# A node of the duplicate graph is one string that sorts by the survivor rule: source priority (2
# digits), then longer text first (12 digits of 10**12 - length), then the id; the source and the tag
# of the file holding the document follow, each after a NUL (which sorts before any character, so ids
# still order as strings). One short string instead of a tuple: it is repeated in every LSH band
# record (14 per document, written to run files and read back, lsh_buckets.py).
_LENGTH_DIGITS = 12


def normalise(text: str) -> str:
    """Lowercase, drop punctuation, collapse whitespace: the text identity used by exact dedup."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def doc_node(doc: dict, priority: list[str], tag: str = "") -> str:
    """Smaller is better: source priority, then longer text, then smaller id. `tag`: the spilled
    file that holds the document."""
    source = doc["source"]
    index = priority.index(source) if source in priority else len(priority)
    inverted = 10**_LENGTH_DIGITS - min(len(doc["text"]), 10**_LENGTH_DIGITS - 1)
    return f"{index:02d}{inverted:0{_LENGTH_DIGITS}d}{doc['id']}\x00{source}\x00{tag}"


def node_id(node: str) -> str:
    return node[2 + _LENGTH_DIGITS:].rsplit("\x00", 2)[0]


def node_source(node: str) -> str:
    return node.rsplit("\x00", 2)[1]


def node_tag(node: str) -> str:
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
    """MinHash signatures of texts: datasketch's MinHash with a fast shingle hash and its permutations
    built once per process (a fresh MinHash draws them again for every document)."""

    def __init__(self, num_perm: int, shingle_words: int, seed: int = 1):
        import xxhash
        from datasketch import MinHash

        self._template = MinHash(num_perm=num_perm, seed=seed, hashfunc=xxhash.xxh32_intdigest,
                                 scheme="affine32")
        self._n = shingle_words

    def signature(self, text: str, normalised: bool = False) -> np.ndarray | None:
        """uint32 hash values, or None for a text without words."""
        words = (text if normalised else normalise(text)).split()
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


def pack_member(node: str, is_book: bool, signature: bytes, text_hash: bytes) -> bytes:
    """An LSH bucket member as one bytes value: 8 bytes of text hash, a book flag, the b-bit signature,
    the node. One object instead of a tuple of four: there are `bands` of them per document, and local
    runners hold every shuffled value in memory."""
    return text_hash[:8] + (b"\x01" if is_book else b"\x00") + signature + node.encode("utf-8")


def unpack_member(value: bytes, signature_bytes: int) -> tuple[str, bool, bytes, bytes]:
    """(node, is_book, signature, text hash) of a packed member."""
    end = 9 + signature_bytes
    return value[end:].decode("utf-8"), value[8] == 1, value[9:end], value[:8]


class Fingerprint(beam.DoFn):
    """(file tag, document) -> (band key, packed member (node, is_book, b-bit signature, text hash))
    for each LSH band (near dedup) and, tagged TEXT_HASHES, (text hash, node) (exact dedup). Both from
    one normalisation."""

    def __init__(self, options: DedupConfig):
        self._options = options

    def setup(self) -> None:
        o = self._options
        self._scope = _Scope(o.scope)
        self._hasher = fingerprinter(o)
        if o.near:
            self._bands, self._rows = lsh_params(o.threshold, o.num_perm, *o.lsh_weights)
            self._dtype = _SIGNATURE_DTYPES[o.signature_bits]

    def process(self, spilled: tuple[str, dict]):
        tag, doc = spilled
        o = self._options
        text_hash, values = doc.get(FINGERPRINT) or fingerprint(doc["text"], self._hasher if o.near else None)
        node = doc_node(doc, o.source_priority, tag)
        prefix = self._scope.prefix(doc)
        if o.exact:
            yield beam.pvalue.TaggedOutput(TEXT_HASHES, (prefix + text_hash, node))
        if not o.near or values is None:
            return
        values = np.frombuffer(values, dtype=np.uint32)
        is_book = bool((doc.get("meta") or {}).get("book_dedup"))
        member = pack_member(node, is_book, values.astype(self._dtype).tobytes(), text_hash)  # lowest bits
        for key in band_keys(values, self._bands, self._rows, prefix):
            yield key, member


def fingerprint(text: str, hasher: MinHasher | None) -> tuple[bytes, bytes | None]:
    """(SHA-1 of the normalised text, its MinHash values as uint32 bytes or None): what dedup needs of a
    document. Computed where the document is made, by the per-file work (`file_work.py`), which records
    it beside the document under FINGERPRINT (so a rerun or an incremental run never hashes a recorded
    document again); computed here for a document without one."""
    normalised = normalise(text)
    values = hasher.signature(normalised, normalised=True) if hasher is not None else None
    return (hashlib.sha1(normalised.encode("utf-8")).digest(),
            None if values is None else values.astype(np.uint32).tobytes())


def fingerprinter(options: DedupConfig) -> MinHasher | None:
    """The MinHasher `Fingerprint` uses for these options (None without near dedup)."""
    return MinHasher(options.num_perm, options.shingle_words) if options.near else None


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
    """The frames of one partition of LSH buckets (lsh_buckets.py) -> for each bucket, edges (node, node)
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
        dtype = _SIGNATURE_DTYPES[o.signature_bits]
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
            # the text rides along for the rejects sample (pipeline/rejects.py strips it elsewhere)
            yield drop(mark["source"], mark["stage"], mark["reason"], mark["id"], mark["detail"], doc["text"])


def _empty(pcoll, label: str):
    return pcoll | label >> beam.FlatMap(lambda _: [])


class Deduplicate(beam.PTransform):
    """Documents -> {"documents": survivors, "dropped": drop records, "stats": one dict of cluster
    statistics, "examples": example clusters with texts (see dedup_stats.py)}. `work_folder` holds the
    spilled documents while the pipeline runs."""

    def __init__(self, options: DedupConfig, work_folder: str):
        super().__init__()
        self._options = options
        self._folder = work_folder

    def expand(self, docs):
        from llamapipe.pipeline.dedup_stats import ClusterReport, ExampleClusters, final_stats

        o = self._options
        if not (o.exact or o.near):
            docs = docs | "NoFingerprints" >> beam.Map(
                lambda d: {k: v for k, v in d.items() if k != FINGERPRINT})
            nothing = _empty(docs, "Nothing")
            stats = docs.pipeline | "NoStats" >> beam.Create([final_stats(None, o, [], [], [])])
            return {"documents": docs, "dropped": nothing, "stats": stats, "examples": nothing}
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
            | "KeepOrDrop" >> beam.ParDo(ApplyMarks(self._folder)).with_outputs(
                DROPPED, EXAMPLE_DOCS, main="documents")
        )
        examples = joined[EXAMPLE_DOCS] | "Examples" >> ExampleClusters(o.shingle_words)
        return {"documents": joined.documents, "dropped": joined[DROPPED], "stats": report["stats"],
                "examples": examples}
