"""What dedup knows of one document: its normalised text's hash and MinHash signature (`fingerprint`,
computed by the per-file work and recorded beside the document), its node in the duplicate graph
(`doc_node`: ordered by the survivor rule), and its LSH band records (`Fingerprint`). Shared by the
stage (`deduplicate.py`) and its statistics (`statistics.py`)."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections.abc import Iterator

import apache_beam as beam
import numpy as np

from llamapipe.pipeline.config import DedupConfig

FINGERPRINT = "_dedup_fingerprint"  # a document's key holding its `fingerprint`, until dedup is done
TEXT_HASHES = "text_hashes"
_NON_WORD = re.compile(r"[^\w\s]", re.UNICODE)
_HASH_BATCH = 8192  # shingles hashed per MinHash.update_batch call (bounds its n x num_perm matrix)

SIGNATURE_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32}

# A node of the duplicate graph is one string that sorts by the survivor rule: source priority (2
# digits), then longer text first (12 digits of 10**12 - length), then the id; the source and the tag
# of the file holding the document follow, each after a NUL (which sorts before any character, so ids
# still order as strings). One short string instead of a tuple: it is repeated in every LSH band
# record (14 per document, written to run files and read back, buckets.py).
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
    """Word n-grams (all words as one shingle when there are fewer than n), UTF-8 encoded: each word
    encoded once and the n-grams joined as bytes (the same bytes as encoding each joined n-gram, which
    encoded every word n times)."""
    if len(words) <= n:
        if words:
            yield " ".join(words).encode("utf-8")
        return
    encoded = [word.encode("utf-8") for word in words]
    for gram in zip(*(itertools.islice(encoded, i, None) for i in range(n)), strict=False):
        yield b" ".join(gram)


def shingles(text: str, n: int) -> set[bytes]:
    return set(shingle_bytes(normalise(text).split(), n))


@functools.lru_cache(maxsize=16)
def lsh_params(threshold: float, num_perm: int, false_positive_weight: float = 0.1,
               false_negative_weight: float = 0.9) -> tuple[int, int]:
    """LSH bands b and rows per band r (b x r <= num_perm) for a Jaccard `threshold`.

    Two documents of Jaccard similarity s share a band with probability P(s) = 1 - (1 - s^r)^b (the
    S-curve of Leskovec, Rajaraman & Ullman, Mining of Massive Datasets, section 3.4). The false positive
    area is the integral of P over [0, threshold], the false negative area that of 1 - P over
    [threshold, 1]; the (b, r) minimising their weighted sum is chosen, the first in order of b then r
    on a tie. This is the search of datasketch's MinHashLSH(weights=...) (its private `_optimal_param`,
    which integrates with scipy's adaptive quadrature); tests/pipeline/stages/dedup/test_lsh_params.py
    checks that both choose the same (b, r). The integrands are polynomials of degree r x b <= num_perm,
    so Gauss-Legendre quadrature with num_perm // 2 + 1 nodes (exact up to degree num_perm + 1)
    computes the areas exactly, up to rounding."""
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    # the nodes mapped onto [0, threshold] and [threshold, 1], and the weights scaled to each interval
    below, below_weights = threshold / 2 * (nodes + 1), threshold / 2 * weights
    above, above_weights = threshold + (1 - threshold) / 2 * (nodes + 1), (1 - threshold) / 2 * weights
    best_error, best = float("inf"), (0, 0)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            false_positive = np.dot(below_weights, 1 - (1 - below**rows) ** bands)
            false_negative = np.dot(above_weights, (1 - above**rows) ** bands)
            error = false_positive * false_positive_weight + false_negative * false_negative_weight
            if error < best_error:
                best_error, best = error, (bands, rows)
    return best


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
            self._dtype = SIGNATURE_DTYPES[o.signature_bits]

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
    document. Computed where the document is made, by the per-file work (`pipeline/file_work.py`), which
    records it beside the document under FINGERPRINT (so a rerun or an incremental run never hashes a recorded
    document again); computed here for a document without one."""
    normalised = normalise(text)
    values = hasher.signature(normalised, normalised=True) if hasher is not None else None
    return (hashlib.sha1(normalised.encode("utf-8")).digest(),
            None if values is None else values.astype(np.uint32).tobytes())


def fingerprinter(options: DedupConfig) -> MinHasher | None:
    """The MinHasher `Fingerprint` uses for these options (None without near dedup)."""
    return MinHasher(options.num_perm, options.shingle_words) if options.near else None
